"""Sudoku generation by difficulty tier.

Easy, medium and hard puzzles come from filtering random minimal puzzles (a random solution
grid with clues removed in random order while the solution stays unique). Random minimal
puzzles are rarely hard enough for ``extreme`` (well under 1 in 1,000), so that tier comes from
a local search: mutate a puzzle (drop a clue, then add clues consistent with one of its
solutions until it is unique again, then make it minimal), keep the mutant when it rates at
least as hard, restart a chain that stalls, and once a chain is in extreme territory harvest
its distinct-solution neighbours. A chain's puzzles are near relatives, so they are returned
as one group, which a dataset keeps on one side of the train/test split.

Ratings used to steer a chain reuse one set of solving orders drawn for that chain (so two
puzzles are compared without noise); every puzzle a chain returns is then rated on the family's
fixed orders, and that rating, the one ``hrm check`` reports, is what the tier is judged on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from puzzles import sudoku_solver as solver

if TYPE_CHECKING:
    from puzzles.sudoku import SudokuFamily

Generated = tuple[np.ndarray, np.ndarray, float]  # puzzle, solution, rating

TIERS = ("easy", "medium", "hard", "extreme")
# Measured: no 4×4 puzzle needs a guess, no 6×6 one rates 2 or more, and random minimal 16×16
# puzzles are never solved by singles, so 16×16 easy puzzles come from singles_minimal.
TIERS_BY_SIZE = {4: TIERS[:1], 6: TIERS[:2], 9: TIERS, 16: TIERS[:1]}
TIER_FLOORS = {"medium": 0.0, "hard": 2.0, "extreme": 10.0}  # rating floor of each guessing tier
MAX_ATTEMPTS = 5_000  # random puzzles tried before a tier is declared out of reach
CHAIN_STEERING_ORDERS = 8
CHAIN_STALL_STEPS = 300  # a chain with no progress for this long restarts
CHAIN_MAX_STEPS = 20_000
HARVEST_STEPS = 400  # neighbours tried per chain once it is extreme
CLUES_DROPPED = 1  # per mutation: 1 gave 2.8× the extreme puzzles per second of 2


def full_grid(family: SudokuFamily, rng: np.random.Generator) -> np.ndarray:
    """A random solution grid (flat digits), found by search in random orders."""
    n, geo = family.size, family.geometry
    while True:
        digits = np.zeros(n * n, dtype=np.int8)
        digits[:n] = rng.permutation(n) + 1  # a random first row spreads grids widely
        found = np.empty((1, n * n), dtype=np.int32)
        count, _, _ = solver.search(
            solver.candidates_from_digits(digits, n),
            geo.units,
            geo.peers,
            n,
            1,
            rng.permutation(n).astype(np.int32),
            rng.permutation(n * n).astype(np.int32),
            10_000,  # 16×16 grids occasionally wander; a fresh start is faster than waiting
            found,
        )
        if count == 1:
            out = np.empty(n * n, dtype=np.int8)
            solver.digits_from_candidates(found[0], out)
            return out


def minimize(family: SudokuFamily, rng: np.random.Generator, digits: np.ndarray) -> None:
    """Remove clues in random order while the solution stays unique, in place."""
    geo = family.geometry
    order = rng.permutation(digits.size).astype(np.int32)
    solver.minimize(digits, order, geo.units, geo.peers, family.size, solver.MAX_GUESSES)


def random_minimal(family: SudokuFamily, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random minimal puzzle and its solution (flat digits)."""
    solution = full_grid(family, rng)
    puzzle = solution.copy()
    minimize(family, rng, puzzle)
    return puzzle, solution


