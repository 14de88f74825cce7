"""Reasoning traces for the chain-of-thought baseline, written by our own solvers.

Sudoku: the placements a human-style solver makes, in order, each with its reason:

    NAKED r c d     the cell has one candidate left
    HIDDEN r c d    the digit has one place left in a row, column or box
    GUESS r c d     no single applies: try the smallest candidate of a cell with fewest
    BACKTRACK       the last guess led to a contradiction: undo back to it, try its next digit

Singles are taken in a fixed order (naked before hidden, cells row by row), so a puzzle has
exactly one trace. Maze: the route from S to G, one move at a time (UP, DOWN, LEFT, RIGHT),
each move to the neighbour one step closer to G, which is why it is on a shortest path: the
trace is what the answer grid draws, in the order a walker would take it.

This module deliberately knows nothing of tokens or models: ``baselines/cot.py`` encodes.
"""

from __future__ import annotations

import functools
import operator
from collections import deque
from dataclasses import dataclass

import numpy as np

from puzzles.base import NoSolutionError
from puzzles.maze import GOAL, OPEN, PATH, START, WALL

NAKED, HIDDEN, GUESS, BACKTRACK = "NAKED", "HIDDEN", "GUESS", "BACKTRACK"
MOVES = {"UP": (-1, 0), "DOWN": (1, 0), "LEFT": (0, -1), "RIGHT": (0, 1)}


@dataclass(frozen=True)
class Placement:
    reason: str  # NAKED, HIDDEN, GUESS or BACKTRACK
    row: int = -1
    col: int = -1
    digit: int = 0


@functools.lru_cache(maxsize=8)
def _geometry(size: int, box_rows: int, box_cols: int):
    """Units (rows, then columns, then boxes) and each cell's peers, cells as (row, col)."""
    rows = [[(r, c) for c in range(size)] for r in range(size)]
    cols = [[(r, c) for r in range(size)] for c in range(size)]
    boxes = [
        [(r0 + r, c0 + c) for r in range(box_rows) for c in range(box_cols)]
        for r0 in range(0, size, box_rows)
        for c0 in range(0, size, box_cols)
    ]
    units = rows + cols + boxes
    peers = {cell: set() for cell in rows_flat(size)}
    for unit in units:
        for cell in unit:
            peers[cell].update(unit)
    return units, {cell: tuple(sorted(others - {cell})) for cell, others in peers.items()}


def rows_flat(size: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(size) for c in range(size)]


class _Board:
    """Digits and candidate bitmasks (bit d for digit d); copied whole at each guess."""

    def __init__(self, grid: np.ndarray, box_rows: int, box_cols: int) -> None:
        self.size = grid.shape[0]
        self.units, self.peers = _geometry(self.size, box_rows, box_cols)
        self.grid = {cell: int(grid[cell]) for cell in rows_flat(self.size)}
        self.full = sum(1 << d for d in range(1, self.size + 1))
        self.candidates: dict[tuple[int, int], int] = {}
        for cell, digit in self.grid.items():
            if digit == 0:
                peer_digits = (1 << self.grid[p] for p in self.peers[cell])
                taken = functools.reduce(operator.or_, peer_digits)
                self.candidates[cell] = self.full & ~taken

    def copy(self) -> _Board:
        other = object.__new__(_Board)
        other.size, other.units, other.peers, other.full = (
            self.size, self.units, self.peers, self.full)
        other.grid, other.candidates = dict(self.grid), dict(self.candidates)
        return other

    def place(self, cell: tuple[int, int], digit: int) -> None:
        self.grid[cell] = digit
        del self.candidates[cell]
        for peer in self.peers[cell]:
            if peer in self.candidates:
                self.candidates[peer] &= ~(1 << digit)

    def _places(self, unit: list[tuple[int, int]]) -> tuple[int, int, int]:
        """Digits placed in the unit, digits with at least one place, with two or more."""
        placed = once = twice = 0
        for cell in unit:
            mask = self.candidates.get(cell)
            if mask is None:
                placed |= 1 << self.grid[cell]
            else:
                twice |= once & mask
                once |= mask
        return placed, once, twice

    def contradiction(self) -> bool:
        if not all(self.candidates.values()):
            return True
        for unit in self.units:
            placed, once, _ = self._places(unit)
            if (placed | once) & self.full != self.full:
                return True
        return False

    def single(self) -> Placement | None:
        for cell in sorted(self.candidates):
            mask = self.candidates[cell]
            if mask & (mask - 1) == 0:
                return Placement(NAKED, *cell, mask.bit_length() - 1)
        for unit in self.units:
            placed, once, twice = self._places(unit)
            hidden = once & ~twice & ~placed
            if hidden:
                digit = (hidden & -hidden).bit_length() - 1
                cell = next(c for c in unit if self.candidates.get(c, 0) >> digit & 1)
                return Placement(HIDDEN, *cell, digit)
        return None


