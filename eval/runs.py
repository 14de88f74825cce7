"""Load a trained run and run its model on puzzles: the answer after every segment, and what the
halting head says after each.

A run directory (written by ``hrm train``) holds ``config.json`` and a safetensors checkpoint.
``load_run`` rebuilds the model from the config alone (nothing is unpickled) and loads the
averaged (EMA) weights when the run kept them, since those are the weights it was evaluated
with. ``run_segments`` and ``run_cot`` run a loaded run's model through ``hrm/inference.py``,
the one place that turns token batches into answers, for training, evaluation and ``hrm solve``
alike.

This module deliberately does not score answers (``evaluate.py``) or read puzzle text
(``solve.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from baselines.cot import CoTCodec
from hrm import inference
from hrm.checkpoint import CHECKPOINT, has_checkpoint, load_checkpoint
from hrm.config import RunConfig, build_model, check_types, one_pass, without_removed
from hrm.inference import CoTAnswers, Halting, SegmentTrace, default_batch_size
from hrm.kinds import DEFAULT_KIND, KINDS
from puzzles.base import PuzzleFamily
from puzzles.dataset import BuildSpec, DatasetError, changed_array, family_of, read_meta
from puzzles.files import read_json_object

HALTING_FILE = "halting.json"  # the run's chosen halting threshold (eval/halting.py)


class RunError(ValueError):
    """A run directory that cannot be loaded; ``str()`` is one line naming the problem."""


@dataclass
class Run:
    path: Path
    kind: str  # a name in hrm.kinds.KINDS
    config: RunConfig
    model: torch.nn.Module
    family: PuzzleFamily
    step: int  # optimiser steps the checkpoint holds
    data: dict  # the training dataset's meta.json: family options, difficulty, seed
    # the training dataset (its test split is there), found wherever the run is evaluated
    # from; None when no copy with the recorded hashes was found, and ``data_note`` says why
    data_path: Path | None = None
    codec: CoTCodec | None = None  # chain of thought only
    # learned halting stops where the head's sigmoid passes this: the threshold chosen for
    # this checkpoint on validation puzzles (eval/halting.py), else the paper's 0.5
    halt_threshold: float = 0.5

    data_note: str = ""

    def own_data(self) -> Path:
        """The run's own dataset, or a RunError saying where it was looked for."""
        if self.data_path is None:
            raise RunError(self.data_note)
        return self.data_path

    @property
    def max_segments(self) -> int:
        """Segments per puzzle in training (1 for a model that answers in one pass)."""
        if self.decodes or one_pass(self.config):
            return 1
        return self.config.act.max_segments

    @property
    def decodes(self) -> bool:
        """Whether the model answers by writing tokens (chain of thought), not in segments."""
        return KINDS[self.kind].decodes

    @property
    def halt_only(self) -> bool:
        return self.config.act.halt_only

    @property
    def halting(self) -> Halting:
        return Halting(self.halt_only, self.halt_threshold)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_run(path: str | Path, device: str | torch.device = "cpu", dtype: str | None = None) -> Run:
    """The model of the run in ``path``, in evaluation mode, with its family and config.

    ``dtype`` ("fp32" or "bf16"): the weights' type for inference; default: the training dtype.
    A run trained under bf16 autocast runs with bf16 weights: 1.3–1.5× faster on CPU than
    autocast, which converts every weight at every call, and the same solve rate within noise
    (docs/experiments.md)."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise RunError(f"{path} is not a training run (no config.json)")
    if not has_checkpoint(path):
        raise RunError(f"{path} has no checkpoint yet (train it first)")
    raw = read_json_object(config_file, RunError)
    try:  # everything the model is built from is checked before it is built
        kind = raw.get("model_kind", DEFAULT_KIND)
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}")
        config = RunConfig.from_dict({k: raw[k] for k in ("data", "model", "act", "train")})
        if not isinstance(raw["model_config"], dict) or not isinstance(raw["family"], dict):
            raise ValueError("model_config and family must be objects")
        saved = without_removed("model_config", raw["model_config"])
        if kind == "trm" and "gradient" in saved:  # saved before its rename to a bool
            saved["one_step_gradient"] = saved.pop("gradient") == "one_step"
        if KINDS[kind].decodes:  # runs from before the answer form was a setting wrote the grid
            saved.setdefault("answer", "grid")
        raw["model_config"] = saved
        check_types("model_config", KINDS[kind].config, raw["model_config"])
        model_config = KINDS[kind].config(**raw["model_config"])
        family = family_of(raw["family"])
        model = build_model(model_config)
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{config_file}: not a config this version can read ({error})") from None
    dtype = dtype or config.train.dtype
    if dtype not in DTYPES:
        raise RunError(f"dtype must be fp32 or bf16, not {dtype!r}")
    weights, trainer, info = load_checkpoint(path)
    average = {k.split("/", 1)[1]: v for k, v in trainer.items() if k.startswith("ema/")}
    if average:  # the EMA holds parameters only; buffers come from the model's own weights
        weights.update(average)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise RunError(f"{path / CHECKPOINT}: weights do not fit the config ({first})") from None
    model.to(device=device, dtype=DTYPES[dtype]).eval()
    codec = CoTCodec(family, model_config.answer) if KINDS[kind].decodes else None
    data_path, data_note = locate_data(path, raw)
    step = info["step"]
    threshold = chosen_threshold(path, step)
    return Run(path, kind, config, model, family, step, raw["family"], data_path, codec,
               0.5 if threshold is None else threshold, data_note)


def locate_data(run_dir: Path, raw: dict) -> tuple[Path | None, str]:
    """Where the run's training dataset is now, and, when it is nowhere, why.

    A run records its dataset's path absolute and relative to the run directory, and the
    dataset's hashes; runs from before record the path as given on the command line, relative
    to wherever training ran. Every place it could be is tried, and the first dataset whose
    hashes are the recorded ones is the run's, so a moved run, or one evaluated from another
    directory, finds it, and a dataset changed since is never taken for it."""
    recorded = raw.get("data_path")
    if not recorded:
        return None, f"{run_dir} records no dataset; pass --data"
    candidates = []
    if raw.get("data_path_from_run"):
        candidates.append(run_dir / raw["data_path_from_run"])
    candidates.append(Path(recorded))
    candidates.append(run_dir / "data")
    if not Path(recorded).is_absolute():
        candidates += [folder / recorded for folder in run_dir.resolve().parents]
    hashes = raw["family"].get("sha256")
    changed = None
    for candidate in candidates:
        if not (candidate / "meta.json").is_file():
            continue
        try:
            found = read_meta(candidate).get("sha256")
        except DatasetError:
            continue
        if hashes is None or found == hashes:
            return candidate, ""
        changed = changed or (candidate, found)
    if changed:
        where, found = changed
        return None, (f"the dataset at {where} is not the one {run_dir} was trained on "
                      f"({changed_array(hashes, found or {})} differs); give --data to use "
                      "another")
    return None, (f"{run_dir}'s dataset is not at {recorded} (nor beside the run); pass "
                  "--data DIR")


def fresh_split(data: dict, count: int, seed: int, difficulty: str | None = None) -> BuildSpec:
    """A test split of ``count`` new puzzles like the training data that ``data`` (a run's
    dataset meta.json) describes, drawn with ``seed`` (and from ``difficulty`` if given)."""
    options = tuple(sorted(data.get("options", {}).items()))
    return BuildSpec(data["family"], data["size"], difficulty or data["difficulty"], 0, count,
                     seed=seed, options=options)


def chosen_threshold(run_dir: Path, step: int) -> float | None:
    """The halting threshold ``halting.json`` holds for the checkpoint at ``step``; None when
    there is none, or when it was chosen for another checkpoint (training went on after)."""
    path = run_dir / HALTING_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        threshold = float(record["threshold"])
    except (ValueError, KeyError, TypeError):
        raise RunError(f"{path}: not a halting choice this version can read") from None
    if not 0 < threshold < 1:
        raise RunError(f"{path}: threshold {threshold} is not between 0 and 1")
    return threshold if record.get("step") == step else None


def transfer_problem(run: Run) -> str | None:
    """Why the run's model cannot run at another grid size, or None when it can: nothing in it
    may be tied to the training size (learned, grid or rotary positions, the token mixer's
    per-position weights, a chain of thought's decoding length)."""
    config = run.model.config
    if run.decodes:
        return "a chain-of-thought model decodes a trace of its training size"
    if config.positions != "none":
        return f"its {config.positions} positions fit its training size (positions=none transfers)"
    if config.mixer == "mlp":
        return "its token mixer has weights per position of its training size"
    return None


def at_size(run: Run, size: int) -> Run:
    """The run at grid size ``size``: the same weights in a model built for it. Only for a
    model ``transfer_problem`` accepts, and a family whose tokens do not change with the size
    (mazes; a Sudoku's digits do)."""
    if size == run.family.size:
        return run
    problem = transfer_problem(run)
    family = family_of({**run.data, "size": size})
    if problem is None and family.vocab_size != run.family.vocab_size:
        problem = f"a {run.family.name}'s tokens change with its size"
    if problem is not None:
        raise RunError(f"{run.path} solves {run.family.size}×{run.family.size} "
                       f"{run.family.name}, not {size}×{size}: {problem}")
    parameter = next(run.model.parameters())
    model = build_model(replace(run.model.config, seq_len=family.seq_len))
    model.load_state_dict(run.model.state_dict())
    model.to(device=parameter.device, dtype=parameter.dtype).eval()
    note = (f"{run.path} was trained at {run.family.size}×{run.family.size}; give --data or "
            f"--count for {size}×{size} puzzles")
    return replace(run, model=model, family=family, data={**run.data, "size": size},
                   data_path=None, data_note=note)


def run_segments(run: Run, inputs: np.ndarray, segments: int, batch_size: int | None = None,
                 progress=None, stop_at_halt: bool = False, streams: int | None = None
                 ) -> SegmentTrace:
    """``hrm.inference.run_segments`` for a loaded run: its model under its own halting rule,
    one pass for a one-pass model whatever ``segments`` says. A model compiled by
    ``torch.compile`` runs in streams only if ``compile_run`` compiled it."""
    if run.decodes:
        raise ValueError("a chain-of-thought run decodes tokens: use run_cot")
    segments = 1 if run.max_segments == 1 else segments
    return inference.run_segments(run.model, inputs, segments, run.halting, batch_size,
                                  progress, stop_at_halt, streams)


def run_cot(run: Run, inputs: np.ndarray, batch_size: int | None = None, progress=None,
            beams: int = 1) -> CoTAnswers:
    """``hrm.inference.run_cot`` for a loaded chain-of-thought run."""
    return inference.run_cot(run.model, run.codec, run.family, inputs, batch_size, progress,
                             beams)


def compile_run(run: Run, streams: int | None = None, batch_size: int | None = None) -> Run:
    """A copy of ``run`` whose model runs under ``torch.compile`` (weights frozen into the
    graph, any batch size), compiled here rather than at its first batch. Compiling took 26-40 s
    for a ``cpu-small`` model on two CPU cores, so it pays only for long evaluations
    (BENCHMARKS.md).

    Inductor fixes a kernel's thread count when it writes it, and dynamo must not compile from
    two threads at once, so on a CPU the kernels are compiled here for the threads of one
    stream (``streams`` as in ``run_segments``: default one per thread)."""
    import torch._inductor.config as inductor

    if run.decodes:
        raise ValueError("compiling is for models that answer in segments, not for decoding")
    inductor.freezing = True  # constants, prepacked for the CPU: right for a model not trained
    compiled = replace(run, model=torch.compile(run.model, dynamic=True))
    device = next(run.model.parameters()).device
    threads = torch.get_num_threads()
    streams = streams or threads
    batch_size = batch_size or default_batch_size(device)
    inputs = np.zeros((batch_size + 1, run.model.config.seq_len), dtype=np.uint8)
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads // streams))
    try:  # a full batch, then a batch of one, which dynamo compiles apart
        run_segments(compiled, inputs, 1, batch_size, streams=1)
    finally:
        torch.set_num_threads(threads)
    return compiled
