"""Training and evaluation throughput of two checkouts of this repository, side by side: prints a
table and writes JSON.

    python benchmarks/checkout_speed.py OLD_DIR NEW_DIR [--rounds 3] [--steps 80] [--run RUN]

For a change that should not change speed (a refactor): each round runs, in fresh processes
and alternating A, B, B, A so that a machine that slows down or speeds up during the run
weighs on both alike,
- ``hrm train --preset cpu-small`` at full depth (no shallow phase, fp32, eager) for
  ``--steps`` steps; the rate is the trainer's own example-segments per second, averaged over
  its log records after the first;
- with ``--run`` (a trained 9×9 run), its model on 1,000 fresh 9×9 puzzles: 8 segments each
  (fixed) and learned halting, in puzzles per second.
Each checkout runs its own code (``PYTHONPATH``); the data are built once by NEW.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EVAL_SCRIPT = """
import json, sys, time, torch
from eval.runs import load_run, run_segments
from puzzles.dataset import PuzzleDataset
torch.set_num_threads(2)
run, data = load_run(sys.argv[1], dtype="fp32"), PuzzleDataset(sys.argv[2], "test")
run_segments(run, data.inputs[:64], 2)  # warm-up
started = time.perf_counter()
run_segments(run, data.inputs, 8)
fixed = time.perf_counter() - started
started = time.perf_counter()
run_segments(run, data.inputs, 8, stop_at_halt=True)
halting = time.perf_counter() - started
print(json.dumps({"fixed": len(data) / fixed, "halting": len(data) / halting}))
"""


def hrm(tree: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "hrm.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)


def train_rate(tree: Path, data: Path, steps: int, work: Path) -> float:
    out = work / f"run-{os.getpid()}-{len(list(work.iterdir()))}"
    hrm(tree, "train", "--preset", "cpu-small", "--data", str(data), "--out", str(out),
        "--set", f"train.max_steps={steps}", "--set", "train.shallow_steps=0",
        "--set", "train.dtype=fp32", "--set", "train.compile=false",
        "--set", f"train.eval_every={10**6}", "--set", f"train.checkpoint_every={10**6}",
        "--set", "train.calibrate_halting=0", "--set", "train.threads=2", cwd=tree)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["example_segments_per_s"] for r in records if "example_segments_per_s" in r]
    return statistics.mean(rates[1:])


def eval_rates(tree: Path, run: Path, data: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", EVAL_SCRIPT, str(run), str(data)], cwd=tree,
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--run", type=Path, help="a trained 9×9 Sudoku run to evaluate")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/checkout_speed.json"))
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    results: dict[str, dict[str, list[float]]] = {
        name: {"train": [], "eval_fixed": [], "eval_halting": []} for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_data, test_data = work / "train-data", work / "test-data"
        hrm(trees["new"], "data", "build", "sudoku", "--size", "9", "--difficulty", "easy",
            "--train", "1000", "--test", "20", "--seed", "3", "--out", str(train_data),
            cwd=trees["new"])
        hrm(trees["new"], "data", "build", "sudoku", "--size", "9", "--difficulty", "easy",
            "--train", "0", "--test", "1000", "--seed", "4", "--out", str(test_data),
            cwd=trees["new"])
        for round_ in range(args.rounds):
            order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
            for name in order + order[::-1]:
                results[name]["train"].append(train_rate(trees[name], train_data, args.steps,
                                                         work))
                if args.run:
                    rates = eval_rates(trees[name], args.run.resolve(), test_data)
                    results[name]["eval_fixed"].append(rates["fixed"])
                    results[name]["eval_halting"].append(rates["halting"])
                print(f"round {round_ + 1} {name}: train "
                      f"{results[name]['train'][-1]:.1f} example-segments/s", flush=True)
    print("\n| measure | old | new | new / old |\n|---|---|---|---|")
    summary = {}
    for measure, unit in (("train", "example-segments/s"), ("eval_fixed", "puzzles/s"),
                          ("eval_halting", "puzzles/s")):
        old, new = results["old"][measure], results["new"][measure]
        if not old:
            continue
        summary[measure] = {"old": statistics.median(old), "new": statistics.median(new),
                            "unit": unit}
        ratio = summary[measure]["new"] / summary[measure]["old"]
        summary[measure]["ratio"] = ratio
        print(f"| {measure} ({unit}, median of {len(old)}) | {summary[measure]['old']:.1f} | "
              f"{summary[measure]['new']:.1f} | {ratio:.3f} |")
    args.json.write_text(json.dumps({"steps": args.steps, "rounds": args.rounds,
                                     "runs": results, "median": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
