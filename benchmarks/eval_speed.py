"""Evaluation throughput of a ``cpu-small`` model on 9×9 Sudoku: prints a table and writes JSON.

    python benchmarks/eval_speed.py [--run RUN] [--puzzles 1000] [--threads 2]

Without ``--run`` the model is ``cpu-small`` with its initial (random) weights, which costs the
same per segment as a trained one. Rows: the model alone (``run_segments``: 8 segments on every
puzzle) at two batch sizes, fp32 and bf16, eager and compiled; then the whole ``evaluate``
(grading included) at the training segments only, and with its default scaling curve (1 … 32
segments). Puzzles per second = puzzles / seconds, after one warm-up batch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from eval.evaluate import evaluate
from eval.runs import Run, load_run, run_segments
from hrm.model import HRMConfig
from hrm.presets import preset
from hrm.train import RunConfig, build_model
from puzzles.dataset import BuildSpec, PuzzleDataset, build_dataset


def initial_run() -> Run:
    config = RunConfig.from_dict(preset("cpu-small"))
    torch.manual_seed(0)
    model = build_model(HRMConfig(vocab_size=11, seq_len=81, **config.model)).eval()
    data = {"family": "sudoku", "size": 9, "difficulty": "easy", "seed": 0, "options": {}}
    from puzzles import make_family
    return Run(Path("(initial weights)"), "hrm", config, model, make_family("sudoku", 9), 0, data)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained cpu-small run (default: initial weights)")
    parser.add_argument("--puzzles", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/eval_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = load_run(args.run) if args.run else initial_run()
    with tempfile.TemporaryDirectory() as scratch:
        spec = BuildSpec("sudoku", 9, "easy", 0, args.puzzles, seed=1)
        dataset = PuzzleDataset(build_dataset(spec, Path(scratch) / "data", workers=2), "test")
    segments = run.max_segments
    rows = []
    for batch in (64, 256):
        for dtype in ("fp32", "bf16"):
            for compiled in (False, True):
                config = replace(run.config, train=replace(run.config.train, dtype=dtype))
                model = torch.compile(run.model) if compiled else run.model
                case = replace(run, config=config, model=model)
                warmup = timed(lambda c=case, b=batch: run_segments(c, dataset.inputs[:b],
                                                                    segments, b))
                seconds = timed(lambda c=case, b=batch: run_segments(c, dataset.inputs,
                                                                     segments, b))
                rows.append({"what": "model only", "batch": batch, "dtype": dtype,
                             "compiled": compiled, "segments": segments,
                             "warmup_s": round(warmup, 1),
                             "puzzles_per_s": round(len(dataset) / seconds, 1)})
                print(rows[-1], flush=True)
                torch._dynamo.reset()
    for caps, label in (([segments], "evaluate, training segments"),
                        (None, "evaluate, scaling curve")):
        seconds = timed(lambda caps=caps: evaluate(run, dataset, caps, batch_size=256))
        rows.append({"what": label, "batch": 256, "dtype": run.config.train.dtype,
                     "compiled": False, "segments": segments if caps else 4 * segments,
                     "warmup_s": 0.0, "puzzles_per_s": round(len(dataset) / seconds, 1)})
        print(rows[-1], flush=True)
    print(f"\n{'what':<28} {'batch':>5} {'dtype':<5} {'compiled':<8} {'segments':>8} "
          f"{'warm-up s':>9} {'puzzles/s':>9}")
    for r in rows:
        print(f"{r['what']:<28} {r['batch']:>5} {r['dtype']:<5} {str(r['compiled']):<8} "
              f"{r['segments']:>8} {r['warmup_s']:>9} {r['puzzles_per_s']:>9}")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "run": str(run.path), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
