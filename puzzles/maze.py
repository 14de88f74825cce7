"""Grid mazes: find a shortest path from the start ``S`` to the goal ``G``.

A maze is an ``n × n`` grid of walls and open cells with exactly one start and one goal. The
answer is the same grid with the cells of one shortest start-to-goal path (4-neighbour steps,
start and goal excluded) marked ``o``. Any shortest path counts as correct, so the grader checks
the path's validity and length instead of comparing with a reference cell by cell.

Two generators and their mix, all driven only by the numpy ``Generator`` passed in:

* ``"walls"`` (default): every cell is a wall independently with probability ``wall_prob``, as
  in the HRM paper's Maze-Hard. Start and goal are the ends of a long path in the largest open
  region, found by two breadth-first sweeps. Smaller regions stay open as distractions.
* ``"carved"``: a random spanning tree over the cells at odd coordinates is carved into
  passages, then a few extra walls are opened to make loops. Same start/goal rule.
* ``"mixed"``: each maze drawn by one of the two, at even odds (a training set that covers
  both kinds of maze).

Difficulty is the shortest path length in steps; the tiers scale with the size so that 'hard'
at 30 × 30 is exactly Maze-Hard (length > 110).

Text: ``#`` wall, ``.`` or space open, ``S`` start, ``G`` goal, ``o`` path (answers only); one
row per line, mazes separated by empty lines.

Deliberately not here: weighted or diagonal moves, non-square mazes, several goals, and any
dataset or file handling beyond parsing and formatting text.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce
from itertools import pairwise
from operator import or_

import numpy as np

from .base import (
    Grade,
    Grid,
    NoSolutionError,
    Parsed,
    ParseError,
    PuzzleFamily,
    RuleCheck,
    RuleError,
    Solution,
    Symmetry,
)

# Token ids; 0 is padding and never appears in a grid.
WALL = 1
OPEN = 2
START = 3
GOAL = 4
PATH = 5
VOCAB_SIZE = 6

GENERATORS = ("walls", "carved", "mixed")  # mixed: each maze from one of the two, at even odds
MIN_SIZE = 5

# Chosen by measurement: over 20,000 random 30 × 30 mazes per density, the share that is
# 'hard' peaks near 1.3% for walls at 0.36-0.38 (0.9% at 0.40, 0.4% at 0.42, 0.7% at 0.33),
# while 'easy' (13%) and 'medium' (86%) stay common.
DEFAULT_WALL_PROB = 0.37
DEFAULT_EXTRA_OPENINGS = 0.05
DEFAULT_MAX_TRIES = 20_000

# 'hard' means a shortest path longer than this many steps per 30 cells of side.
HARD_LENGTH_AT_30 = 110

_CHAR_TO_TOKEN = {"#": WALL, ".": OPEN, " ": OPEN, "S": START, "G": GOAL, "o": PATH}
_TOKEN_CHARS = np.array(["?", "#", ".", "S", "G", "o"])  # indexed by token id


# ---------------------------------------------------------------------------------------------
# Sets of cells as integers, and breadth-first search on them.


class _Cells:
    """Sets of cells of a ``rows × cols`` grid, each set held as one Python integer.

    Cell (r, c) is bit ``r * (cols + 1) + c``. The spare bit closing every row is never set in
    an open-cell set, so shifting a set by one bit moves every cell one column without
    wrapping onto the next row, and shifting by a row's width moves it one row. One
    breadth-first step over the whole grid is then a few integer operations: several times
    faster than visiting cells one by one in Python, and numpy's per-call overhead is too high
    for grids this small.
    """

    def __init__(self, rows: int, cols: int) -> None:
        self.rows = rows
        self.cols = cols
        self.width = cols + 1

    def from_mask(self, mask: np.ndarray) -> int:
        padded = np.zeros((self.rows, self.width), dtype=bool)
        padded[:, : self.cols] = mask
        return int.from_bytes(np.packbits(padded, bitorder="little").tobytes(), "little")

    def to_mask(self, bits: int) -> np.ndarray:
        size = self.rows * self.width
        raw = np.frombuffer(bits.to_bytes((size + 7) // 8, "little"), dtype=np.uint8)
        flat = np.unpackbits(raw, bitorder="little")[:size].astype(bool)
        return flat.reshape(self.rows, self.width)[:, : self.cols]

    def bit(self, row: int, col: int) -> int:
        return 1 << (row * self.width + col)

    def cell(self, bit: int) -> tuple[int, int]:
        """(row, col) of a one-cell set."""
        return divmod(bit.bit_length() - 1, self.width)

    def moves(self, bits: int) -> tuple[int, int, int, int]:
        """The set moved one step up, left, right and down (to be masked with open cells)."""
        return bits >> self.width, bits >> 1, bits << 1, bits << self.width

    def neighbours(self, bits: int) -> int:
        """Cells next to the set (to be masked with open cells)."""
        return bits >> self.width | bits >> 1 | bits << 1 | bits << self.width

    def neighbours_twice(self, bits: int) -> int:
        """Cells with at least two neighbours in the set."""
        once = twice = 0
        for moved in self.moves(bits):
            twice |= once & moved
            once |= moved
        return twice

    def layers(self, open_bits: int, start: int, stop: int = 0) -> list[int]:
        """Breadth-first layers within ``open_bits``: ``layers[k]`` holds the cells k steps
        from ``start``. Ends after the last reachable layer, or the layer that meets
        ``stop``."""
        width = self.width
        layers = [start]
        unvisited = open_bits & ~start
        while not layers[-1] & stop:
            last = layers[-1]
            # neighbours() written out: this loop is where generation spends its time
            front = (last >> width | last >> 1 | last << 1 | last << width) & unvisited
            if not front:
                break
            unvisited ^= front
            layers.append(front)
        return layers


def _lowest(bits: int) -> int:
    """The first cell of a set in row-major order (as a one-cell set)."""
    return bits & -bits


def _trace_back(cells: _Cells, layers: list[int], goal: int) -> int:
    """One shortest path, as a set, from ``layers[0]`` to ``goal`` in the last layer.

    Walking back from the goal, the first neighbour one layer closer wins, in the order up,
    left, right, down, so the choice is deterministic."""
    path = cell = goal
    for layer in reversed(layers[:-1]):
        cell = next(moved for moved in cells.moves(cell) if moved & layer)
        path |= cell
    return path


def _on_shortest_paths(layers: list[int], back: list[int]) -> int:
    """Cells on some shortest path: k steps from the start and L - k from the goal, where
    ``layers`` run from the start to the goal (L + 1 of them) and ``back`` from the goal."""
    length = len(layers) - 1
    return reduce(or_, (layer & back[length - k] for k, layer in enumerate(layers)))


def _several_paths(cells: _Cells, layers: list[int], goal: int) -> bool:
    """Whether more than one shortest path reaches ``goal`` (in the last layer).

    A cell has several shortest paths when a neighbour one layer closer has several, or when
    two neighbours one layer closer exist; this follows that rule layer by layer."""
    several = 0
    for before, layer in pairwise(layers):
        several = layer & (cells.neighbours(several) | cells.neighbours_twice(before))
    return bool(several & goal)


# ---------------------------------------------------------------------------------------------
# Generators: each returns a boolean grid of open cells.


def _random_walls(rng: np.random.Generator, size: int, wall_prob: float) -> np.ndarray:
    return rng.random((size, size)) >= wall_prob


def _find(parent: list[int], node: int) -> int:
    """Union-find root, halving the path on the way."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def _carved(rng: np.random.Generator, size: int, extra_openings: float) -> np.ndarray:
    """Rooms at odd coordinates joined along a random spanning tree, plus a few loops.

    Kruskal's algorithm over the edges in random order builds a minimum spanning tree for
    random edge weights. For even sizes the last row and column stay wall."""
    rooms = (size - 1) // 2  # rooms per side, at 1, 3, .., 2 * rooms - 1
    open_cells = np.zeros((size, size), dtype=bool)
    open_cells[1 : 2 * rooms : 2, 1 : 2 * rooms : 2] = True
    edges = []  # (room, room, wall cell between them)
    for i in range(rooms):
        for j in range(rooms):
            if i + 1 < rooms:
                edges.append((i * rooms + j, (i + 1) * rooms + j, (2 * i + 2, 2 * j + 1)))
            if j + 1 < rooms:
                edges.append((i * rooms + j, i * rooms + j + 1, (2 * i + 1, 2 * j + 2)))
    parent = list(range(rooms * rooms))
    closed = []
    for k in rng.permutation(len(edges)):
        a, b, wall = edges[k]
        root_a, root_b = _find(parent, a), _find(parent, b)
        if root_a == root_b:
            closed.append(wall)
        else:
            parent[root_a] = root_b
            open_cells[wall] = True
    extra = round(extra_openings * len(closed))
    if extra:
        for k in rng.choice(len(closed), size=extra, replace=False):
            open_cells[closed[k]] = True
    return open_cells


