import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.traces import (
    BACKTRACK,
    GUESS,
    HIDDEN,
    NAKED,
    apply_maze_route,
    apply_sudoku_trace,
    maze_route,
    sudoku_trace,
)
from puzzles.base import NoSolutionError
from puzzles.maze import MazeFamily
from puzzles.sudoku import SudokuFamily

SUDOKU = {4: SudokuFamily(4), 6: SudokuFamily(6), 9: SudokuFamily(9)}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([4, 6, 9]))
def test_easy_sudoku_traces_are_singles_that_end_on_the_solution(seed, size):
    family = SUDOKU[size]
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), "easy")
    trace = sudoku_trace(puzzle, family.box_rows, family.box_cols)
    assert {step.reason for step in trace} <= {NAKED, HIDDEN}
    assert len(trace) == int((puzzle == 0).sum())  # one placement per blank
    assert np.array_equal(apply_sudoku_trace(puzzle, trace), solution)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_hard_sudoku_traces_guess_backtrack_and_still_end_on_the_solution(seed):
    family = SUDOKU[9]
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), "hard")
    trace = sudoku_trace(puzzle, 3, 3)
    assert any(step.reason == GUESS for step in trace)
    assert np.array_equal(apply_sudoku_trace(puzzle, trace), solution)


def test_a_wrong_guess_is_followed_by_backtrack():
    family = SUDOKU[9]
    rng = np.random.default_rng(0)
    for _ in range(20):
        puzzle, solution, _ = family.generate(rng, "hard")
        trace = sudoku_trace(puzzle, 3, 3)
        if any(step.reason == BACKTRACK for step in trace):
            break
    else:
        pytest.fail("no hard puzzle in 20 needed a backtrack")
    assert np.array_equal(apply_sudoku_trace(puzzle, trace), solution)


def test_sudoku_without_solution_is_reported():
    puzzle = np.zeros((4, 4), dtype=np.uint8)
    puzzle[0, :3] = [1, 2, 3]
    puzzle[1, 3] = 4  # (0, 3) can only be 4, but its column already has one
    with pytest.raises(NoSolutionError):
        sudoku_trace(puzzle, 2, 2)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([7, 11, 15]))
def test_maze_route_draws_a_shortest_path(seed, size):
    family = MazeFamily(size)
    puzzle, solution, length = family.generate(np.random.default_rng(seed), "medium")
    route = maze_route(puzzle)
    assert len(route) == length
    assert family.grade(puzzle, apply_maze_route(puzzle, route)).solved


def test_unreachable_goal_is_reported():
    family = MazeFamily(7)
    text = "S.#....\n..#....\n###....\n.......\n.......\n.......\n......G"
    puzzle = family.parse(text)
    with pytest.raises(NoSolutionError):
        maze_route(puzzle)
