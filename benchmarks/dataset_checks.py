"""What checking a dataset on load costs: prints a table and writes JSON.

    python benchmarks/dataset_checks.py [--repeats 20] [--json FILE]

Every command that reads a dataset checks each array of the split against the sha256 that
meta.json records, its dtype, shape and token range (puzzles/dataset.py). This times loading a
split that way against reading the same four arrays with ``np.load`` and nothing else,
alternating the two in one process, for a 9×9 Sudoku and a 30×30 maze dataset of 1,000
puzzles per split (the largest the presets use).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from puzzles.dataset import ARRAYS, BuildSpec, PuzzleDataset, build_dataset

SPECS = {
    "sudoku 9x9": BuildSpec("sudoku", 9, "easy", train=1000, test=1000, seed=0),
    "maze 30x30": BuildSpec("maze", 30, "hard", train=1000, test=1000, seed=0),
}


def plain_load(path: Path) -> list[np.ndarray]:
    return [np.load(path / "train" / f"{name}.npy") for name in ARRAYS]


def time_once(load, path: Path) -> float:
    started = time.perf_counter()
    load(path)
    return time.perf_counter() - started


def measure(path: Path, repeats: int) -> dict:
    checked, plain = [], []
    for _ in range(repeats):  # alternating: the machine's noise falls on both alike
        checked.append(time_once(lambda p: PuzzleDataset(p, "train"), path))
        plain.append(time_once(plain_load, path))
    size = sum((path / "train" / f"{name}.npy").stat().st_size for name in ARRAYS)
    return {"megabytes": round(size / 2**20, 2),
            "checked_ms": round(1000 * statistics.median(checked), 2),
            "plain_ms": round(1000 * statistics.median(plain), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default="benchmarks/dataset_checks.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for what, spec in SPECS.items():
            path = build_dataset(spec, Path(scratch) / what.replace(" ", "_"))
            print(f"built {what}", flush=True)
            rows.append({"what": f"{what}, train split of 1000", **measure(path, args.repeats)})
    print("| dataset | MB | load with checks | np.load only | extra |")
    print("|---|---|---|---|---|")
    for row in rows:
        extra = row["checked_ms"] - row["plain_ms"]
        print(f"| {row['what']} | {row['megabytes']} | {row['checked_ms']} ms | "
              f"{row['plain_ms']} ms | {extra:+.2f} ms |")
    machine = {"platform": platform.platform(), "processor": platform.processor(),
               "repeats": args.repeats}
    with open(args.json, "w") as fh:
        json.dump({"machine": machine, "rows": rows}, fh, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