# ---------------------------------------------------------------------------------------------
# Grid helpers shared by solving, grading and generation.


def _ends(grid: Grid) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (row, col) of the start and of the goal; RuleError unless there is one of each."""
    found = []
    for token, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        where = np.argwhere(grid == token)
        if len(where) != 1:
            raise RuleError(f"maze has {len(where)} cells marked {name}, expected one")
        found.append((int(where[0][0]), int(where[0][1])))
    return found[0], found[1]


def _read(grid: Grid) -> tuple[_Cells, int, int, int]:
    """The grid as sets: (cells, open cells, start, goal). Start, goal and path marks count
    as open."""
    grid = np.asarray(grid)
    start, goal = _ends(grid)
    cells = _Cells(*grid.shape)
    return cells, cells.from_mask(grid != WALL), cells.bit(*start), cells.bit(*goal)


def _mark_path(puzzle: Grid, cells: _Cells, path: int) -> Grid:
    """The puzzle with the path's open cells (so not start or goal) marked PATH."""
    answer = puzzle.copy()
    answer[cells.to_mask(path) & (puzzle == OPEN)] = PATH
    return answer


def check_solvable(grid: Grid) -> None:
    """Raise NoSolutionError if the goal cannot be reached from the start (RuleError if the
    maze lacks a single start or goal)."""
    cells, open_bits, start, goal = _read(grid)
    if not cells.layers(open_bits, start, stop=goal)[-1] & goal:
        raise NoSolutionError("goal is unreachable from start")


