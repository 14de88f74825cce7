"""Puzzle generation and loader speed: prints a table and writes JSON.

    python benchmarks/generation.py [--workers 2] [--extreme 200] [--json FILE]

Each row generates a fresh dataset split in memory with ``generate_splits`` (the code path of
``hrm data build``, workers included), so the rates include every rejection and uniqueness
check. The loader row times shuffled, augmented batches from an in-memory dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from puzzles.dataset import BatchLoader, BuildSpec, PuzzleDataset, build_dataset, generate_splits


def time_generation(spec: BuildSpec, workers: int) -> dict:
    generate_splits(BuildSpec(spec.family, spec.size, spec.difficulty, 2, 0, seed=999), 1)  # JIT
    start = time.perf_counter()
    splits = generate_splits(spec, workers)
    seconds = time.perf_counter() - start
    count = sum(len(a["inputs"]) for a in splits.values())
    ratings = np.concatenate([a["difficulty"] for a in splits.values()])
    return {
        "what": f"{spec.family} {spec.size}x{spec.size} {spec.difficulty}",
        "count": count,
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds, 1),
        "difficulty_mean": round(float(ratings.mean()), 2),
    }


def time_loader(path: str, batch_size: int, batches: int) -> dict:
    dataset = PuzzleDataset(path, "train")
    loader = BatchLoader(dataset, batch_size, seed=0)
    seen, epoch, start = 0, 0, time.perf_counter()
    while seen < batches * batch_size:
        for inputs, _ in loader.epoch(epoch):
            seen += len(inputs)
        epoch += 1
    seconds = time.perf_counter() - start
    return {
        "what": f"loader {dataset.family.name} {dataset.family.size}x{dataset.family.size} "
        f"batch {batch_size}",
        "count": seen,
        "seconds": round(seconds, 2),
        "per_second": round(seen / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--count", type=int, default=1000, help="puzzles per easy/medium row")
    parser.add_argument("--extreme", type=int, default=200, help="9×9 extreme puzzles to time")
    parser.add_argument("--mazes", type=int, default=1000, help="hard mazes per maze row")
    parser.add_argument("--json", default="benchmarks/generation.json")
    parser.add_argument("--tmp", default="/tmp/hrm-bench-data")
    args = parser.parse_args()

    rows = []
    jobs = [
        BuildSpec("sudoku", 9, "easy", args.count, 0),
        BuildSpec("sudoku", 9, "medium", args.count, 0),
        BuildSpec("sudoku", 9, "hard", args.count // 4, 0),
        BuildSpec("sudoku", 9, "extreme", args.extreme, 0),
        BuildSpec("maze", 30, "hard", args.mazes, 0),
        BuildSpec("maze", 15, "hard", args.mazes // 4, 0),
    ]
    for spec in jobs:
        rows.append(time_generation(spec, args.workers))
        print(rows[-1], flush=True)
    build_dataset(BuildSpec("sudoku", 9, "easy", 1000, 0), f"{args.tmp}/s9", force=True)
    build_dataset(BuildSpec("maze", 30, "easy", 500, 0), f"{args.tmp}/m30", force=True)
    for path, batch in ((f"{args.tmp}/s9", 64), (f"{args.tmp}/s9", 768), (f"{args.tmp}/m30", 64)):
        rows.append(time_loader(path, batch, 200))

    print(f"\n{'what':<34} {'count':>6} {'seconds':>8} {'per second':>11} {'mean rating':>12}")
    for row in rows:
        rating = row.get("difficulty_mean", "")
        print(f"{row['what']:<34} {row['count']:>6} {row['seconds']:>8} "
              f"{row['per_second']:>11} {rating:>12}")
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "workers": args.workers}
    with open(args.json, "w") as fh:
        json.dump({"machine": machine, "rows": rows}, fh, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
