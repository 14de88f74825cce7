"""``preferred_paths``: always a shortest path, the stored one when it is unique, and the best
one under the scores (checked against every shortest path networkx lists)."""

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_maze_networkx import drawn, graph_of

from puzzles.maze import GOAL, OPEN, PATH, START, WALL, MazeFamily
from puzzles.maze_targets import preferred_paths

# (generator, size, tier) that the generator reaches quickly; small enough to list every path
CASES = [("walls", 7, "easy"), ("walls", 9, "medium"), ("carved", 9, "easy"),
         ("walls", 11, "medium"), ("carved", 11, "medium")]


def maze(seed: int, case: tuple, unique: bool = False) -> tuple[MazeFamily, np.ndarray, np.ndarray]:
    generator, size, tier = case
    family = MazeFamily(size, generator=generator, unique_path=unique)
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), tier)
    return family, puzzle, solution


@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(CASES))
@settings(max_examples=40, deadline=None)
def test_the_target_is_the_best_shortest_path_under_the_scores(seed, case):
    family, puzzle, _ = maze(seed, case)
    scores = np.random.default_rng(seed + 1).normal(size=puzzle.shape)
    answer = preferred_paths(puzzle[None], scores[None])[0]
    assert family.grade(puzzle, answer).solved
    graph, start, goal = graph_of(puzzle)
    paths = list(itertools.islice(nx.all_shortest_paths(graph, start, goal), 5000))
    if len(paths) == 5000:
        return  # too many to compare against them all; validity was checked above
    best = max(sum(scores[cell] for cell in path[1:-1]) for path in paths)
    assert scores[answer == PATH].sum() == pytest.approx(best)


@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(CASES))
@settings(max_examples=30, deadline=None)
def test_a_model_that_draws_a_shortest_path_is_trained_towards_it(seed, case):
    family, puzzle, _ = maze(seed, case)
    graph, start, goal = graph_of(puzzle)
    paths = list(itertools.islice(nx.all_shortest_paths(graph, start, goal), 50))
    chosen = drawn(puzzle, paths[seed % len(paths)])
    scores = np.where(chosen == PATH, 1.0, -1.0)  # its logits favour that path's cells only
    assert np.array_equal(preferred_paths(puzzle[None], scores[None])[0], chosen)


@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(CASES))
@settings(max_examples=30, deadline=None)
def test_a_unique_shortest_path_is_the_stored_label_whatever_the_scores(seed, case):
    _, puzzle, solution = maze(seed, case, unique=True)
    scores = np.random.default_rng(seed).normal(size=puzzle.shape) * 10
    assert np.array_equal(preferred_paths(puzzle[None], scores[None])[0], solution)


def test_a_batch_is_answered_maze_by_maze():
    mazes = [maze(seed, ("walls", 9, "medium")) for seed in range(8)]
    puzzles = np.stack([puzzle for _, puzzle, _ in mazes])
    scores = np.random.default_rng(0).normal(size=puzzles.shape)
    together = preferred_paths(puzzles, scores)
    for i in range(len(mazes)):
        assert np.array_equal(together[i], preferred_paths(puzzles[i:i + 1], scores[i:i + 1])[0])


def test_a_maze_without_a_way_through_is_returned_as_it_is():
    puzzle = np.full((5, 5), OPEN, dtype=np.uint8)
    puzzle[:, 2] = WALL
    puzzle[0, 0], puzzle[4, 4] = START, GOAL
    assert np.array_equal(preferred_paths(puzzle[None], np.zeros((1, 5, 5)))[0], puzzle)


def test_start_beside_goal_marks_nothing():
    puzzle = np.full((5, 5), OPEN, dtype=np.uint8)
    puzzle[2, 2], puzzle[2, 3] = START, GOAL
    assert np.array_equal(preferred_paths(puzzle[None], np.ones((1, 5, 5)))[0], puzzle)


@pytest.mark.parametrize(("grids", "scores", "message"), [
    (np.zeros((2, 5, 4)), np.zeros((2, 5, 4)), "grids must be"),
    (np.zeros((2, 5, 5)), np.zeros((2, 5, 4)), "do not match"),
])
def test_shapes_are_checked(grids, scores, message):
    with pytest.raises(ValueError, match=message):
        preferred_paths(grids, scores)