# ---------------------------------------------------------------------------------------------


class MazeFamily(PuzzleFamily):
    """Shortest-path mazes of one size.

    ``wall_prob`` is the wall density of the "walls" generator, ``extra_openings`` the fraction
    of leftover inner walls the "carved" generator opens. With ``unique_path`` every open cell
    that lies on some other shortest path is walled off, so the reference path is the only
    shortest one. ``generate`` gives up after ``max_tries`` mazes of the wrong tier.
    """

    name = "maze"
    vocab_size = VOCAB_SIZE
    difficulties = ("easy", "medium", "hard")

    def __init__(
        self,
        size: int,
        wall_prob: float = DEFAULT_WALL_PROB,
        generator: str = "walls",
        *,
        extra_openings: float = DEFAULT_EXTRA_OPENINGS,
        unique_path: bool = False,
        max_tries: int = DEFAULT_MAX_TRIES,
    ) -> None:
        if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
            raise ValueError(f"maze size must be an integer >= {MIN_SIZE}, got {size!r}")
        if not 0.0 <= wall_prob < 1.0:
            raise ValueError(f"wall_prob must be in [0, 1), got {wall_prob}")
        if generator not in GENERATORS:
            raise ValueError(f"unknown maze generator {generator!r}; choose from {GENERATORS}")
        if not 0.0 <= extra_openings <= 1.0:
            raise ValueError(f"extra_openings must be in [0, 1], got {extra_openings}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        self.size = int(size)
        self.wall_prob = float(wall_prob)
        self.generator = generator
        self.extra_openings = float(extra_openings)
        self.unique_path = unique_path
        self.max_tries = max_tries
        self._cells = _Cells(self.size, self.size)

    # -- difficulty --------------------------------------------------------------------------

    @property
    def hard_length(self) -> float:
        """Paths longer than this are 'hard'; half of it separates 'easy' from 'medium'."""
        return HARD_LENGTH_AT_30 * self.size / 30

    def tier(self, difficulty: float) -> str:
        if difficulty > self.hard_length:
            return "hard"
        if difficulty > self.hard_length / 2:
            return "medium"
        return "easy"

    # -- generation --------------------------------------------------------------------------

    def generate(self, rng: np.random.Generator, difficulty: str) -> tuple[Grid, Grid, float]:
        """A maze whose shortest path falls in the tier, its reference answer (equal to
        ``solve(puzzle).grid``) and the path length. Draws mazes until one fits; ValueError
        after ``max_tries`` misses."""
        if difficulty not in self.difficulties:
            raise ValueError(f"unknown difficulty {difficulty!r}; choose from {self.difficulties}")
        for _ in range(self.max_tries):
            found = self._attempt(rng, difficulty)
            if found is not None:
                return found
        raise ValueError(
            f"no {difficulty!r} maze after {self.max_tries} tries ({self._describe()}); "
            f"'{difficulty}' needs a shortest path of {self._tier_range(difficulty)} steps, "
            "which this size and generator rarely or never give"
        )

    def _attempt(
        self, rng: np.random.Generator, difficulty: str
    ) -> tuple[Grid, Grid, float] | None:
        """One maze with its start and goal, or None if its path is not in the tier."""
        open_cells = self._draw(rng)
        open_bits = self._cells.from_mask(open_cells)
        first = self._sweep_from_random_cell(open_cells, open_bits, rng)
        if first is None:
            return None
        # The final length lies between this sweep's reach and twice it (triangle
        # inequality), so most mazes of the wrong tier are dropped without a second sweep.
        reach = len(first) - 1
        if not self._tier_within(difficulty, reach, 2 * reach):
            return None
        layers = self._cells.layers(open_bits, _lowest(first[-1]))
        if self.tier(len(layers) - 1) != difficulty:
            return None
        return self._build(open_bits, layers)

    def _tier_within(self, difficulty: str, shortest: int, longest: int) -> bool:
        """Whether some length from ``shortest`` to ``longest`` falls in the tier."""
        order = self.difficulties
        low, high = order.index(self.tier(shortest)), order.index(self.tier(longest))
        return low <= order.index(difficulty) <= high

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        generator = self.generator
        if generator == "mixed":
            generator = ("walls", "carved")[int(rng.integers(2))]
        if generator == "walls":
            return _random_walls(rng, self.size, self.wall_prob)
        return _carved(rng, self.size, self.extra_openings)

    def _sweep_from_random_cell(
        self, open_cells: np.ndarray, open_bits: int, rng: np.random.Generator
    ) -> list[int] | None:
        """Layers of a sweep from a uniformly random cell of the largest open region (ties go
        to the region found first), or None if that region is a single cell.

        Draw a random open cell not seen yet and sweep its region, until fewer cells are
        unseen than the largest region seen has: no unseen region can then be larger. The
        first cell drawn from a region is a uniform pick within it, so the largest region's
        sweep is the one wanted. Usually the first draw lands in a region holding most open
        cells and is the only one."""
        cells = self._cells
        unseen = open_cells.copy()
        unseen_count = int(unseen.sum())
        best: list[int] = []
        best_count = 0
        while unseen_count > best_count:
            where = np.flatnonzero(unseen)
            row, col = divmod(int(where[rng.integers(len(where))]), self.size)
            layers = cells.layers(open_bits, cells.bit(row, col))
            region = reduce(or_, layers)
            unseen &= ~cells.to_mask(region)
            unseen_count -= region.bit_count()
            if region.bit_count() > best_count:
                best, best_count = layers, region.bit_count()
        return best if best_count > 1 else None

    def _build(self, open_bits: int, layers: list[int]) -> tuple[Grid, Grid, float]:
        """Puzzle and reference answer for a start (``layers[0]``) and goal (the first cell of
        the last layer)."""
        cells = self._cells
        start, goal = layers[0], _lowest(layers[-1])
        path = _trace_back(cells, layers, goal)
        if self.unique_path:
            # Wall off every cell on some other shortest path. No route is added, so the
            # shortest length stays L; a route of length L visits at step k a cell k steps from
            # the start and L - k from the goal, and only the path's own cell is left with that
            # property at each k, so the path is now the only shortest one.
            back = cells.layers(open_bits, goal)
            open_bits &= ~(_on_shortest_paths(layers, back) & ~path)
        puzzle = np.where(cells.to_mask(open_bits), OPEN, WALL).astype(np.uint8)
        puzzle[cells.cell(start)] = START
        puzzle[cells.cell(goal)] = GOAL
        return puzzle, _mark_path(puzzle, cells, path), float(len(layers) - 1)

    def _describe(self) -> str:
        walls = f"walls with wall_prob={self.wall_prob}"
        carved = f"carved with extra_openings={self.extra_openings}"
        described = {"walls": walls, "carved": carved, "mixed": f"{walls} or {carved}"}
        return f"{self.size}x{self.size}, {described[self.generator]}"

    def _tier_range(self, difficulty: str) -> str:
        hard = self.hard_length
        return {
            "easy": f"at most {hard / 2:g}",
            "medium": f"more than {hard / 2:g} and at most {hard:g}",
            "hard": f"more than {hard:g}",
        }[difficulty]

    # -- solving and grading -----------------------------------------------------------------

    def solve(self, puzzle: Grid) -> Solution:
        """Breadth-first search from the start. ``count`` is 1 for a unique shortest path, 2
        for several, and 0 (with ``difficulty`` 0.0) when the goal is unreachable. Path marks
        already in ``puzzle`` are ignored."""
        puzzle = np.where(np.asarray(puzzle) == PATH, OPEN, puzzle).astype(np.uint8)
        cells, open_bits, start, goal = _read(puzzle)
        layers = cells.layers(open_bits, start, stop=goal)
        if not layers[-1] & goal:
            return Solution(count=0, grid=None, difficulty=0.0)
        grid = _mark_path(puzzle, cells, _trace_back(cells, layers, goal))
        count = 2 if _several_paths(cells, layers, goal) else 1
        return Solution(count=count, grid=grid, difficulty=float(len(layers) - 1))

    def check_solvable(self, grid: Grid) -> None:
        """Raise NoSolutionError if the goal is unreachable (see ``check_solvable``)."""
        check_solvable(grid)

    def grade(self, puzzle: Grid, answer: Grid, solution: Grid | None = None) -> Grade:
        """Solved when ``answer`` is the puzzle with exactly one shortest path marked; any
        shortest path counts. ``exact`` compares with ``solution`` when one is given."""
        puzzle, answer = np.asarray(puzzle), np.asarray(answer)
        verdict = _check_cells(puzzle, answer) or _check_route(puzzle, answer)
        exact = None if solution is None else bool(np.array_equal(answer, solution))
        if verdict is None:
            return Grade(solved=True, exact=exact)
        verdict.exact = exact
        return verdict

    def check_answer(self, puzzle: Grid, answer: Grid) -> RuleCheck:
        """Passes when the marked cells, start and goal form one simple start-to-goal path
        over open cells (nothing else changed); its cost is the path's length in steps, and it
        is ``best`` at the shortest length, which breadth-first search on the puzzle gives."""
        puzzle, answer = np.asarray(puzzle), np.asarray(answer)
        if _check_cells(puzzle, answer) is not None:
            return RuleCheck(passes=False)
        drawn = np.isin(answer, (PATH, START, GOAL))
        padded = np.pad(drawn, 1)
        beside = (padded[:-2, 1:-1].astype(np.int8) + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])  # drawn neighbours of every cell
        ends = (answer == START) | (answer == GOAL)
        if (beside[ends] != 1).any() or (beside[answer == PATH] != 2).any():
            return RuleCheck(passes=False)  # a branch, a loop beside the path, or a dead end
        cells, open_bits, start, goal = _read(puzzle)
        drawn_bits = cells.from_mask(drawn)
        if reduce(or_, cells.layers(drawn_bits, start)) != drawn_bits:
            return RuleCheck(passes=False)  # a start-to-goal path and, apart from it, a loop
        steps = int(drawn.sum()) - 1
        shortest = len(cells.layers(open_bits, start, stop=goal)) - 1
        return RuleCheck(passes=True, cost=steps, best=steps == shortest)

    # -- symmetries --------------------------------------------------------------------------

    def symmetry(self, index: int) -> Symmetry:
        """Symmetry ``index`` of the 8: ``index % 4`` quarter turns, then a transpose if
        ``index >= 4``. Tokens are unchanged."""
        n = self.size
        moved = np.rot90(np.arange(n * n).reshape(n, n), index % 4)
        if index >= 4:
            moved = moved.T
        return Symmetry(
            cell_perm=np.ascontiguousarray(moved).reshape(-1),
            value_map=np.arange(VOCAB_SIZE, dtype=np.uint8),
        )

    def random_symmetry(self, rng: np.random.Generator) -> Symmetry:
        return self.symmetry(int(rng.integers(8)))

    def dedupe_key(self, puzzle: Grid, solution: Grid) -> bytes:
        """The same for all 8 rotations and reflections of a maze: training augments with
        them, so a rotated test maze in train would be a test maze seen in training."""
        flat = self.encode(puzzle)
        return min(self.symmetry(k).apply(flat).tobytes() for k in range(8))

    # -- text --------------------------------------------------------------------------------

    def format(self, grid: Grid, style: str = "grid") -> str:
        """One line per row, each ending in a newline; open cells as '.' so that trailing
        spaces never matter."""
        if style != "grid":
            raise ValueError(f"unknown maze format style {style!r}; the only one is 'grid'")
        grid = np.asarray(grid)
        if grid.ndim != 2 or grid.size == 0 or grid.min() < WALL or grid.max() > PATH:
            raise ValueError("not a maze grid: expected a 2-d array of tokens 1..5")
        return "".join("".join(row) + "\n" for row in _TOKEN_CHARS[grid])

    def parse_many(
        self, text: str, source: str | None = None, allow_path: bool = False
    ) -> list[Parsed]:
        """Every maze in ``text``; mazes are separated by empty lines (a line of spaces is a
        row). With ``allow_path`` the text may mark a path with 'o': if it does,
        ``Parsed.grid`` is the puzzle without it and ``Parsed.solution`` the grid as
        written."""
        return [self._parse_block(rows, source, allow_path) for rows in _blocks(text.split("\n"))]

    def parse_answer(self, text: str, source: str | None = None) -> Grid:
        """Exactly one maze that may mark a path with 'o', as written."""
        found = self.parse_many(text, source, allow_path=True)
        if len(found) != 1:
            raise ParseError(f"expected one maze, found {len(found)}", source=source)
        return found[0].grid if found[0].solution is None else found[0].solution

    def _parse_block(
        self, rows: list[tuple[int, str]], source: str | None, allow_path: bool
    ) -> Parsed:
        first_line, width = rows[0][0], len(rows[0][1])
        for line, row in rows:
            _check_row(row, line, width, source, allow_path)
        if len(rows) != width:
            raise ParseError(
                f"maze is {len(rows)} rows x {width} columns; mazes must be square",
                source=source,
                line=first_line,
            )
        if width != self.size:
            n = self.size
            raise ParseError(
                f"maze is {width}x{width}, expected {n}x{n}", source=source, line=first_line
            )
        grid = np.array([[_CHAR_TO_TOKEN[ch] for ch in row] for _, row in rows], dtype=np.uint8)
        positions = [(line, col + 1) for line, row in rows for col in range(len(row))]
        _check_ends(grid, positions, source, first_line)
        if (grid == PATH).any():
            puzzle = np.where(grid == PATH, OPEN, grid).astype(np.uint8)
            return Parsed(grid=puzzle, line=first_line, solution=grid, positions=positions)
        return Parsed(grid=grid, line=first_line, positions=positions)