def sudoku_trace(
    puzzle: np.ndarray, box_rows: int, box_cols: int, max_steps: int = 100_000
) -> list[Placement]:
    """The solver's placements for ``puzzle`` [n, n] (0 = blank), ending on the solution.

    Raises NoSolutionError if the puzzle has no solution."""
    board = _Board(np.asarray(puzzle), box_rows, box_cols)
    trace: list[Placement] = []
    guesses: list[tuple[_Board, tuple[int, int], list[int], int]] = []  # state before, cell, ...
    while len(trace) < max_steps:
        if board.contradiction():
            while guesses:
                before, cell, untried, length = guesses.pop()
                if untried:
                    break
            else:
                raise NoSolutionError("the puzzle has no solution")
            trace.append(Placement(BACKTRACK))
            board = before.copy()
            digit = untried.pop(0)
            guesses.append((before, cell, untried, len(trace)))
            trace.append(Placement(GUESS, *cell, digit))
            board.place(cell, digit)
            continue
        if not board.candidates:
            return trace
        step = board.single()
        if step is None:
            cell = min(board.candidates, key=lambda c: (board.candidates[c].bit_count(), c))
            mask = board.candidates[cell]
            digits = [d for d in range(1, board.size + 1) if mask >> d & 1]
            guesses.append((board.copy(), cell, digits[1:], len(trace)))
            step = Placement(GUESS, *cell, digits[0])
        trace.append(step)
        board.place((step.row, step.col), step.digit)
    raise NoSolutionError(f"no solution within {max_steps} trace steps")


def apply_sudoku_trace(puzzle: np.ndarray, trace: list[Placement]) -> np.ndarray:
    """Replay a trace on ``puzzle``: the grid it ends with (backtracks undo to the last guess).

    Raises ValueError for a BACKTRACK with no guess before it."""
    grid = np.asarray(puzzle).astype(np.int64).copy()
    snapshots: list[np.ndarray] = []
    for step in trace:
        if step.reason == BACKTRACK:
            if not snapshots:
                raise ValueError("a backtrack with no guess to undo")
            grid = snapshots.pop().copy()
            continue
        if step.reason == GUESS:
            snapshots.append(grid.copy())
        grid[step.row, step.col] = step.digit
    return grid


def maze_route(puzzle: np.ndarray) -> list[str]:
    """Moves from S to G along a shortest path of ``puzzle`` [N, N] (maze cell codes).

    Raises NoSolutionError if G cannot be reached."""
    grid = np.asarray(puzzle)
    size_r, size_c = grid.shape
    start, goal = (tuple(np.argwhere(grid == mark)[0]) for mark in (START, GOAL))
    distance = {goal: 0}  # breadth-first distances to the goal
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES.values():
            nxt = (r + dr, c + dc)
            if (0 <= nxt[0] < size_r and 0 <= nxt[1] < size_c and grid[nxt] != WALL
                    and nxt not in distance):
                distance[nxt] = distance[(r, c)] + 1
                queue.append(nxt)
    if start not in distance:
        raise NoSolutionError("the goal cannot be reached from the start")
    route, here = [], start
    while here != goal:
        for name, (dr, dc) in MOVES.items():  # fixed order: a unique route per maze
            nxt = (here[0] + dr, here[1] + dc)
            if distance.get(nxt, -1) == distance[here] - 1:
                route.append(name)
                here = nxt
                break
    return route


def apply_maze_route(puzzle: np.ndarray, route: list[str]) -> np.ndarray:
    """The answer grid a route draws: PATH on every open cell it visits between S and G.

    Raises ValueError if the route leaves the grid, enters a wall, or comes back to a cell it
    has visited (a walk that doubles back draws a path it did not take)."""
    grid = np.asarray(puzzle).copy()
    r, c = (int(v) for v in np.argwhere(grid == START)[0])
    visited = {(r, c)}
    for move in route:
        dr, dc = MOVES[move]
        r, c = r + dr, c + dc
        if not (0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]) or grid[r, c] == WALL:
            raise ValueError(f"the route leaves the open cells at row {r}, column {c}")
        if (r, c) in visited:
            raise ValueError(f"the route comes back to row {r}, column {c}")
        visited.add((r, c))
        if grid[r, c] == OPEN:
            grid[r, c] = PATH
    return grid
