"""Tests for puzzles.sudoku_solver: counting, search limits, make_unique, minimize and ratings.

Solutions are checked against a plain validity check written here and, for unique puzzles,
against py-sudoku's independent solver.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sudoku import Sudoku

from puzzles import sudoku_solver as solver
from puzzles.sudoku import SudokuFamily
from puzzles.sudoku_generate import full_grid

SEEDS = st.integers(0, 2**32 - 1)
BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3), 16: (4, 4)}

# (puzzle, its only solution): an easy one solved by singles, and two that need search
WIKIPEDIA = (
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79",
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
)
INKALA = (
    "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..",
    "812753649943682175675491283154237896369845721287169534521974368438526917796318452",
)
NORVIG = (
    "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
    "417369825632158947958724316825437169791586432346912758289643571573291684164875293",
)
CLASSICS = [WIKIPEDIA, INKALA, NORVIG]
# r1c9 can only hold 9, and the 9 at r2c9 shares its column and box: no solution, no repeat
NO_SOLUTION = "12345678." + "........9" + "." * 63


def digits(text: str) -> np.ndarray:
    return np.array([0 if ch == "." else int(ch) for ch in text], dtype=np.int8)


def count(puzzle: np.ndarray, limit: int = 2, max_guesses: int = solver.MAX_GUESSES) -> int:
    n = int(round(puzzle.size**0.5))
    geo = solver.geometry(*BOXES[n])
    return solver.count_solutions(puzzle, geo.units, geo.peers, n, limit, max_guesses)


def is_solution(grid: np.ndarray, n: int) -> bool:
    """Every row, column and box holds 1..n exactly once (checked without the solver)."""
    rows, cols = BOXES[n]
    g = np.asarray(grid).reshape(n, n)
    boxes = g.reshape(n // rows, rows, n // cols, cols).transpose(0, 2, 1, 3).reshape(n, n)
    want = np.arange(1, n + 1)
    return all(np.array_equal(np.sort(u, axis=1), np.tile(want, (n, 1))) for u in (g, g.T, boxes))


def search_all(puzzle: np.ndarray, limit: int, keep: int) -> tuple[int, np.ndarray]:
    """Solutions up to ``limit`` in natural order, the first ``keep`` of them as digits."""
    n = int(round(puzzle.size**0.5))
    geo = solver.geometry(*BOXES[n])
    found = np.zeros((keep, puzzle.size), dtype=np.int32)
    total, _, _ = solver.search(
        solver.candidates_from_digits(puzzle, n),
        geo.units,
        geo.peers,
        n,
        limit,
        np.arange(n, dtype=np.int32),
        np.arange(puzzle.size, dtype=np.int32),
        solver.MAX_GUESSES,
        found,
    )
    out = np.zeros((keep, puzzle.size), dtype=np.int8)
    for i in range(min(total, keep)):
        solver.digits_from_candidates(found[i], out[i])
    return total, out


def deadly_rectangle(solution: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Blank four cells holding a,b / b,a in two boxes: a puzzle with exactly two solutions.

    Returns the puzzle and the second solution (the rectangle's digits swapped).
    """
    rows, cols = BOXES[n]
    s = solution.reshape(n, n)
    for r1 in range(n):
        for r2 in range(r1 + 1, n):
            for c1 in range(n):
                for c2 in range(c1 + 1, n):
                    boxes = {(r // rows, c // cols) for r in (r1, r2) for c in (c1, c2)}
                    if s[r1, c1] == s[r2, c2] and s[r1, c2] == s[r2, c1] and len(boxes) == 2:
                        puzzle, other = s.copy(), s.copy()
                        rr, cc = [r1, r1, r2, r2], [c1, c2, c1, c2]
                        puzzle[rr, cc] = 0
                        other[rr, cc] = s[rr, [c2, c1, c2, c1]]
                        return puzzle.reshape(-1), other.reshape(-1)
    raise AssertionError("no deadly rectangle in this grid")


def py_sudoku_solve(puzzle: np.ndarray, n: int) -> np.ndarray:
    """The solution py-sudoku finds (it may touch the global ``random`` state; restored)."""
    rows, cols = BOXES[n]
    board = [[int(v) or None for v in row] for row in puzzle.reshape(n, n)]
    state = random.getstate()
    try:
        solved = Sudoku(cols, rows, board=board).solve()
    finally:
        random.setstate(state)
    return np.array(solved.board, dtype=np.int8).reshape(-1)


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", sorted(BOXES))
def test_geometry_units_and_peers(n):
    rows, cols = BOXES[n]
    geo = solver.geometry(rows, cols)
    assert geo.units.shape == (3 * n, n)
    # each cell is in exactly one row, one column and one box
    assert np.array_equal(np.bincount(geo.units.reshape(-1), minlength=n * n), np.full(n * n, 3))
    assert geo.peers.shape == (n * n, 2 * (n - 1) + (rows - 1) * (cols - 1))
    for cell in (0, n * n // 2 + 1, n * n - 1):
        r, c = divmod(cell, n)
        for peer in geo.peers[cell]:
            pr, pc = divmod(int(peer), n)
            same_box = (pr // rows, pc // cols) == (r // rows, c // cols)
            assert peer != cell and (pr == r or pc == c or same_box)


# --- counting and search ---------------------------------------------------------------------


@pytest.mark.parametrize(("puzzle", "expected"), CLASSICS, ids=["wikipedia", "inkala", "norvig"])
def test_classic_puzzles_have_their_known_solution(puzzle, expected):
    total, found = search_all(digits(puzzle), limit=10, keep=1)
    assert total == 1
    assert np.array_equal(found[0], digits(expected))
    assert np.array_equal(py_sudoku_solve(digits(puzzle), 9), digits(expected))


def test_a_puzzle_with_no_solution_counts_zero():
    assert count(digits(NO_SOLUTION), limit=10) == 0


def test_a_full_grid_counts_one_and_a_broken_one_zero():
    full = digits(WIKIPEDIA[1])
    assert count(full) == 1
    broken = full.copy()
    broken[[0, 1]] = broken[[1, 0]]  # swap two digits of row 1: columns now repeat
    assert count(broken) == 0


def test_deadly_rectangle_has_exactly_two_solutions():
    puzzle, other = deadly_rectangle(digits(WIKIPEDIA[1]), 9)
    total, found = search_all(puzzle, limit=10, keep=2)
    assert total == 2
    assert {found[0].tobytes(), found[1].tobytes()} == {
        digits(WIKIPEDIA[1]).tobytes(),
        other.tobytes(),
    }
    assert count(puzzle, limit=1) == 1  # the search stops at its limit


def test_the_empty_4x4_grid_has_288_solutions():
    empty = np.zeros(16, dtype=np.int8)
    assert count(empty, limit=2) == 2
    assert count(empty, limit=1000) == 288
    total, found = search_all(empty, limit=1000, keep=288)
    assert total == 288
    assert len({row.tobytes() for row in found}) == 288
    assert all(is_solution(row, 4) for row in found)


@given(limit=st.integers(1, 400))
@settings(max_examples=25)
def test_count_stops_at_the_limit(limit):
    assert count(np.zeros(16, dtype=np.int8), limit=limit) == min(limit, 288)


def test_search_gives_up_when_out_of_guesses():
    empty = np.zeros(81, dtype=np.int8)
    assert count(empty, limit=1000, max_guesses=5) == -1
    assert count(empty, limit=1, max_guesses=solver.MAX_GUESSES) == 1


@given(seed=SEEDS, n=st.sampled_from([4, 6, 9]))
@settings(max_examples=30)
def test_random_full_grids_are_valid_and_count_one(seed, n):
    family = SudokuFamily(n)
    grid = full_grid(family, np.random.default_rng(seed))
    assert is_solution(grid, n)
    assert count(grid) == 1


def test_propagate_solves_a_singles_puzzle_and_detects_contradictions():
    geo = solver.geometry(3, 3)
    cand = solver.candidates_from_digits(digits(WIKIPEDIA[0]), 9)
    assert solver.propagate(cand, np.zeros(81, dtype=np.uint8), geo.units, geo.peers, 9)
    out = np.zeros(81, dtype=np.int8)
    solver.digits_from_candidates(cand, out)
    assert np.array_equal(out, digits(WIKIPEDIA[1]))
    cand = solver.candidates_from_digits(digits(NO_SOLUTION), 9)
    assert not solver.propagate(cand, np.zeros(81, dtype=np.uint8), geo.units, geo.peers, 9)


@given(n=st.sampled_from([4, 6, 9, 16]), data=st.data())
@settings(max_examples=30)
def test_candidates_round_trip(n, data):
    values = data.draw(st.lists(st.integers(1, n), min_size=n * n, max_size=n * n))
    grid = np.array(values, dtype=np.int8)
    cand = solver.candidates_from_digits(grid, n)
    assert all(solver.popcount(int(m)) == 1 for m in cand)
    out = np.zeros_like(grid)
    solver.digits_from_candidates(cand, out)
    assert np.array_equal(out, grid)
    assert solver.candidates_from_digits(np.zeros(1, dtype=np.int8), n)[0] == (1 << n) - 1


# --- make_unique and minimize ----------------------------------------------------------------


def sparse(solution: np.ndarray, rng: np.random.Generator, keep: int) -> np.ndarray:
    puzzle = np.zeros_like(solution)
    cells = rng.choice(solution.size, keep, replace=False)
    puzzle[cells] = solution[cells]
    return puzzle


@given(seed=SEEDS, n=st.sampled_from([4, 6, 9]), fraction=st.floats(0.0, 0.4))
@settings(max_examples=40)
def test_make_unique_adds_consistent_clues_until_unique(seed, n, fraction):
    family, rng = SudokuFamily(n), np.random.default_rng(seed)
    geo = family.geometry
    solution = full_grid(family, rng)
    original = sparse(solution, rng, int(fraction * n * n))
    puzzle = original.copy()
    digit_orders, cell_orders = family.random_orders(rng, 1)
    assert solver.make_unique(
        puzzle,
        geo.units,
        geo.peers,
        n,
        digit_orders[0],
        cell_orders[0],
        rng.random(n * n),
        solver.MAX_GUESSES,
    )
    given_cells = original != 0
    assert np.array_equal(puzzle[given_cells], original[given_cells])  # givens kept
    total, found = search_all(puzzle, limit=2, keep=1)
    assert total == 1
    # the one solution also solves the original puzzle
    assert is_solution(found[0], n)
    assert np.array_equal(found[0][given_cells], original[given_cells])


def test_make_unique_reports_no_solution_and_leaves_unique_puzzles_alone():
    geo = solver.geometry(3, 3)
    order, cells, pick = np.arange(9, dtype=np.int32), np.arange(81, dtype=np.int32), np.ones(81)
    broken = digits(NO_SOLUTION)
    args = (geo.units, geo.peers, 9, order, cells, pick, solver.MAX_GUESSES)
    assert not solver.make_unique(broken, *args)
    unique = digits(INKALA[0])
    assert solver.make_unique(unique, *args)
    assert np.array_equal(unique, digits(INKALA[0]))


@given(seed=SEEDS, n=st.sampled_from([4, 6, 9]))
@settings(max_examples=30)
def test_minimize_gives_a_minimal_unique_puzzle(seed, n):
    family, rng = SudokuFamily(n), np.random.default_rng(seed)
    geo = family.geometry
    solution = full_grid(family, rng)
    puzzle = solution.copy()
    solver.minimize(
        puzzle,
        rng.permutation(n * n).astype(np.int32),
        geo.units,
        geo.peers,
        n,
        solver.MAX_GUESSES,
    )
    clues = np.flatnonzero(puzzle)
    assert np.array_equal(puzzle[clues], solution[clues])
    assert len(clues) < n * n
    total, found = search_all(puzzle, limit=2, keep=1)
    assert total == 1 and np.array_equal(found[0], solution)
    for cell in clues:  # removing any one clue lets a second solution in
        fewer = puzzle.copy()
        fewer[cell] = 0
        assert count(fewer) == 2


# --- singles and ratings ---------------------------------------------------------------------


def reference_propagate(cand: list[set[int]], units: list[list[int]]) -> bool:
    """Naked and hidden singles to a fixpoint on candidate sets, in place; False on a
    contradiction (an empty cell, a digit with no place in a unit, or a cell that is the only
    place of two digits)."""
    n = len(units[0])
    changed = True
    while changed:
        changed = False
        for unit in units:
            for cell in unit:
                if not cand[cell]:
                    return False
                if len(cand[cell]) == 1:
                    for other in unit:
                        if other != cell and cand[cell] & cand[other]:
                            cand[other] -= cand[cell]
                            changed = True
            for digit in range(1, n + 1):
                places = [cell for cell in unit if digit in cand[cell]]
                if not places:
                    return False
                if len(places) == 1 and len(cand[places[0]]) > 1:
                    cand[places[0]] = {digit}
                    changed = True
    return all(cand)


def reference_dead_ends(puzzle: np.ndarray, n: int, digit_order, cell_order) -> int:
    """Dead ends before the first solution, by a plain recursive search with the solver's
    policy: branch on the first cell (in ``cell_order``) with the fewest candidates, try its
    digits in ``digit_order``; a dead end is a guess that propagation refutes."""
    units = [list(u) for u in solver.geometry(*BOXES[n]).units]
    start = [{int(d)} if d else set(range(1, n + 1)) for d in puzzle]
    dead = 0

    def solve(cand: list[set[int]]) -> bool:
        nonlocal dead
        open_cells = [c for c in cell_order if len(cand[c]) > 1]
        if not open_cells:
            return True
        cell = min(open_cells, key=lambda c: len(cand[c]))  # first of the fewest
        for d in digit_order:
            if d + 1 in cand[cell]:
                child = [set(s) for s in cand]
                child[cell] = {d + 1}
                if not reference_propagate(child, units):
                    dead += 1
                elif solve(child):
                    return True
        return False

    assert reference_propagate(start, units) and solve(start)
    return dead


@given(seed=SEEDS, tier=st.sampled_from(["medium", "hard"]))
@settings(max_examples=8)
def test_dead_ends_match_a_reference_search(seed, tier):
    family, rng = SudokuFamily(9), np.random.default_rng(seed)
    puzzle, _, _ = family.generate(rng, tier)
    flat = puzzle.reshape(-1).astype(np.int8)
    geo = family.geometry
    digit_orders, cell_orders = family.random_orders(rng, 2)
    expected = [
        reference_dead_ends(flat, 9, d, c) for d, c in zip(digit_orders, cell_orders, strict=True)
    ]
    args = (geo.units, geo.peers, 9, digit_orders, cell_orders, solver.MAX_GUESSES)
    assert solver.rate(flat, *args) == pytest.approx(np.mean(expected))


def test_propagate_finds_hidden_singles():
    # 1s at r2c5, r3c8, r5c2 and r8c3 leave r1c1 the only place for a 1 in box 1, although
    # r1c1 itself could still hold any digit
    g = np.zeros((9, 9), dtype=np.int8)
    g[1, 4] = g[2, 7] = g[4, 1] = g[7, 2] = 1
    geo = solver.geometry(3, 3)
    cand = solver.candidates_from_digits(g.reshape(-1), 9)
    assert solver.propagate(cand, np.zeros(81, dtype=np.uint8), geo.units, geo.peers, 9)
    assert cand[0] == 1
    reference = [{int(d)} if d else set(range(1, 10)) for d in g.reshape(-1)]
    assert reference_propagate(reference, [list(u) for u in geo.units])
    assert reference[0] == {1}


def test_singles_suffice_on_known_puzzles():
    family = SudokuFamily(9)
    assert family.singles_suffice(digits(WIKIPEDIA[0]).reshape(9, 9))
    assert family.singles_suffice(digits(WIKIPEDIA[1]).reshape(9, 9))
    assert not family.singles_suffice(digits(INKALA[0]).reshape(9, 9))
    assert not family.singles_suffice(digits(NO_SOLUTION).reshape(9, 9))
    assert not family.singles_suffice(np.zeros((9, 9), dtype=np.uint8))


def test_rate_is_zero_for_singles_and_positive_when_search_hits_dead_ends():
    family = SudokuFamily(9)
    assert family.rate(digits(WIKIPEDIA[0]).reshape(9, 9)) == 0.0
    assert family.rate(digits(INKALA[0]).reshape(9, 9)) > 0.0


@given(seed=SEEDS, k=st.integers(1, 6))
@settings(max_examples=25)
def test_rate_is_the_mean_of_dead_ends_and_deterministic(seed, k):
    family, rng = SudokuFamily(9), np.random.default_rng(seed)
    geo = family.geometry
    puzzle = digits(NORVIG[0])
    digit_orders, cell_orders = family.random_orders(rng, k)
    args = (geo.units, geo.peers, 9, digit_orders, cell_orders, solver.MAX_GUESSES)
    rating = solver.rate(puzzle, *args)
    assert rating >= 0.0
    assert solver.rate(puzzle, *args) == rating
    scratch = np.zeros((1, 81), dtype=np.int32)
    dead_ends = []
    for d, c in zip(digit_orders, cell_orders, strict=True):
        found, guesses, dead = solver.search(
            solver.candidates_from_digits(puzzle, 9),
            geo.units,
            geo.peers,
            9,
            1,
            d,
            c,
            solver.MAX_GUESSES,
            scratch,
        )
        assert found == 1 and 0 <= dead <= guesses
        dead_ends.append(dead)
    assert rating == pytest.approx(np.mean(dead_ends))


@given(seed=SEEDS, n=st.sampled_from([4, 6, 9]))
@settings(max_examples=30)
def test_singles_mean_unique_and_no_dead_ends(seed, n):
    family, rng = SudokuFamily(n), np.random.default_rng(seed)
    solution = full_grid(family, rng)
    puzzle = sparse(solution, rng, int(0.6 * n * n)).reshape(n, n)
    if family.singles_suffice(puzzle):
        assert count(puzzle.reshape(-1)) == 1
        assert family.rate(puzzle) == 0.0
    else:
        assert family.rate(puzzle) >= 0.0


# --- a second opinion --------------------------------------------------------------------------


@given(seed=SEEDS, n=st.sampled_from([4, 6, 9]))
@settings(max_examples=20)
def test_py_sudoku_agrees_on_generated_puzzles(seed, n):
    family = SudokuFamily(n)
    tier = "medium" if "medium" in family.difficulties else "easy"
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), tier)
    ours = family.solve(puzzle)
    assert ours.count == 1 and np.array_equal(ours.grid, solution)
    theirs = py_sudoku_solve(puzzle.reshape(-1), n)
    assert np.array_equal(theirs, solution.reshape(-1))