# ---------------------------------------------------------------------------------------------
# Grading steps: each returns a failed Grade, or None when its check passes.


def _check_cells(puzzle: Grid, answer: Grid) -> Grade | None:
    """Shape, then the first cell (row-major) that differs other than open -> path."""
    if answer.shape != puzzle.shape:
        got = "x".join(map(str, answer.shape))
        want = "x".join(map(str, puzzle.shape))
        return Grade(solved=False, reason=f"shape {got}, expected {want}")
    allowed = (puzzle == OPEN) & (answer == PATH)
    wrong = np.argwhere((answer != puzzle) & ~allowed)
    if len(wrong) == 0:
        return None
    row, col = (int(x) for x in wrong[0])
    reason = _change_reason(int(puzzle[row, col]), int(answer[row, col]))
    return Grade(solved=False, reason=reason, cell=(row, col))


def _change_reason(before: int, after: int) -> str:
    if not WALL <= after <= PATH:
        return f"unknown token {after}"
    if START in (before, after):
        return "start moved"
    if GOAL in (before, after):
        return "goal moved"
    if before == WALL:
        return "path goes through a wall" if after == PATH else "wall changed"
    if after == WALL:
        return "wall added"
    return "cell changed"


def _check_route(puzzle: Grid, answer: Grid) -> Grade | None:
    """The marked cells with start and goal must form one shortest start-to-goal path.

    A connected set of exactly L + 1 cells (L the shortest length) holding both ends is a
    shortest path: any route through it has at least L steps, so it uses every cell once."""
    cells, open_bits, start, goal = _read(puzzle)
    layers = cells.layers(open_bits, start, stop=goal)
    if not layers[-1] & goal:
        return Grade(solved=False, reason="goal is unreachable from start")
    length = len(layers) - 1
    back = cells.layers(open_bits, goal)
    drawn = cells.from_mask(np.isin(answer, (PATH, START, GOAL)))
    reached = reduce(or_, cells.layers(drawn, start))
    if not reached & goal:
        # point at the drawn cell nearest the goal: where the path breaks off
        nearest = next(layer & reached for layer in back if layer & reached)
        return Grade(
            solved=False,
            reason="path does not connect start to goal",
            cell=cells.cell(_lowest(nearest)),
        )
    marked = cells.from_mask(answer == PATH)
    if marked.bit_count() != length - 1:
        return Grade(
            solved=False,
            reason=f"path is not shortest (len {marked.bit_count() + 1}, shortest {length})",
            cell=cells.cell(_surplus(marked, layers, back)),
        )
    return None


