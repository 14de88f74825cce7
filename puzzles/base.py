"""The interface every puzzle family implements, and the errors bad input raises.

A family is a kind of puzzle at one size (9×9 Sudoku, 15×15 mazes). It knows its text format,
how to generate and rate puzzles, how to grade an answer, its label-preserving symmetries and
its token vocabulary. Grids are small integer numpy arrays ``[n, n]`` in the family's own cell
values; ``encode`` turns them into flat token ids (0 is reserved for padding) and ``decode`` back.
Symmetries act on token ids, so the data loader can apply them to whole batches.

This module deliberately holds no puzzle logic: only the shared contract and error types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

Grid = np.ndarray  # [n, n] uint8 cell values


class PuzzleError(ValueError):
    """Bad puzzle input. ``str()`` gives one line: ``source:line:column: message``."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column

    def located(self, *, source: str | None = None, line_offset: int = 0) -> PuzzleError:
        """Return this error with a source name filled in and its line shifted."""
        self.source = self.source or source
        if self.line is not None:
            self.line += line_offset
        return self

    def __str__(self) -> str:
        where = [str(p) for p in (self.source, self.line, self.column) if p is not None]
        return ": ".join([":".join(where), self.message]) if where else self.message


class ParseError(PuzzleError):
    """The text is not a puzzle of this family: wrong length, unknown character, bad shape."""


class RuleError(PuzzleError):
    """The puzzle parses but breaks a rule of its family (a repeated digit, two starts)."""


class NoSolutionError(PuzzleError):
    """The puzzle is well formed but has no solution (or the goal cannot be reached)."""


class MultipleSolutionsError(PuzzleError):
    """The puzzle has more than one solution."""


@dataclass
class Grade:
    """The grader's verdict on one answer.

    ``solved`` is the verdict that counts. ``exact`` says whether the answer equals the reference
    solution cell for cell (for Sudoku the two agree; a maze can have several shortest paths).
    ``reason`` and ``cell`` (row, column, 0-based) say what is wrong when not solved.
    """

    solved: bool
    exact: bool | None = None
    reason: str | None = None
    cell: tuple[int, int] | None = None

    def __str__(self) -> str:
        if self.solved:
            return "correct"
        at = f" at row {self.cell[0] + 1}, column {self.cell[1] + 1}" if self.cell else ""
        return f"wrong: {self.reason}{at}"


@dataclass
class Parsed:
    """One puzzle read from text, with where it came from (1-based line of its first row)."""

    grid: Grid
    line: int
    solution: Grid | None = None  # present when the text carried one (CSV, maze answers)
    rating: float | None = None  # present when the text carried one (CSV)
    positions: list[tuple[int, int]] = field(default_factory=list)  # (line, column) per cell


@dataclass
class Symmetry:
    """A label-preserving transform as index arrays, so it applies to token batches cheaply.

    ``cell_perm[i]`` is the source cell of output cell ``i`` (flat indices, length n*n) and
    ``value_map[t]`` the new token for token ``t`` (length vocab_size; 0 maps to 0).
    """

    cell_perm: np.ndarray
    value_map: np.ndarray

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        """Apply to flat tokens ``[..., n*n]``."""
        return self.value_map[tokens[..., self.cell_perm]]

    def inverse(self) -> Symmetry:
        """The symmetry that undoes this one: ``s.inverse().apply(s.apply(t)) == t``."""
        return Symmetry(np.argsort(self.cell_perm), np.argsort(self.value_map).astype(np.uint8))


@dataclass
class RuleCheck:
    """What the family's rules say of an answer, without the reference solution.

    ``passes``: the answer keeps the puzzle and obeys every rule (Sudoku: it is a solution;
    maze: one simple start-to-goal path over open cells). ``cost``: lower is better among
    answers that pass (a maze path's length; 0 for Sudoku). ``best``: no answer can do better,
    so a search for answers may stop here (a Sudoku solution; a maze path of the shortest
    length)."""

    passes: bool
    cost: int = 0
    best: bool = False


