"""Measuring trained models, and using them: load a run, solve puzzles, evaluate on a split,
choose halting thresholds, make test-time attempts, compare models.

It builds on training and the models (``hrm``, ``baselines``) and on ``puzzles``; nothing below
it imports it, and only the ``hrm`` command (``hrm.cli``) is above it.

    from eval import load_run, solve_puzzles, evaluate
    run = load_run("runs/sudoku")
    answers = solve_puzzles(run, [run.family.parse(text) for text in puzzle_strings])
    result = evaluate(run, PuzzleDataset("data/sudoku", "test"))
"""

from eval.attempts import AttemptSettings
from eval.evaluate import evaluate, wilson_interval
from eval.runs import Run, RunError, load_run
from eval.solve import Answer, solve_puzzles

__all__ = ["Answer", "AttemptSettings", "Run", "RunError", "evaluate", "load_run", "solve_puzzles",
           "wilson_interval"]
