"""Training targets for mazes with several shortest paths: the one a model already prefers.

A maze with several shortest paths has several right answers, and its stored label is one of
them, picked by the generator. Trained towards that label, a model is told that every other
shortest path is wrong, and the symmetries the loader applies make the labels of near-identical
mazes contradict each other. ``preferred_paths`` instead picks, for every maze of a batch, the
shortest path on which the model's own scores are highest: the right answer nearest to what it
already draws. A model whose answer is a shortest path is then trained towards that answer; one
that hesitates between two is pushed towards the one it leans to. On a maze with a unique
shortest path the target is that path, the stored label.

How: breadth-first distances from the start and from the goal; a cell lies on some shortest path
when the two add up to the path's length. Over those cells, layer by layer away from the start,
a dynamic programme keeps the best total score of a shortest path reaching each cell; the goal's
best path is then traced back. A grid is bipartite, so neighbouring cells' distances from the
start differ by exactly one, which is what makes layers the right order. Compiled with numba:
one step of training calls it once per segment, over the whole batch.

This module deliberately does not train, read logits or tensors, or grade answers
(``maze.MazeFamily.grade``): it maps token grids and scores to token grids.
"""

from __future__ import annotations

import numba
import numpy as np

from .maze import GOAL, PATH, START, WALL

UNREACHED = -1
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))


def preferred_paths(grids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each maze of ``grids`` [B, n, n] (token ids, no ``PATH`` marked), the answer grid
    [B, n, n] that marks the shortest start-to-goal path with the highest sum of ``scores``
    [B, n, n] (a cell's preference for being on the path) over its cells. Ties go to the first
    of the moves up, down, left, right. A maze whose goal cannot be reached is returned as it
    is: it has no right answer."""
    grids = np.ascontiguousarray(grids, dtype=np.uint8)
    if grids.ndim != 3 or grids.shape[1] != grids.shape[2]:
        raise ValueError(f"grids must be [B, n, n], not {list(grids.shape)}")
    if scores.shape != grids.shape:
        raise ValueError(f"scores {list(scores.shape)} do not match grids {list(grids.shape)}")
    answers = grids.copy()
    _mark_preferred(answers, np.ascontiguousarray(scores, dtype=np.float64))
    return answers


@numba.njit(cache=True)
def _distances(grid: np.ndarray, source: int) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first steps from cell ``source`` (flat index) to every open cell (UNREACHED
    for walls and cells cut off), and the cells reached, in the order reached: nearest first."""
    n = grid.shape[0]
    dist = np.full(n * n, UNREACHED, dtype=np.int64)
    queue = np.empty(n * n, dtype=np.int64)
    dist[source] = 0
    queue[0] = source
    head, tail = 0, 1
    while head < tail:
        cell = queue[head]
        head += 1
        row, col = cell // n, cell % n
        for d_row, d_col in MOVES:
            r, c = row + d_row, col + d_col
            if 0 <= r < n and 0 <= c < n and grid[r, c] != WALL and dist[r * n + c] < 0:
                dist[r * n + c] = dist[cell] + 1
                queue[tail] = r * n + c
                tail += 1
    return dist, queue[:tail]


@numba.njit(cache=True)
def _find(grid: np.ndarray, token: int) -> int:
    flat = grid.ravel()
    for cell in range(flat.size):
        if flat[cell] == token:
            return cell
    return -1


@numba.njit(cache=True)
def _mark_preferred(answers: np.ndarray, scores: np.ndarray) -> None:
    batch, n = answers.shape[0], answers.shape[1]
    for b in range(batch):
        grid = answers[b]
        start, goal = _find(grid, START), _find(grid, GOAL)
        if start < 0 or goal < 0:
            continue
        from_start, order = _distances(grid, start)
        to_goal, _ = _distances(grid, goal)
        length = from_start[goal]
        if length < 0:
            continue
        # best[cell]: the highest score sum of a shortest path from the start to cell, for the
        # cells on some shortest path; the breadth-first order visits each layer after the last
        best = np.full(n * n, -np.inf)
        best[start] = 0.0
        flat_scores = scores[b].ravel()
        for cell in order[1:]:
            d = from_start[cell]
            if d + to_goal[cell] != length:
                continue
            row, col = cell // n, cell % n
            came = -np.inf
            for d_row, d_col in MOVES:
                r, c = row + d_row, col + d_col
                if 0 <= r < n and 0 <= c < n and from_start[r * n + c] == d - 1:
                    came = max(came, best[r * n + c])
            best[cell] = came + (flat_scores[cell] if cell != goal else 0.0)
        # back from the goal, each time to the best neighbour one layer nearer the start
        cell = goal
        for d in range(length - 1, 0, -1):
            row, col = cell // n, cell % n
            chosen, chosen_best = -1, -np.inf
            for d_row, d_col in MOVES:
                r, c = row + d_row, col + d_col
                if (0 <= r < n and 0 <= c < n and from_start[r * n + c] == d
                        and best[r * n + c] > chosen_best):
                    chosen, chosen_best = r * n + c, best[r * n + c]
            cell = chosen
            grid[cell // n, cell % n] = PATH


