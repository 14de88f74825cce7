"""The measured difficulty distribution of every Sudoku and maze tier: prints a markdown table
and writes JSON (the numbers in docs/difficulty.md come from here).

    python benchmarks/difficulty.py [--count 200] [--json benchmarks/difficulty.json]

Sudoku rows rate each puzzle with the family's fixed 16 solving orders (mean dead ends) and
count its clues; maze rows give the shortest-path length. Tiers a size cannot reach are listed
as such.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from puzzles import make_family

SUDOKU = {4: ("easy",), 6: ("easy", "medium"), 9: ("easy", "medium", "hard", "extreme"),
          16: ("easy",)}
MAZES = {15: ("easy", "medium", "hard"), 30: ("easy", "medium", "hard")}


def measure(family_name: str, size: int, tier: str, count: int) -> dict:
    family = make_family(family_name, size)
    rng = np.random.default_rng(0)
    ratings, clues = [], []
    start = time.perf_counter()
    try:
        for _ in range(count):
            puzzle, _, rating = family.generate(rng, tier)
            ratings.append(rating)
            clues.append(int((puzzle > 0).sum()) if family_name == "sudoku" else 0)
    except ValueError as err:
        return {"family": family_name, "size": size, "tier": tier, "error": str(err)}
    seconds = time.perf_counter() - start
    r = np.array(ratings)
    return {
        "family": family_name,
        "size": size,
        "tier": tier,
        "count": count,
        "per_second": round(count / seconds, 1),
        "mean": round(float(r.mean()), 2),
        "min": round(float(r.min()), 2),
        "median": round(float(np.median(r)), 2),
        "p90": round(float(np.quantile(r, 0.9)), 2),
        "max": round(float(r.max()), 2),
        "clues": round(float(np.mean(clues)), 1) if family_name == "sudoku" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--json", default="benchmarks/difficulty.json")
    args = parser.parse_args()
    rows = []
    for family_name, sizes in (("sudoku", SUDOKU), ("maze", MAZES)):
        for size, tiers in sizes.items():
            for tier in tiers:
                count = max(10, args.count // 10) if tier == "extreme" else args.count
                rows.append(measure(family_name, size, tier, count))
                print(rows[-1], flush=True)
    print("\n| family | size | tier | n | mean | min | median | 90% | max | clues | per s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['family']} | {row['size']} | {row['tier']} | not reachable |"
                  " | | | | | | |")
            continue
        print(f"| {row['family']} | {row['size']} | {row['tier']} | {row['count']} | "
              f"{row['mean']} | {row['min']} | {row['median']} | {row['p90']} | {row['max']} | "
              f"{row['clues'] or ''} | {row['per_second']} |")
    with open(args.json, "w") as fh:
        json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
