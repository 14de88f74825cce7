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


def _units(size: int, box_rows: int, box_cols: int) -> list[list[tuple[int, int]]]:
    rows = [[(r, c) for c in range(size)] for r in range(size)]
    cols = [[(r, c) for r in range(size)] for c in range(size)]
    boxes = [
        [(r0 + r, c0 + c) for r in range(box_rows) for c in range(box_cols)]
        for r0 in range(0, size, box_rows)
        for c0 in range(0, size, box_cols)
    ]
    return rows + cols + boxes


class _Board:
    """Digits and candidate sets; copied whole at each guess (traces are short)."""

    def __init__(self, grid: np.ndarray, units: list[list[tuple[int, int]]]) -> None:
        self.size = grid.shape[0]
        self.grid = grid.astype(np.int64).copy()
        self.units = units
        self.peers = {
            (r, c): {cell for unit in units if (r, c) in unit for cell in unit} - {(r, c)}
            for r in range(self.size)
            for c in range(self.size)
        }
        everything = set(range(1, self.size + 1))
        self.candidates = {
            cell: everything - {int(self.grid[p]) for p in self.peers[cell]}
            for cell in self.peers
            if self.grid[cell] == 0
        }

    def copy(self) -> _Board:
        other = object.__new__(_Board)
        other.size, other.units, other.peers = self.size, self.units, self.peers
        other.grid = self.grid.copy()
        other.candidates = {cell: set(ds) for cell, ds in self.candidates.items()}
        return other

    def place(self, cell: tuple[int, int], digit: int) -> None:
        self.grid[cell] = digit
        del self.candidates[cell]
        for peer in self.peers[cell]:
            if peer in self.candidates:
                self.candidates[peer].discard(digit)

    def contradiction(self) -> bool:
        if any(not ds for ds in self.candidates.values()):
            return True
        for unit in self.units:
            placed = {int(self.grid[cell]) for cell in unit}
            for digit in range(1, self.size + 1):
                if digit not in placed and not any(
                    digit in self.candidates.get(cell, ()) for cell in unit
                ):
                    return True
        return False

    def single(self) -> Placement | None:
        for cell in sorted(self.candidates):
            if len(self.candidates[cell]) == 1:
                return Placement(NAKED, *cell, next(iter(self.candidates[cell])))
        for unit in self.units:
            for digit in range(1, self.size + 1):
                places = [cell for cell in unit if digit in self.candidates.get(cell, ())]
                if len(places) == 1:
                    return Placement(HIDDEN, *places[0], digit)
        return None


def sudoku_trace(
    puzzle: np.ndarray, box_rows: int, box_cols: int, max_steps: int = 100_000
) -> list[Placement]:
    """The solver's placements for ``puzzle`` [n, n] (0 = blank), ending on the solution.

    Raises NoSolutionError if the puzzle has no solution."""
    board = _Board(np.asarray(puzzle), _units(puzzle.shape[0], box_rows, box_cols))
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
            cell = min(board.candidates, key=lambda c: (len(board.candidates[c]), c))
            digits = sorted(board.candidates[cell])
            guesses.append((board.copy(), cell, digits[1:], len(trace)))
            step = Placement(GUESS, *cell, digits[0])
        trace.append(step)
        board.place((step.row, step.col), step.digit)
    raise NoSolutionError(f"no solution within {max_steps} trace steps")


def apply_sudoku_trace(puzzle: np.ndarray, trace: list[Placement]) -> np.ndarray:
    """Replay a trace on ``puzzle``: the grid it ends with (backtracks undo to the last guess)."""
    grid = np.asarray(puzzle).astype(np.int64).copy()
    snapshots: list[np.ndarray] = []
    for step in trace:
        if step.reason == BACKTRACK:
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
    """The answer grid a route draws: PATH on every open cell it visits between S and G."""
    grid = np.asarray(puzzle).copy()
    r, c = np.argwhere(grid == START)[0]
    for move in route:
        dr, dc = MOVES[move]
        r, c = r + dr, c + dc
        if not (0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]) or grid[r, c] == WALL:
            break
        if grid[r, c] == OPEN:
            grid[r, c] = PATH
    return grid
