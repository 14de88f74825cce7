"""Solve a user's own puzzles with a trained run, and check every answer.

Each puzzle is checked by the family's exact solver before the model runs: one without a
solution, or a Sudoku with several, is reported as such and not given to the model (its answer
could not be graded). The model runs with learned halting (at most the training segments) or a
fixed number of segments, once or in several test-time attempts (``attempts.py``: the answer
that passes the family's rules is kept); the family's grader judges each answer.

This module deliberately does not parse command lines or print (``hrm/cli.py`` does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from eval.attempts import RULES, AttemptSettings, run_attempts
from eval.runs import Run, run_cot, run_segments
from puzzles.base import Grade, Grid


@dataclass
class Answer:
    puzzle: Grid
    problem: str | None = None  # why the model was not run: "no solution", "several solutions"
    answer: Grid | None = None
    grade: Grade | None = None
    segments: int | None = None  # segments run (None for chain of thought)
    confidence: float | None = None  # ``halt_confidence`` where it stopped (threshold compares it)
    tokens: int | None = None  # chain of thought: tokens generated
    seconds: float = 0.0  # this puzzle's share of the batch's time
    steps: list[Grid] = field(default_factory=list)  # the answer after each segment run
    # test-time attempts: how many ran, which one was kept, whether it passes the family's
    # rules, and what chose it (attempts.RULES)
    attempts: int | None = None
    attempt: int | None = None
    passes_rules: bool | None = None
    chosen_by: str | None = None


def puzzle_problem(run: Run, puzzle: Grid) -> str | None:
    """Why ``puzzle`` cannot be given to the model, or None when it can."""
    solution = run.family.solve(puzzle)
    if solution.count == 0:
        return "no solution" if run.family.name != "maze" else "no path from start to goal"
    if solution.count > 1 and run.family.name != "maze":  # any shortest path is a maze answer
        return "several solutions"
    return None


def solve_puzzles(
    run: Run, puzzles: list[Grid], segments: int | None = None, batch_size: int | None = None,
    beams: int = 1, max_segments: int | None = None, attempts: AttemptSettings | None = None,
    progress=None,
) -> list[Answer]:
    """Check, solve and grade ``puzzles``. ``segments``: run exactly that many (no halting);
    default: learned halting with at most ``max_segments`` (default: the training segments).
    ``beams``: beam width of chain-of-thought decoding (1: greedy). ``attempts``: several
    test-time attempts per puzzle (then no answer keeps its steps). ``progress``: a callable
    given the puzzles done, twice per puzzle (checked, then answered)."""
    family = run.family
    answers = []
    for puzzle in puzzles:
        answers.append(Answer(np.asarray(puzzle), puzzle_problem(run, puzzle)))
        if progress:
            progress(1 if answers[-1].problem is None else 2)
    todo = [a for a in answers if a.problem is None]
    if not todo:
        return answers
    inputs = np.stack([family.encode(a.puzzle) for a in todo])
    started = time.perf_counter()
    if run.decodes:
        decoded = run_cot(run, inputs, batch_size, beams=beams, progress=progress)
        seconds = (time.perf_counter() - started) / len(todo)
        for i, item in enumerate(todo):
            item.tokens, item.seconds = int(decoded.tokens[i]), seconds
            if decoded.parsed[i]:
                item.answer = family.decode(decoded.predictions[i])
                item.grade = family.grade(item.puzzle, item.answer)
            else:
                reason = ("ran out of token budget" if not decoded.finished[i]
                          else "its output does not parse as an answer")
                item.grade = Grade(solved=False, reason=reason)
        return answers
    cap = segments or max_segments or run.max_segments
    if attempts is not None and attempts.count > 1:
        _solve_in_attempts(run, todo, inputs, attempts, cap, segments is None, batch_size,
                           progress)
        return answers
    trace = run_segments(run, inputs, cap, batch_size, progress=progress,
                         stop_at_halt=segments is None)
    seconds = (time.perf_counter() - started) / len(todo)
    used = np.full(len(todo), trace.predictions.shape[1]) if segments else trace.halted_at(cap)
    for i, item in enumerate(todo):
        last = int(used[i])
        item.steps = [family.decode(trace.predictions[i, s]) for s in range(last)]
        item.answer = item.steps[-1]
        item.grade = family.grade(item.puzzle, item.answer)
        item.segments, item.seconds = last, seconds
        item.confidence = float(trace.confidence[i, last - 1])
    return answers


def _solve_in_attempts(run: Run, todo: list[Answer], inputs: np.ndarray,
                       settings: AttemptSettings, cap: int, halting: bool,
                       batch_size: int | None, progress) -> None:
    started = time.perf_counter()
    trace = run_attempts(run, inputs, settings, cap, halting, batch_size, progress)
    seconds = (time.perf_counter() - started) / len(todo)
    for i, item in enumerate(todo):
        item.answer = run.family.decode(trace.answers[i, -1])
        item.grade = run.family.grade(item.puzzle, item.answer)
        item.attempts, item.attempt = int(trace.attempts[i, -1]), int(trace.chosen[i, -1])
        item.passes_rules = bool(trace.passes[i, -1])
        item.chosen_by = RULES[trace.rule[i, -1]]
        item.segments, item.seconds = int(trace.segments[i, -1]), seconds


def cell_places(run: Run) -> list[tuple[int, int]]:
    """(line, column), 0-based, of every cell in the text ``family.format`` writes (the same
    for every grid of a family)."""
    family = run.family
    if family.name == "maze":  # one character per cell
        return [(r, c) for r in range(family.size) for c in range(family.size)]
    blank = family.format(np.zeros((family.size, family.size), dtype=np.uint8))
    return [(line - 1, column - 1) for line, column in family.parse_many(blank)[0].positions]


def changes_beside(run: Run, before: Grid, after: Grid) -> str:
    """``after`` as text, and beside it the same grid showing only the cells that changed
    since ``before`` (a '·' elsewhere), so a reader sees what one segment did."""
    text = run.family.format(after).rstrip("\n")
    lines = text.split("\n")
    marked = [list(line) for line in lines]
    changed = (np.asarray(before) != np.asarray(after)).reshape(-1)
    for (line, column), differs in zip(cell_places(run), changed, strict=True):
        if not differs:
            marked[line][column] = "·"
    width = max(len(line) for line in lines)
    return "\n".join(f"{line:<{width}}   {''.join(mark)}"
                     for line, mark in zip(lines, marked, strict=True))
