"""The exact Sudoku solver: bitmask candidates, singles propagation, depth-first search.

Everything here is compiled with numba because generation calls the solver hundreds of times per
puzzle (uniqueness checks while removing clues, ratings on several relabelled copies). It works on
any n×n grid with r×c boxes (n = r·c ≤ 16), and counts solutions up to a limit, so one routine
answers "is it solvable", "is it unique" and "how hard was it".

Difficulty is measured as dead ends: guesses that propagation proved wrong before the first
solution was found. A single count depends on the order the solver tries cells and digits, so
`rate` averages it over several random orders (the same effect as solving random symmetric
copies). This module deliberately knows nothing of text formats or tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np

MAX_GUESSES = 1_000_000  # a search that needs more reports "gave up" instead of hanging


@dataclass(frozen=True)
class Geometry:
    """Cell indices of the units of an n×n grid with box_rows×box_cols boxes."""

    n: int
    box_rows: int
    box_cols: int
    units: np.ndarray  # [3n, n] cell indices: rows, then columns, then boxes
    peers: np.ndarray  # [n*n, P] the cells sharing a unit with each cell


@cache
def geometry(box_rows: int, box_cols: int) -> Geometry:
    n = box_rows * box_cols
    rows = [[r * n + c for c in range(n)] for r in range(n)]
    cols = [[r * n + c for r in range(n)] for c in range(n)]
    boxes = []
    for br in range(0, n, box_rows):
        for bc in range(0, n, box_cols):
            boxes.append([(br + i) * n + bc + j for i in range(box_rows) for j in range(box_cols)])
    units = np.array(rows + cols + boxes, dtype=np.int32)
    peers = []
    for cell in range(n * n):
        near = {other for unit in units if cell in unit for other in unit} - {cell}
        peers.append(sorted(near))
    return Geometry(n, box_rows, box_cols, units, np.array(peers, dtype=np.int32))


@numba.njit(cache=True)
def popcount(x: int) -> int:
    count = 0
    while x:
        x &= x - 1
        count += 1
    return count


@numba.njit(cache=True)
def propagate(cand, placed, units, peers, n):
    """Naked and hidden singles to a fixpoint, in place. False on a contradiction."""
    full = (1 << n) - 1
    while True:
        changed = False
        for cell in range(cand.shape[0]):
            mask = cand[cell]
            if mask == 0:
                return False
            if placed[cell] == 0 and (mask & (mask - 1)) == 0:
                placed[cell] = 1
                for peer in peers[cell]:
                    if cand[peer] & mask:
                        cand[peer] &= ~mask
                        if cand[peer] == 0:
                            return False
                changed = True
        if changed:
            continue  # naked singles are cheaper: exhaust them before scanning units
        for u in range(units.shape[0]):
            once = 0
            twice = 0
            for k in range(n):
                mask = cand[units[u, k]]
                twice |= once & mask
                once |= mask
            if once != full:
                return False  # some digit has no place left in this unit
            exactly_once = once & ~twice
            if exactly_once == 0:
                continue
            for k in range(n):
                cell = units[u, k]
                hidden = cand[cell] & exactly_once
                if hidden:
                    if hidden & (hidden - 1):
                        return False  # two digits that can only go in this one cell
                    if cand[cell] != hidden:
                        cand[cell] = hidden
                        changed = True
        if not changed:
            return True


@numba.njit(cache=True)
def search(cand0, units, peers, n, limit, digit_order, cell_order, max_guesses, solutions):
    """Depth-first search from candidates ``cand0`` (int32 [n*n] bitmasks).

    Stops after ``limit`` solutions. Returns (solutions found, guesses, dead ends); solutions is
    -1 when ``max_guesses`` ran out first. The first solutions' bitmasks go into the rows of
    ``solutions`` (int32 [k, n*n], k >= 1; solutions beyond k are counted, not kept).
    """
    size = cand0.shape[0]
    cands = np.empty((size + 1, size), dtype=np.int32)
    placed = np.zeros((size + 1, size), dtype=np.uint8)
    branch_cell = np.empty(size + 1, dtype=np.int32)
    untried = np.zeros(size + 1, dtype=np.int32)
    cands[0] = cand0
    if not propagate(cands[0], placed[0], units, peers, n):
        return 0, 0, 0
    found = 0
    guesses = 0
    dead_ends = 0
    depth = 0
    need_branch = True
    while True:
        if need_branch:
            # choose the unsolved cell with the fewest candidates, ties by cell_order
            best = -1
            best_count = n + 1
            for i in range(size):
                cell = cell_order[i]
                count = popcount(cands[depth, cell])
                if 1 < count < best_count:
                    best, best_count = cell, count
                    if count == 2:
                        break
            if best < 0:
                if found < solutions.shape[0]:
                    solutions[found] = cands[depth]
                found += 1
                if found >= limit:
                    return found, guesses, dead_ends
            else:
                branch_cell[depth] = best
                untried[depth] = cands[depth, best]
        need_branch = False
        # try the next digit at the deepest open branch point, or backtrack
        while depth >= 0 and untried[depth] == 0:
            depth -= 1
        if depth < 0:
            return found, guesses, dead_ends
        for k in range(n):
            bit = 1 << digit_order[k]
            if untried[depth] & bit:
                break
        untried[depth] &= ~bit
        guesses += 1
        if guesses > max_guesses:
            return -1, guesses, dead_ends
        cands[depth + 1] = cands[depth]
        placed[depth + 1] = placed[depth]
        cands[depth + 1, branch_cell[depth]] = bit
        if propagate(cands[depth + 1], placed[depth + 1], units, peers, n):
            depth += 1
            untried[depth] = 0
            need_branch = True
        else:
            dead_ends += 1


@numba.njit(cache=True)
def candidates_from_digits(digits, n):
    """Bitmask candidates from digits (0 = blank, 1..n)."""
    cand = np.empty(digits.shape[0], dtype=np.int32)
    for i in range(digits.shape[0]):
        cand[i] = (1 << n) - 1 if digits[i] == 0 else 1 << (digits[i] - 1)
    return cand


@numba.njit(cache=True)
def digits_from_candidates(cand, out):
    for i in range(cand.shape[0]):
        d = 0
        mask = cand[i]
        while mask > 1:
            mask >>= 1
            d += 1
        out[i] = d + 1


@numba.njit(cache=True)
def solve_digits(digits, units, peers, n, limit, max_guesses, out):
    """Solutions of ``digits`` up to ``limit``, searched in the natural order (-1: gave up).

    The first solution's digits go into ``out`` (int8 [n*n]) when there is one.
    """
    size = digits.shape[0]
    order = np.arange(n).astype(np.int32)
    cells = np.arange(size).astype(np.int32)
    found = np.empty((1, size), dtype=np.int32)
    cand = candidates_from_digits(digits, n)
    count, _, _ = search(cand, units, peers, n, limit, order, cells, max_guesses, found)
    if count > 0:
        digits_from_candidates(found[0], out)
    return count


@numba.njit(cache=True)
def count_solutions(digits, units, peers, n, limit, max_guesses):
    """Solutions of ``digits`` up to ``limit`` (-1: gave up)."""
    out = np.empty(digits.shape[0], dtype=np.int8)
    return solve_digits(digits, units, peers, n, limit, max_guesses, out)


@numba.njit(cache=True)
def minimize(digits, removal_order, units, peers, n, max_guesses):
    """Remove clues in ``removal_order`` while the solution stays unique, in place.

    ``digits`` must have exactly one solution S. Without clue c, any other solution would
    differ from S at c (else it would solve the full puzzle too), so one search for a solution
    with c ≠ S[c] decides whether c can go: cheaper than counting solutions to two.
    """
    size = digits.shape[0]
    order = np.arange(n).astype(np.int32)
    cells = np.arange(size).astype(np.int32)
    found = np.empty((1, size), dtype=np.int32)
    search(candidates_from_digits(digits, n), units, peers, n, 1, order, cells, max_guesses, found)
    solution = found[0].copy()
    for cell in removal_order:
        if digits[cell] == 0:
            continue
        kept = digits[cell]
        digits[cell] = 0
        cand = candidates_from_digits(digits, n)
        cand[cell] &= ~solution[cell]
        other, _, _ = search(cand, units, peers, n, 1, order, cells, max_guesses, found)
        if other != 0:  # another solution (or the search gave up): the clue must stay
            digits[cell] = kept


@numba.njit(cache=True)
def rate(digits, units, peers, n, digit_orders, cell_orders, max_guesses):
    """Mean dead ends to the first solution over several solving orders ([K, n], [K, n*n])."""
    size = digits.shape[0]
    scratch = np.empty((1, size), dtype=np.int32)
    cand = candidates_from_digits(digits, n)
    total = 0.0
    for k in range(digit_orders.shape[0]):
        _, _, dead = search(
            cand, units, peers, n, 1, digit_orders[k], cell_orders[k], max_guesses, scratch
        )
        total += dead
    return total / digit_orders.shape[0]


@numba.njit(cache=True)
def singles_suffice(digits, units, peers, n):
    """True when naked and hidden singles alone solve the puzzle."""
    cand = candidates_from_digits(digits, n)
    placed = np.zeros(digits.shape[0], dtype=np.uint8)
    if not propagate(cand, placed, units, peers, n):
        return False
    for i in range(cand.shape[0]):  # noqa: SIM110 (numba compiles loops, not generators)
        if cand[i] & (cand[i] - 1):
            return False
    return True


@numba.njit(cache=True)
def make_unique(digits, units, peers, n, digit_order, cell_order, pick, max_guesses):
    """Add clues until ``digits`` has one solution, in place; False if it has none.

    While two solutions exist, a cell where they differ gets the first one's digit, so the
    clues added are always consistent with some solution. ``pick`` ([n*n] random floats) picks
    among the differing cells.
    """
    size = digits.shape[0]
    found2 = np.empty((2, size), dtype=np.int32)
    while True:
        cand = candidates_from_digits(digits, n)
        found, _, _ = search(
            cand, units, peers, n, 2, digit_order, cell_order, max_guesses, found2
        )
        if found != 2:
            return found == 1
        best = -1
        for cell in range(size):
            if found2[0, cell] != found2[1, cell] and (best < 0 or pick[cell] > pick[best]):
                best = cell
        mask = found2[0, best]
        digit = 1
        while mask > 1:
            mask >>= 1
            digit += 1
        digits[best] = digit
