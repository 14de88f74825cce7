"""Choosing the confidence at which a run's learned halting stops, on fresh puzzles.

The halt head says "stop" when its sigmoid passes a threshold. The paper's 0.5 stops many
puzzles while their answer is still wrong: on 9×9 and on mazes a higher threshold solved
3-14 points more for up to one segment more on average (docs/experiments.md). The best
threshold differs from run to run, so each run gets its own, chosen once after training on a
validation split: fresh puzzles built from the run's data settings with a seed of their own,
so that the test split never tunes it.

The rule: of the thresholds ``evaluate`` measures, the lowest whose solve rate is within
``TOLERANCE`` of the best solve rate measured: every puzzle running all the training segments,
or halting at any of the thresholds. On the validation puzzles halting then gives up at most
that much, and saves what segments it can. The best is not always all the segments: a run
whose training learned to halt after about three of its eight can drift past its answer in
the segments it rarely trained, and then halting solves more than running them all.

The choice goes to ``RUN/halting.json`` with the step it was made at; ``load_run`` uses it
for that checkpoint, and ``--halt-threshold`` overrides it.

``train_and_calibrate`` trains a run and then chooses its threshold, as ``hrm train`` and
``hrm compare`` do. This module deliberately does not touch training itself: the trainer's
own halting (exploration, the
Q head's targets) keeps the paper's rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from eval.evaluate import threshold_curve
from eval.runs import HALTING_FILE, fresh_split, load_run, run_segments
from hrm.config import RunConfig, model_kind, one_pass
from hrm.inference import graded
from hrm.progress import progress_bar
from hrm.train import train
from puzzles.dataset import PuzzleDataset, build_dataset, read_meta
from puzzles.files import write_json_atomic

TOLERANCE = 0.01  # the most of the best solve rate halting may give up
# validation puzzles use the training data's seed plus this, away from the small seeds that
# ``hrm eval --count`` builds fresh test sets with
VALIDATION_SEED_OFFSET = 1000


def choose_threshold(points: list[dict], fixed_rate: float) -> float:
    """The lowest threshold of ``points`` (``threshold_curve`` at one cap) whose halting solve
    rate is within ``TOLERANCE`` of the best of ``fixed_rate`` and every point's rate; the
    highest measured if none is (only when the fixed segments solve the most)."""
    best = max(fixed_rate, *(p["halting"] for p in points))
    for point in sorted(points, key=lambda p: p["threshold"]):
        if point["halting"] >= best - TOLERANCE:
            return point["threshold"]
    return max(p["threshold"] for p in points)


def validation_set(run_dir: Path, data: dict, count: int, seed: int) -> PuzzleDataset:
    """``count`` fresh puzzles like the run's training data, drawn with ``seed``, in
    ``run_dir/validation`` (built once, then reused)."""
    folder = run_dir / "validation"
    if (folder / "meta.json").is_file():
        meta = read_meta(folder)
        if meta["counts"].get("test") == count and meta.get("seed") == seed:
            return PuzzleDataset(folder, "test")
    spec = fresh_split(data, count, seed)
    workers = torch.get_num_threads()
    return PuzzleDataset(build_dataset(spec, folder, workers=workers, force=True), "test")


def train_and_calibrate(config: RunConfig, run_dir: str | Path, *, resume: bool = False,
                        progress: bool = True) -> dict:
    """Train the run (``hrm.train.train``; returns its last evaluation), then, where its
    settings ask for it (``train.calibrate_halting`` puzzles) and the model halts, choose its
    halting threshold: ``halt_threshold`` in the result. Under ``torchrun`` rank 0 chooses."""
    result = train(config, run_dir, resume=resume, progress=progress)
    count = config.train.calibrate_halting
    if (not count or model_kind(config).decodes or one_pass(config)
            or os.environ.get("RANK", "0") != "0"):
        return result
    with progress_bar(total=count, desc="choosing the halting threshold", unit="puzzle",
                      disable=not progress) as bar:
        result["halt_threshold"] = calibrate_halting(run_dir, count, bar.update)["threshold"]
    return result


def calibrate_halting(run_dir: str | Path, count: int, progress=None) -> dict:
    """Choose the halting threshold of the run in ``run_dir`` on ``count`` fresh puzzles and
    write it to ``run_dir/halting.json``; returns what was written. ``progress``: a callable
    given the number of puzzles each batch finished."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    cap = run.max_segments
    if run.decodes or cap == 1:
        raise ValueError(f"{run_dir} answers in one pass: it has no learned halting to tune")
    seed = run.data["seed"] + VALIDATION_SEED_OFFSET
    dataset = validation_set(run_dir, run.data, count, seed)
    trace = run_segments(run, dataset.inputs, cap, progress=progress)
    solved, _ = graded(dataset, trace.predictions[:, cap - 1])
    fixed = float(solved.mean())
    points = threshold_curve(dataset, trace, [cap])
    record = {
        "threshold": choose_threshold(points, fixed),
        "step": run.step,
        "segments": cap,
        "puzzles": len(dataset),
        "seed": seed,
        "fixed": fixed,
        "tolerance": TOLERANCE,
        "table": points,
    }
    write_json_atomic(run_dir / HALTING_FILE, record)
    return record
