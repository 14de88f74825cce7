"""n×n Sudoku (4×4, 6×6, 9×9, 16×16): text formats, generation by difficulty, grading, symmetries.

Cells hold 0 for a blank and 1..n for a digit; as tokens that is 1 for a blank and 2..n+1 for
the digits (0 is padding). Correctness rests on the exact solver in ``sudoku_solver``: every
generated puzzle has exactly one solution, and difficulty is the solver's mean dead-end count
over several random solving orders.

Tiers (mean dead ends; see docs/difficulty.md for measured distributions):
  easy     naked and hidden singles alone solve it (no guess at all)
  medium   needs guessing, rating below 2
  hard     rating 2 to below 10
  extreme  rating 10 and above

This module deliberately does not read or write files; ``formats`` in the CLI and ``dataset``
do that.
"""

from __future__ import annotations

import numpy as np

from puzzles import sudoku_solver as solver
from puzzles.base import (
    Grade,
    Grid,
    Parsed,
    ParseError,
    PuzzleFamily,
    RuleError,
    Solution,
    Symmetry,
)
from puzzles.sudoku_generate import TIER_FLOORS, TIERS, TIERS_BY_SIZE, generate_group

BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3), 16: (4, 4)}
RATING_ORDERS = 16  # solving orders averaged in a rating
RATING_SEED = 20250626  # fixes those orders, so ratings are reproducible
BLANKS = ".0_"
SEPARATORS = "|-+! \t"
DIGIT_CHARS = "123456789ABCDEFG"
CSV_HEADER = "source,question,answer,rating"


