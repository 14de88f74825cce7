"""An independent check of the maze generator and grader: networkx's shortest paths on the
graph of open cells must agree with the lengths the generator reports, the grader must accept
every shortest path networkx finds and refuse longer ones, and ``unique_path`` must mean one
shortest path."""

import itertools

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from puzzles.maze import GOAL, PATH, START, WALL, MazeFamily

# (generator, size, tier) that the generator reaches quickly
CASES = [("walls", 9, "easy"), ("walls", 9, "medium"), ("walls", 15, "hard"),
         ("carved", 9, "easy"), ("carved", 11, "medium")]


def graph_of(puzzle: np.ndarray) -> tuple[nx.Graph, tuple[int, int], tuple[int, int]]:
    """The grid graph of the maze's passable cells, and its start and goal."""
    graph = nx.grid_2d_graph(*puzzle.shape)
    graph.remove_nodes_from([tuple(map(int, c)) for c in np.argwhere(puzzle == WALL)])
    start = tuple(map(int, np.argwhere(puzzle == START)[0]))
    goal = tuple(map(int, np.argwhere(puzzle == GOAL)[0]))
    return graph, start, goal


def drawn(puzzle: np.ndarray, path: list[tuple[int, int]]) -> np.ndarray:
    answer = puzzle.copy()
    for cell in path[1:-1]:  # the start and goal keep their marks
        answer[cell] = PATH
    return answer


@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(CASES), unique=st.booleans())
@settings(max_examples=40, deadline=None)
def test_networkx_agrees_with_the_generator_and_the_grader(seed, case, unique):
    generator, size, tier = case
    family = MazeFamily(size, generator=generator, unique_path=unique)
    puzzle, solution, length = family.generate(np.random.default_rng(seed), tier)
    graph, start, goal = graph_of(puzzle)
    assert nx.shortest_path_length(graph, start, goal) == length
    # the generator's own path: length - 1 marked cells, each on a shortest path
    from_start = nx.single_source_shortest_path_length(graph, start)
    to_goal = nx.single_source_shortest_path_length(graph, goal)
    marked = [tuple(map(int, c)) for c in np.argwhere(solution == PATH)]
    assert len(marked) == length - 1
    assert all(from_start[c] + to_goal[c] == length for c in marked)
    shortest = list(itertools.islice(nx.all_shortest_paths(graph, start, goal), 50))
    if unique:
        assert len(shortest) == 1
    for path in shortest:  # any shortest path is a solution
        assert family.grade(puzzle, drawn(puzzle, path)).solved
        assert family.check_answer(puzzle, drawn(puzzle, path)).best


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_a_longer_simple_path_passes_the_rules_but_is_not_solved(seed):
    family = MazeFamily(9)
    puzzle, _, length = family.generate(np.random.default_rng(seed), "easy")
    graph, start, goal = graph_of(puzzle)
    longer = next((p for p in nx.all_simple_paths(graph, start, goal, cutoff=length + 6)
                   if len(p) - 1 > length and nx.is_simple_path(graph, p)
                   and _no_shortcuts(graph, p)), None)
    if longer is None:
        return  # this maze has no detour short enough to enumerate
    answer = drawn(puzzle, longer)
    check = family.check_answer(puzzle, answer)
    assert check.passes and not check.best and check.cost == len(longer) - 1
    assert not family.grade(puzzle, answer).solved


def _no_shortcuts(graph: nx.Graph, path: list) -> bool:
    """No two cells of the path are neighbours unless consecutive: drawn on the grid, the path
    reads back as exactly this path."""
    index = {cell: i for i, cell in enumerate(path)}
    return all(abs(index[a] - index[b]) == 1 for a in path for b in graph[a] if b in index)
