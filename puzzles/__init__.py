"""Puzzle families (Sudoku, mazes), their generators and graders, and on-disk datasets.

The bottom layer: it imports no other package of the project (no torch models, no training,
no evaluation), so puzzles and datasets can be used without them.
"""

from __future__ import annotations

from typing import Any

from puzzles.base import (
    Grade,
    MultipleSolutionsError,
    NoSolutionError,
    Parsed,
    ParseError,
    PuzzleError,
    PuzzleFamily,
    RuleError,
)

FAMILIES = ("sudoku", "maze")


def make_family(name: str, size: int, **options: Any) -> PuzzleFamily:
    """The family called ``name`` at ``size``; options go to its constructor."""
    if name == "sudoku":
        from puzzles.sudoku import SudokuFamily

        return SudokuFamily(size, **options)
    if name == "maze":
        from puzzles.maze import MazeFamily

        return MazeFamily(size, **options)
    raise ValueError(f"unknown puzzle family {name!r}: choose from {', '.join(FAMILIES)}")


__all__ = [
    "FAMILIES",
    "Grade",
    "MultipleSolutionsError",
    "NoSolutionError",
    "ParseError",
    "Parsed",
    "PuzzleError",
    "PuzzleFamily",
    "RuleError",
    "make_family",
]