@dataclass
class Solution:
    """What a family's exact solver says about a puzzle."""

    count: int  # 0, 1 or 2 (2 means "at least two")
    grid: Grid | None  # the solution when count >= 1
    difficulty: float  # the family's difficulty measure


class PuzzleFamily(ABC):
    """One family at one size. Subclasses fill in the class attributes and methods."""

    name: str  # "sudoku" or "maze"
    size: int  # grid side n
    vocab_size: int  # token ids are 0 (padding) .. vocab_size-1
    difficulties: tuple[str, ...]  # tiers accepted by generate()

    @property
    def seq_len(self) -> int:
        return self.size * self.size

    # text
    @abstractmethod
    def parse_many(self, text: str, source: str | None = None) -> list[Parsed]:
        """Every puzzle in ``text``; raises ParseError/RuleError with line and column."""

    def parse(self, text: str, source: str | None = None) -> Grid:
        """Exactly one puzzle from ``text``."""
        found = self.parse_many(text, source)
        if len(found) != 1:
            raise ParseError(f"expected one puzzle, found {len(found)}", source=source)
        return found[0].grid

    @abstractmethod
    def format(self, grid: Grid, style: str = "grid") -> str:
        """Text for a puzzle or an answer; ``parse(format(g)) == g``."""

    # generation and solving
    @abstractmethod
    def generate(self, rng: np.random.Generator, difficulty: str) -> tuple[Grid, Grid, float]:
        """A new puzzle of the given tier, its (reference) solution and its difficulty."""

    @abstractmethod
    def solve(self, puzzle: Grid) -> Solution:
        """Exact solution by search, with the solution count up to 2 and the difficulty."""

    @abstractmethod
    def grade(self, puzzle: Grid, answer: Grid, solution: Grid | None = None) -> Grade:
        """Whether ``answer`` correctly solves ``puzzle``; if not, which rule and which cell."""

    def check_answer(self, puzzle: Grid, answer: Grid) -> RuleCheck:
        """The rule check of an answer. Default: the grader, for families where an answer that
        keeps every rule is a correct one (each family's grade never reads a solution)."""
        solved = self.grade(puzzle, answer).solved
        return RuleCheck(passes=solved, best=solved)

    @abstractmethod
    def tier(self, difficulty: float) -> str:
        """The name of the tier a difficulty value falls in."""

    def tier_of(self, puzzle: Grid, difficulty: float) -> str:
        """The tier of a puzzle with this difficulty (families whose tiers need more than the
        number override this)."""
        return self.tier(difficulty)

    def dedupe_key(self, puzzle: Grid, solution: Grid) -> bytes:
        """Two items with the same key count as the same puzzle when splitting a dataset."""
        return puzzle.tobytes()

    # symmetries and tokens
    @abstractmethod
    def random_symmetry(self, rng: np.random.Generator) -> Symmetry:
        """A uniformly chosen label-preserving symmetry."""

    def augment(
        self, rng: np.random.Generator, puzzle: Grid, solution: Grid
    ) -> tuple[Grid, Grid]:
        """The same random symmetry applied to a puzzle and its solution."""
        sym = self.random_symmetry(rng)
        return (
            self.decode(sym.apply(self.encode(puzzle))),
            self.decode(sym.apply(self.encode(solution))),
        )

    def encode(self, grid: Grid) -> np.ndarray:
        """Flat token ids ``[n*n]`` (uint8). Default: cell values are the token ids."""
        return np.ascontiguousarray(grid, dtype=np.uint8).reshape(-1)

    def decode(self, tokens: np.ndarray) -> Grid:
        """A grid ``[n, n]`` from flat token ids (the inverse of ``encode``)."""
        return np.asarray(tokens, dtype=np.uint8).reshape(self.size, self.size)