def _surplus(marked: int, layers: list[int], back: list[int]) -> int:
    """A marked cell that cannot be on the shortest path drawn: the first one off every
    shortest path, else the second marked cell at the nearest distance marked twice."""
    off = marked & ~_on_shortest_paths(layers, back)
    if off:
        return _lowest(off)
    for layer in layers:
        doubled = marked & layer
        if doubled & (doubled - 1):
            return _lowest(doubled & (doubled - 1))
    return _lowest(marked)


# ---------------------------------------------------------------------------------------------
# Parsing steps.


def _blocks(lines: list[str]) -> Iterator[list[tuple[int, str]]]:
    """Runs of non-empty lines, as lists of (1-based line number, text)."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if line:
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _check_row(row: str, line: int, width: int, source: str | None, allow_path: bool) -> None:
    for col, ch in enumerate(row, start=1):
        if ch not in _CHAR_TO_TOKEN:
            raise ParseError(
                f"unknown character {ch!r}; mazes use '#', '.', ' ', 'S', 'G' and 'o'",
                source=source,
                line=line,
                column=col,
            )
        if ch == "o" and not allow_path:
            raise ParseError(
                "path mark 'o' is only allowed in answers", source=source, line=line, column=col
            )
    if len(row) != width:
        raise ParseError(
            f"row has {len(row)} cells, expected {width}",
            source=source,
            line=line,
            column=min(len(row), width) + 1,
        )


def _check_ends(
    grid: Grid, positions: list[tuple[int, int]], source: str | None, first_line: int
) -> None:
    """Exactly one 'S' and one 'G'; a second one is reported where it stands."""
    for token, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        found = np.flatnonzero(grid.ravel() == token)
        if len(found) == 0:
            raise RuleError(f"maze has no {name}", source=source, line=first_line)
        if len(found) > 1:
            line, col = positions[found[1]]
            raise RuleError(f"maze has a second {name}", source=source, line=line, column=col)
