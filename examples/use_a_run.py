"""Use a trained run from Python: solve puzzle strings, then evaluate on a dataset.

    python examples/use_a_run.py runs/quickstart/runs/hrm-seed0

(``hrm quickstart`` makes that run in a few minutes.)
"""

import sys

from eval import evaluate, load_run, solve_puzzles
from puzzles.dataset import PuzzleDataset

run = load_run(sys.argv[1])
with open("examples/sudoku-4x4.txt") as file:
    puzzles = [run.family.parse(line) for line in file if line.strip() and line[0] != "#"]
for answer in solve_puzzles(run, puzzles):
    print(run.family.format(answer.answer), answer.grade, f"({answer.segments} segments)\n")

result = evaluate(run, PuzzleDataset(run.own_data(), "test"))  # the run's own test split
print(f"solved {result['solved']['rate']:.1%} of {result['puzzles']} test puzzles "
      f"(95% interval {result['solved']['low']:.1%}–{result['solved']['high']:.1%})")
