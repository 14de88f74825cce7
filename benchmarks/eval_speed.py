"""Evaluation throughput of a ``cpu-small`` model on 9×9 Sudoku: prints a table and writes JSON.

    python benchmarks/eval_speed.py [--run RUN] [--puzzles 1000] [--threads 2] [--compile]
                                    [--batches 16,32,64]

Without ``--run`` the model is ``cpu-small`` with its initial (random) weights, which costs the
same per segment as a trained one but never halts early. Rows, side by side in one process
(the machine is noisy, so compare within a run):

- the model alone (``run_segments``), fp32 and bf16 weights, every puzzle for the training
  segments ("fixed") or each stopping when its halting head says so ("halting"), on one
  stream of batches using every thread or one stream per thread (the default), at the default
  batch and, for bf16 with streams, at each of ``--batches``;
- with ``--compile``, the same under ``torch.compile`` (``compile_run``: dynamic batch, frozen
  weights; its warm-up is reported apart and excluded), on one stream using every thread and
  on one stream per thread;
- the whole ``evaluate`` (grading, tiers, halting histogram): ``--halting`` mode (with
  ``--compile`` also on the compiled model, as ``hrm eval --halting --compile``), the training
  segments, and the default scaling curve (1 … 4× the training segments).

Puzzles per second = puzzles / seconds, after one warm-up batch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from eval.evaluate import evaluate
from eval.runs import DTYPES, Run, compile_run, default_batch_size, load_run, run_segments
from hrm.config import RunConfig, build_model
from hrm.model import HRMConfig
from hrm.presets import preset
from puzzles import make_family
from puzzles.dataset import BuildSpec, PuzzleDataset, build_dataset

BATCH = default_batch_size(torch.device("cpu"))


def initial_run(dtype: str) -> Run:
    config = RunConfig.from_dict(preset("cpu-small"))
    torch.manual_seed(0)
    model = build_model(HRMConfig(vocab_size=11, seq_len=81, **config.model)).eval()
    model.to(DTYPES[dtype])
    data = {"family": "sudoku", "size": 9, "difficulty": "easy", "seed": 0, "options": {}}
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
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows")
    parser.add_argument("--batches", default="16,32,64", help="batch sizes to compare")
    parser.add_argument("--json", default="benchmarks/eval_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {dtype: load_run(args.run, dtype=dtype) if args.run else initial_run(dtype)
            for dtype in ("fp32", "bf16")}
    with tempfile.TemporaryDirectory() as scratch:
        spec = BuildSpec("sudoku", 9, "easy", 0, args.puzzles, seed=1)
        dataset = PuzzleDataset(build_dataset(spec, Path(scratch) / "data", workers=2), "test")
    segments = runs["bf16"].max_segments
    rows = []

    def add(what: str, dtype: str, compiled: bool, seconds: float, warmup: float = 0.0,
            mean_segments: float | None = None, streams: int | None = None,
            batch: int = BATCH) -> None:
        rows.append({"what": what, "batch": batch, "dtype": dtype, "compiled": compiled,
                     "streams": streams or args.threads,
                     "mean_segments": round(mean_segments or segments, 2),
                     "warmup_s": round(warmup, 1),
                     "puzzles_per_s": round(len(dataset) / seconds, 1)})
        print(rows[-1], flush=True)

    def model_rows(run: Run, dtype: str, compiled: bool, warmup: float = 0.0,
                   streams: int | None = None, batch: int = BATCH) -> None:
        for halting in (False, True):
            holder = {}

            def go(run=run, halting=halting, holder=holder):
                holder["trace"] = run_segments(run, dataset.inputs, segments, batch,
                                               stop_at_halt=halting, streams=streams)

            run_segments(run, dataset.inputs[:batch], segments, batch, stop_at_halt=halting,
                         streams=streams)
            seconds = timed(go)
            used = float(holder["trace"].halted_at(segments).mean()) if halting else segments
            add(f"model only, {'halting' if halting else 'fixed'}", dtype, compiled, seconds,
                warmup, used, streams, batch)

    model_rows(runs["fp32"], "fp32", False)
    model_rows(runs["bf16"], "bf16", False, streams=1)
    for batch in sorted({BATCH, *(int(b) for b in args.batches.split(","))}):
        model_rows(runs["bf16"], "bf16", False, batch=batch)
    # (label, run, compilation seconds or None for eager, evaluate's options)
    evaluations = [("evaluate --halting", runs["bf16"], None, {"halting_only": True}),
                   ("evaluate, training segments", runs["bf16"], None, {"caps": [segments]}),
                   ("evaluate, scaling curve", runs["bf16"], None, {})]
    if args.compile:
        for streams in (1, args.threads):
            torch._dynamo.reset()
            holder = {}
            warmup = timed(lambda streams=streams, holder=holder: holder.update(
                run=compile_run(runs["bf16"], streams)))
            model_rows(holder["run"], "bf16", True, warmup, streams=streams)
        # the last compiled: one stream per thread, as hrm eval --halting --compile
        evaluations.insert(1, ("evaluate --halting", holder["run"], warmup,
                               {"halting_only": True}))
    for label, run, warmup, options in evaluations:
        holder = {}
        seconds = timed(lambda run=run, options=options, holder=holder: holder.update(
            result=evaluate(run, dataset, batch_size=BATCH, **options)))
        result = holder["result"]
        used = (result["halting"]["mean_segments"] if "halting_only" in options
                else max(point["segments"] for point in result["scaling"]))
        add(label, "bf16", warmup is not None, seconds, warmup or 0.0, mean_segments=used)
    print(f"\n{'what':<28} {'batch':>5} {'dtype':<5} {'compiled':<8} {'streams':>7} "
          f"{'segments':>8} {'warm-up s':>9} {'puzzles/s':>9}")
    for r in rows:
        print(f"{r['what']:<28} {r['batch']:>5} {r['dtype']:<5} {str(r['compiled']):<8} "
              f"{r['streams']:>7} {r['mean_segments']:>8} {r['warmup_s']:>9} "
              f"{r['puzzles_per_s']:>9}")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "run": args.run or "(initial weights)", "rows": rows},
                  fh, indent=2)


if __name__ == "__main__":
    main()