def singles_minimal(
    family: SudokuFamily, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random puzzle from which no clue can be removed without singles failing to solve it."""
    geo, n = family.geometry, family.size
    solution = full_grid(family, rng)
    puzzle = solution.copy()
    for cell in rng.permutation(n * n):
        kept, puzzle[cell] = puzzle[cell], 0
        if not solver.singles_suffice(puzzle, geo.units, geo.peers, n):
            puzzle[cell] = kept
    return puzzle, solution


def solution_of(family: SudokuFamily, puzzle: np.ndarray) -> np.ndarray:
    """The solution (flat digits) of a puzzle known to have exactly one."""
    geo, n = family.geometry, family.size
    out = np.empty(n * n, dtype=np.int8)
    solver.solve_digits(puzzle, geo.units, geo.peers, n, 1, solver.MAX_GUESSES, out)
    return out


def generate_group(
    family: SudokuFamily, rng: np.random.Generator, difficulty: str, limit: int
) -> list[Generated]:
    """Up to ``limit`` puzzles of the tier that belong together (one search chain)."""
    n = family.size
    if difficulty not in family.difficulties:
        raise ValueError(
            f"difficulty {difficulty!r} is not available for {n}×{n} Sudoku: "
            f"choose from {', '.join(family.difficulties)}"
        )
    if difficulty == "extreme":
        found = extreme_chain(family, rng, limit)
    elif difficulty == "easy" and n == 16:
        puzzle, solution = singles_minimal(family, rng)
        found = [(puzzle, solution, 0.0)]
    else:
        found = [filtered_minimal(family, rng, difficulty)]
    return [(_as_grid(p, n), _as_grid(s, n), r) for p, s, r in found]


def _as_grid(flat: np.ndarray, n: int) -> np.ndarray:
    return flat.reshape(n, n).astype(np.uint8)


def filtered_minimal(
    family: SudokuFamily, rng: np.random.Generator, difficulty: str
) -> Generated:
    for _ in range(MAX_ATTEMPTS):
        puzzle, solution = random_minimal(family, rng)
        grid = puzzle.reshape(family.size, family.size)
        singles = family.singles_suffice(grid)
        rating = 0.0 if singles else family.rate(grid)
        if family.tier(rating, singles) == difficulty:
            return puzzle, solution, rating
    raise ValueError(
        f"no {family.size}×{family.size} Sudoku of difficulty {difficulty!r} found in "
        f"{MAX_ATTEMPTS} random puzzles"
    )


def extreme_chain(
    family: SudokuFamily, rng: np.random.Generator, limit: int
) -> list[Generated]:
    """Climb to an extreme puzzle, then harvest up to ``limit`` extreme relatives."""
    search = ExtremeSearch(family, rng)
    while True:
        found = search.harvest(search.climb(), limit)
        if found:
            return found


class ExtremeSearch:
    """One search chain: a random-restart hill climb on the dead-end rating."""

    def __init__(self, family: SudokuFamily, rng: np.random.Generator) -> None:
        self.family, self.rng = family, rng
        self.floor = TIER_FLOORS["extreme"]
        self.steering = family.random_orders(rng, CHAIN_STEERING_ORDERS)

    def steer(self, puzzle: np.ndarray) -> float:
        geo, n = self.family.geometry, self.family.size
        rating = solver.rate(puzzle, geo.units, geo.peers, n, *self.steering, solver.MAX_GUESSES)
        return float(rating)

    def mutate(self, puzzle: np.ndarray) -> np.ndarray:
        """Drop a clue, add clues from one of the solutions until unique, make minimal."""
        geo, n, rng = self.family.geometry, self.family.size, self.rng
        child = puzzle.copy()
        child[rng.choice(np.flatnonzero(child), CLUES_DROPPED, replace=False)] = 0
        digit_orders, cell_orders = self.family.random_orders(rng, 1)
        solver.make_unique(
            child, geo.units, geo.peers, n, digit_orders[0], cell_orders[0], rng.random(n * n),
            solver.MAX_GUESSES,
        )
        minimize(self.family, rng, child)
        return child

    def climb(self) -> np.ndarray:
        """A puzzle whose steering rating reaches the extreme floor."""
        for _ in range(CHAIN_MAX_STEPS // CHAIN_STALL_STEPS):
            current, _ = random_minimal(self.family, self.rng)
            score = self.steer(current)
            since_progress = 0
            while since_progress < CHAIN_STALL_STEPS:
                if score >= self.floor:
                    return current
                child = self.mutate(current)
                child_score = self.steer(child)
                since_progress = 0 if child_score > score else since_progress + 1
                if child_score >= score:  # sideways moves let the chain cross plateaus
                    current, score = child, child_score
        n = self.family.size
        raise ValueError(f"no extreme {n}×{n} Sudoku found in {CHAIN_MAX_STEPS} search steps")

    def harvest(self, current: np.ndarray, limit: int) -> list[Generated]:
        """Walk among extreme neighbours, keeping those extreme on the family's orders too."""
        n = self.family.size
        found: list[Generated] = []
        solutions: set[bytes] = set()
        candidate = current
        for _ in range(HARVEST_STEPS):
            if candidate is not None:
                rating = self.family.rate(candidate.reshape(n, n))
                solution = solution_of(self.family, candidate)
                if rating >= self.floor and solution.tobytes() not in solutions:
                    solutions.add(solution.tobytes())
                    found.append((candidate, solution, rating))
                    if len(found) >= limit:
                        break
            candidate = self.mutate(current)
            if self.steer(candidate) >= self.floor:
                current = candidate  # drift, so the harvest does not circle one puzzle
            else:
                candidate = None
        return found