class SudokuFamily(PuzzleFamily):
    name = "sudoku"
    difficulties = TIERS

    def __init__(self, size: int = 9) -> None:
        if size not in BOX_SHAPES:
            raise ValueError(f"Sudoku size must be one of {sorted(BOX_SHAPES)}, got {size}")
        self.size = size
        self.difficulties = TIERS_BY_SIZE[size]
        self.box_rows, self.box_cols = BOX_SHAPES[size]
        self.vocab_size = size + 2
        self.geometry = solver.geometry(self.box_rows, self.box_cols)
        self.digit_chars = DIGIT_CHARS[:size]
        self.rating_orders = self.random_orders(np.random.default_rng(RATING_SEED), RATING_ORDERS)

    def __repr__(self) -> str:
        return f"SudokuFamily(size={self.size})"

    # --- tokens -------------------------------------------------------------------------------
    def encode(self, grid: Grid) -> np.ndarray:
        return (np.asarray(grid, dtype=np.uint8) + 1).reshape(-1)

    def decode(self, tokens: np.ndarray) -> Grid:
        """Tokens back to cells; padding and blanks both decode to 0 (blank)."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(self.size, self.size)
        return np.clip(tokens - 1, 0, self.size).astype(np.uint8)

    # --- text ---------------------------------------------------------------------------------
    def format(self, grid: Grid, style: str = "grid") -> str:
        """``line``: one line of n*n characters, '.' for blanks. ``grid``: boxes drawn."""
        chars = [[("." if v == 0 else self.digit_chars[v - 1]) for v in row] for row in grid]
        if style == "line":
            return "".join("".join(row) for row in chars)
        if style != "grid":
            raise ValueError(f"unknown style {style!r}: use 'line' or 'grid'")
        bar = "+".join(["-" * (2 * self.box_cols + 1)] * (self.size // self.box_cols))
        lines = []
        for r, row in enumerate(chars):
            if r and r % self.box_rows == 0:
                lines.append(bar)
            stacks = [row[c : c + self.box_cols] for c in range(0, self.size, self.box_cols)]
            lines.append("|".join(" " + " ".join(s) + " " for s in stacks))
        return "\n".join(lines)

    def parse_many(self, text: str, source: str | None = None) -> list[Parsed]:
        """Every puzzle in ``text``: one per line, grid layouts, .sdk files or reference CSV.

        Blank lines and lines starting with '#' are skipped. Givens that break a rule raise
        RuleError at the offending cell; several solutions are not an error here.
        """
        lines = text.splitlines()
        content = (ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))
        first = next(content, "")
        if first.lower().startswith(CSV_HEADER):
            return self._parse_csv(lines, source)
        puzzles: list[Parsed] = []
        cells: list[tuple[str, int, int]] = []  # (char, line, column) of the puzzle being read
        total = self.size * self.size
        for number, raw in enumerate(lines, start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            for column, char in enumerate(raw, start=1):
                if char in SEPARATORS:
                    continue
                self._cell_value(char, source, number, column)  # bad characters fail here
                cells.append((char, number, column))
                if len(cells) == total:
                    puzzles.append(self._grid_from_cells(cells, source))
                    cells = []
            if cells and len(cells) % self.size:
                raise ParseError(
                    f"row has {len(cells) % self.size} cells, expected {self.size} "
                    f"(or {total} on one line)",
                    source=source,
                    line=number,
                )
        if cells:
            raise ParseError(
                f"incomplete puzzle: {len(cells)} of {total} cells", source=source, line=cells[0][1]
            )
        return puzzles

    def _grid_from_cells(self, cells: list[tuple[str, int, int]], source: str | None) -> Parsed:
        values = np.zeros(len(cells), dtype=np.uint8)
        for i, (char, line, column) in enumerate(cells):
            values[i] = self._cell_value(char, source, line, column)
        grid = values.reshape(self.size, self.size)
        positions = [(line, column) for _, line, column in cells]
        self.check_rules(grid, source, positions)
        return Parsed(grid=grid, line=cells[0][1], positions=positions)

    def _cell_value(self, char: str, source: str | None, line: int, column: int) -> int:
        if char in BLANKS:
            return 0
        value = self.digit_chars.find(char.upper()) + 1
        if value == 0:
            raise ParseError(
                f"unexpected character {char!r} in a {self.size}×{self.size} Sudoku "
                f"(digits {self.digit_chars[0]}-{self.digit_chars[-1]}, blanks . 0 _)",
                source=source,
                line=line,
                column=column,
            )
        return value

    def _parse_csv(self, lines: list[str], source: str | None) -> list[Parsed]:
        total = self.size * self.size
        puzzles = []
        header_seen = False
        for number, raw in enumerate(lines, start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                continue
            fields = raw.strip().split(",")
            if len(fields) != 4:
                raise ParseError(
                    f"expected 4 CSV fields (source,question,answer,rating), got {len(fields)}",
                    source=source,
                    line=number,
                )
            _, question, answer, rating = fields
            column = len(raw) - len(raw.lstrip()) + len(fields[0]) + 2  # 1-based, after indent
            grids = []
            for text in (question, answer):
                if len(text) != total:
                    raise ParseError(
                        f"puzzle has {len(text)} cells, expected {total}",
                        source=source,
                        line=number,
                        column=column,
                    )
                cells = [(char, number, column + i) for i, char in enumerate(text)]
                grids.append(self._grid_from_cells(cells, source))
                column += len(text) + 1
            try:
                value = float(rating)
            except ValueError:
                raise ParseError(
                    f"rating {rating!r} is not a number", source=source, line=number, column=column
                ) from None
            puzzle, solution = grids
            verdict = self.grade(puzzle.grid, solution.grid)
            if not verdict.solved:
                r, c = verdict.cell or (0, 0)
                line, col = solution.positions[r * self.size + c]
                raise RuleError(
                    f"the answer does not solve the question: {verdict.reason}",
                    source=source,
                    line=line,
                    column=col,
                )
            puzzles.append(Parsed(puzzle.grid, number, solution.grid, value, puzzle.positions))
        return puzzles

    def find_repeat(self, grid: Grid) -> tuple[str, int, int] | None:
        """The first (unit name, flat cell, digit) where a digit repeats in a unit, or None."""
        flat = grid.reshape(-1)
        names = ["row"] * self.size + ["column"] * self.size + ["box"] * self.size
        for name, unit in zip(names, self.geometry.units, strict=True):
            seen: set[int] = set()
            for cell in unit:
                digit = int(flat[cell])
                if digit in seen:
                    return name, int(cell), digit
                if digit:
                    seen.add(digit)
        return None

    def check_rules(
        self,
        grid: Grid,
        source: str | None = None,
        positions: list[tuple[int, int]] | None = None,
    ) -> None:
        """Raise RuleError at the first given that repeats a digit in its row, column or box."""
        repeat = self.find_repeat(grid)
        if repeat is None:
            return
        name, cell, digit = repeat
        line, column = positions[cell] if positions else (None, None)
        r, c = divmod(cell, self.size)
        raise RuleError(
            f"digit {self.digit_chars[digit - 1]} repeats in a {name} (cell r{r + 1}c{c + 1})",
            source=source,
            line=line,
            column=column,
        )

    # --- solving and rating -------------------------------------------------------------------
    def _flat(self, grid: Grid) -> np.ndarray:
        return np.ascontiguousarray(grid, dtype=np.int8).reshape(-1)

    def solve(self, puzzle: Grid) -> Solution:
        """Exact solution, the solution count (0, 1 or 2 = "several") and the difficulty."""
        geo, n = self.geometry, self.size
        out = np.empty(n * n, dtype=np.int8)
        count = solver.solve_digits(
            self._flat(puzzle), geo.units, geo.peers, n, 2, solver.MAX_GUESSES, out
        )
        if count < 0:
            raise RuntimeError("solver gave up: search exceeded its guess budget")
        if count == 0:
            return Solution(0, None, float("nan"))
        rating = self.rate(puzzle)
        return Solution(count, out.astype(np.uint8).reshape(self.size, self.size), rating)

    def rate(self, puzzle: Grid) -> float:
        """Mean dead ends to the first solution over RATING_ORDERS solving orders.

        The orders are fixed per size, so a puzzle always gets the same rating and the tier a
        dataset stores is the tier ``hrm check`` reports.
        """
        digit_orders, cell_orders = self.rating_orders
        geo = self.geometry
        return float(
            solver.rate(
                self._flat(puzzle),
                geo.units,
                geo.peers,
                self.size,
                digit_orders,
                cell_orders,
                solver.MAX_GUESSES,
            )
        )

    def singles_suffice(self, puzzle: Grid) -> bool:
        geo = self.geometry
        return bool(solver.singles_suffice(self._flat(puzzle), geo.units, geo.peers, self.size))

    def random_orders(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
        digit_orders = np.argsort(rng.random((k, self.size)), axis=1).astype(np.int32)
        cell_orders = np.argsort(rng.random((k, self.size**2)), axis=1).astype(np.int32)
        return digit_orders, cell_orders

    def tier(self, difficulty: float, singles: bool | None = None) -> str:
        """Tier of a rating; ``singles`` (whether singles suffice) separates easy from medium."""
        if singles:
            return "easy"
        if difficulty >= TIER_FLOORS["extreme"]:
            return "extreme"
        if difficulty >= TIER_FLOORS["hard"]:
            return "hard"
        return "medium"

    def tier_of(self, puzzle: Grid, difficulty: float) -> str:
        return self.tier(difficulty, self.singles_suffice(puzzle))

    def dedupe_key(self, puzzle: Grid, solution: Grid) -> bytes:
        # Small grids have few solution grids (4×4: 288), so only the puzzle itself can be unique.
        return solution.tobytes() if self.size >= 9 else puzzle.tobytes()

    # --- grading ------------------------------------------------------------------------------
    def grade(self, puzzle: Grid, answer: Grid, solution: Grid | None = None) -> Grade:
        """Correct when every given is kept, every cell is filled and no unit repeats a digit."""
        n = self.size
        answer = np.asarray(answer)
        if answer.shape != (n, n):
            shape = "×".join(map(str, answer.shape))
            return Grade(False, False, f"answer is {shape}, expected {n}×{n}")
        changed = np.argwhere((puzzle != 0) & (answer != puzzle))
        if len(changed):
            return Grade(False, False, "a given digit was changed", tuple(changed[0]))
        empty = np.argwhere((answer < 1) | (answer > n))
        if len(empty):
            return Grade(False, False, "cell is not filled with a digit", tuple(empty[0]))
        repeat = self.find_repeat(answer)
        if repeat is not None:
            name, cell, digit = repeat
            reason = f"digit {self.digit_chars[digit - 1]} repeats in a {name}"
            return Grade(False, False, reason, divmod(cell, n))
        exact = None if solution is None else bool(np.array_equal(answer, solution))
        return Grade(True, True if exact is None else exact)

    # --- generation ---------------------------------------------------------------------------
    def generate(self, rng: np.random.Generator, difficulty: str) -> tuple[Grid, Grid, float]:
        return generate_group(self, rng, difficulty, 1)[0]

    def generate_group(
        self, rng: np.random.Generator, difficulty: str, limit: int
    ) -> list[tuple[Grid, Grid, float]]:
        """Up to ``limit`` related puzzles (one search chain for ``extreme``, else one)."""
        return generate_group(self, rng, difficulty, limit)

    # --- symmetries ---------------------------------------------------------------------------
    def random_symmetry(self, rng: np.random.Generator) -> Symmetry:
        """Digit relabelling, band/stack and row/column-within-band permutations, transpose.

        Transpose is a symmetry only when boxes are square (not for 6×6's 2×3 boxes).
        """
        rows = _block_permutation(rng, self.size, self.box_rows)
        cols = _block_permutation(rng, self.size, self.box_cols)
        source = rows[:, None] * self.size + cols[None, :]  # [n, n] source cell of each cell
        if self.box_rows == self.box_cols and rng.random() < 0.5:
            source = source.T
        value_map = np.concatenate([[0, 1], 2 + rng.permutation(self.size)]).astype(np.uint8)
        return Symmetry(source.reshape(-1).astype(np.int64), value_map)


def _block_permutation(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """A permutation of 0..n-1 that moves whole blocks and shuffles inside each block."""
    blocks = rng.permutation(n // block)
    return np.concatenate([b * block + rng.permutation(block) for b in blocks])

