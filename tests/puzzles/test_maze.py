"""Tests for puzzles.maze: generation, solving, grading, symmetries and the text format.

Solver results are checked against a plain breadth-first search written here, independent of
the module's own search.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puzzles.base import NoSolutionError, ParseError, PuzzleError, RuleCheck, RuleError
from puzzles.maze import (
    GOAL,
    OPEN,
    PATH,
    START,
    VOCAB_SIZE,
    WALL,
    MazeFamily,
    check_solvable,
)

SEEDS = st.integers(0, 2**32 - 1)

# (generator, size, tier) combinations whose tier turns up often enough to test quickly
REACHABLE = [
    ("walls", 20, "easy"),
    ("walls", 20, "medium"),
    ("walls", 30, "hard"),
    ("carved", 15, "easy"),
    ("carved", 15, "medium"),
    ("carved", 21, "hard"),
]

# A 5 × 5 open room: four steps from S to G, six shortest paths.
ROOM = ["S....", ".....", "..G..", ".....", "....."]


# --- an independent reference search ---------------------------------------------------------


def neighbours(grid: np.ndarray, cell: tuple[int, int]) -> list[tuple[int, int]]:
    r, c = cell
    n, m = grid.shape
    around = [(r - 1, c), (r, c - 1), (r, c + 1), (r + 1, c)]
    return [(a, b) for a, b in around if 0 <= a < n and 0 <= b < m and grid[a, b] != WALL]


def distances(grid: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """Steps from ``origin`` to every cell through non-wall cells, -1 where unreachable."""
    dist = np.full(grid.shape, -1)
    dist[origin] = 0
    queue = deque([origin])
    while queue:
        cell = queue.popleft()
        for nb in neighbours(grid, cell):
            if dist[nb] < 0:
                dist[nb] = dist[cell] + 1
                queue.append(nb)
    return dist


def ends(grid: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    (start,) = map(tuple, np.argwhere(grid == START))
    (goal,) = map(tuple, np.argwhere(grid == GOAL))
    return start, goal


def shortest_length(grid: np.ndarray) -> int:
    start, goal = ends(grid)
    return int(distances(grid, start)[goal])


def shortest_paths(grid: np.ndarray, limit: int = 50) -> list[list[tuple[int, int]]]:
    """Up to ``limit`` shortest paths, each as the cells strictly between start and goal."""
    start, goal = ends(grid)
    from_start, from_goal = distances(grid, start), distances(grid, goal)
    length = from_start[goal]
    found: list[list[tuple[int, int]]] = []

    def extend(path: list[tuple[int, int]]) -> None:
        if len(found) >= limit:
            return
        if path[-1] == goal:
            found.append(path[1:-1])
            return
        for nb in neighbours(grid, path[-1]):
            step = from_start[path[-1]] + 1
            if from_start[nb] == step and from_goal[nb] == length - step:
                extend(path + [nb])

    extend([start])
    return found


def draw(puzzle: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    answer = puzzle.copy()
    for cell in cells:
        answer[cell] = PATH
    return answer


def maze(rows: list[str]) -> np.ndarray:
    return MazeFamily(len(rows)).parse("\n".join(rows))


def path_cells(answer: np.ndarray) -> list[tuple[int, int]]:
    """The marked cells of an answer, ordered from start to goal."""
    start, _ = ends(answer)
    from_start = distances(np.where(answer == OPEN, WALL, answer), start)
    marked = [tuple(map(int, c)) for c in np.argwhere(answer == PATH)]
    return sorted(marked, key=lambda c: from_start[c])


# --- generation --------------------------------------------------------------------------------


@pytest.mark.parametrize("generator,size,tier", REACHABLE[1:2] + REACHABLE[4:5])
@pytest.mark.parametrize("unique_path", [False, True])
def test_same_seed_gives_the_same_maze(generator, size, tier, unique_path):
    family = MazeFamily(size, generator=generator, unique_path=unique_path)
    first = [family.generate(np.random.default_rng(7), tier) for _ in range(2)]
    again = [family.generate(np.random.default_rng(7), tier) for _ in range(2)]
    for (p1, s1, l1), (p2, s2, l2) in zip(first, again, strict=True):
        assert p1.tobytes() == p2.tobytes() and s1.tobytes() == s2.tobytes() and l1 == l2
    other, _, _ = family.generate(np.random.default_rng(8), tier)
    assert other.tobytes() != first[0][0].tobytes()


@pytest.mark.parametrize("generator,size,tier", REACHABLE)
@settings(max_examples=8, deadline=None)
@given(seed=SEEDS)
def test_generated_maze_is_valid_and_in_its_tier(generator, size, tier, seed):
    family = MazeFamily(size, generator=generator)
    puzzle, solution, length = family.generate(np.random.default_rng(seed), tier)

    assert puzzle.shape == solution.shape == (size, size)
    assert puzzle.dtype == np.uint8
    assert (puzzle == START).sum() == 1 and (puzzle == GOAL).sum() == 1
    assert not (puzzle == PATH).any()
    assert shortest_length(puzzle) == length
    assert family.tier(length) == tier
    # the answer differs from the puzzle only by path marks on open cells
    changed = solution != puzzle
    assert (puzzle[changed] == OPEN).all() and (solution[changed] == PATH).all()
    assert changed.sum() == length - 1

    solved = family.solve(puzzle)
    assert solved.difficulty == length and solved.count in (1, 2)
    assert np.array_equal(solved.grid, solution)
    grade = family.grade(puzzle, solution, solution)
    assert grade.solved and grade.exact is True


@pytest.mark.parametrize("wall_prob,tier", [(0.37, "medium"), (0.5, "easy")])
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS)
def test_walls_start_and_goal_are_far_apart_in_the_largest_region(wall_prob, tier, seed):
    # at wall_prob 0.5 the open cells split into many regions of similar size
    family = MazeFamily(20, wall_prob=wall_prob)
    puzzle, _, length = family.generate(np.random.default_rng(seed), tier)
    start, _ = ends(puzzle)
    from_start = distances(puzzle, start)
    assert from_start.max() == length  # the goal is a farthest cell from the start
    open_cells = puzzle != WALL
    region = int((from_start >= 0).sum())
    for cell in map(tuple, np.argwhere(open_cells & (from_start < 0))):
        assert (distances(puzzle, cell) >= 0).sum() <= region


def test_hard_30_is_maze_hard():
    family = MazeFamily(30)
    rng = np.random.default_rng(2024)
    for _ in range(3):
        puzzle, _, length = family.generate(rng, "hard")
        assert length > 110 and shortest_length(puzzle) == length


def test_tiers_scale_with_size():
    at30, at15 = MazeFamily(30), MazeFamily(15)
    assert [at30.tier(x) for x in (1, 55, 56, 110, 111)] == [
        "easy",
        "easy",
        "medium",
        "medium",
        "hard",
    ]
    assert [at15.tier(x) for x in (27, 28, 55, 56)] == ["easy", "medium", "medium", "hard"]


@pytest.mark.parametrize("size", [12, 13])
def test_carved_maze_keeps_its_border(size):
    puzzle, _, _ = MazeFamily(size, generator="carved").generate(np.random.default_rng(3), "medium")
    last = 2 * ((size - 1) // 2)  # first row/column past the rooms: wall to the end
    assert (puzzle[0] == WALL).all() and (puzzle[:, 0] == WALL).all()
    assert (puzzle[last:] == WALL).all() and (puzzle[:, last:] == WALL).all()
    assert (puzzle[2:last:2, 2:last:2] == WALL).all()  # pillars between rooms


def test_unreachable_tier_raises_value_error():
    family = MazeFamily(5, max_tries=200)
    with pytest.raises(ValueError, match=r"no 'hard' maze after 200 tries .*more than 18\.3"):
        family.generate(np.random.default_rng(0), "hard")
    with pytest.raises(ValueError, match="unknown difficulty"):
        family.generate(np.random.default_rng(0), "extreme")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 4},
        {"size": 9.5},
        {"size": 9, "wall_prob": 1.0},
        {"size": 9, "wall_prob": -0.1},
        {"size": 9, "generator": "prim"},
        {"size": 9, "extra_openings": 1.5},
        {"size": 9, "max_tries": 0},
    ],
)
def test_bad_parameters_raise_value_error(kwargs):
    with pytest.raises(ValueError) as caught:
        MazeFamily(**kwargs)
    assert not isinstance(caught.value, PuzzleError)


# --- unique paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("generator,size,tier", [("walls", 20, "medium"), ("carved", 15, "medium")])
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_unique_path_leaves_one_shortest_path(generator, size, tier, seed):
    plain = MazeFamily(size, generator=generator)
    unique = MazeFamily(size, generator=generator, unique_path=True)
    p_plain, s_plain, l_plain = plain.generate(np.random.default_rng(seed), tier)
    p_unique, s_unique, l_unique = unique.generate(np.random.default_rng(seed), tier)

    assert unique.solve(p_unique).count == 1
    assert len(shortest_paths(p_unique)) == 1
    # the option only adds walls; the maze, its ends and its reference path are unchanged
    assert l_plain == l_unique and np.array_equal(s_plain == PATH, s_unique == PATH)
    added = p_plain != p_unique
    assert (p_plain[added] == OPEN).all() and (p_unique[added] == WALL).all()
    assert (plain.solve(p_plain).count == 1) == (len(shortest_paths(p_plain, 2)) == 1)


# --- grading -----------------------------------------------------------------------------------


def test_every_shortest_path_in_a_room_is_accepted():
    family = MazeFamily(5)
    puzzle = maze(ROOM)
    reference = family.solve(puzzle)
    assert reference.count == 2 and reference.difficulty == 4
    paths = shortest_paths(puzzle)
    assert len(paths) == 6
    exact = []
    for cells in paths:
        grade = family.grade(puzzle, draw(puzzle, cells), reference.grid)
        assert grade.solved, (cells, grade)
        exact.append(grade.exact)
    assert exact.count(True) == 1


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS)
def test_every_shortest_path_in_a_generated_maze_is_accepted(seed):
    family = MazeFamily(20, wall_prob=0.2)  # few walls: many equally short paths
    puzzle, solution, length = family.generate(np.random.default_rng(seed), "medium")
    paths = shortest_paths(puzzle)
    assert (family.solve(puzzle).count == 2) == (len(paths) > 1)
    for cells in paths:
        answer = draw(puzzle, cells)
        grade = family.grade(puzzle, answer, solution)
        assert grade.solved and grade.exact == np.array_equal(answer, solution)


@pytest.fixture(scope="module")
def generated():
    """A 15 × 15 maze with a unique shortest path, its answer and the path's cells."""
    family = MazeFamily(15, generator="carved", unique_path=True)
    puzzle, solution, length = family.generate(np.random.default_rng(11), "medium")
    return family, puzzle, solution, path_cells(solution)


def test_removing_a_path_cell_breaks_the_path(generated):
    family, puzzle, solution, path = generated
    for i in (0, len(path) // 2, len(path) - 1):
        answer = solution.copy()
        answer[path[i]] = OPEN
        grade = family.grade(puzzle, answer, solution)
        assert not grade.solved and grade.exact is False
        assert grade.reason == "path does not connect start to goal"
        before = ends(puzzle)[0] if i == 0 else path[i - 1]
        assert grade.cell == before  # where the drawn path breaks off


def test_a_spur_off_the_path_is_not_shortest(generated):
    family, puzzle, solution, path = generated
    spur = next(
        nb
        for cell in path
        for nb in neighbours(puzzle, cell)
        if puzzle[nb] == OPEN and nb not in path
    )
    answer = solution.copy()
    answer[spur] = PATH
    grade = family.grade(puzzle, answer)
    length = len(path) + 1
    assert grade.reason == f"path is not shortest (len {length + 1}, shortest {length})"
    assert grade.cell == spur and grade.exact is None


def test_a_detour_is_not_shortest():
    family = MazeFamily(5)
    puzzle = maze(["S...G", ".....", "##...", ".....", "....."])
    detour = [(0, 1), (1, 1), (1, 2), (1, 3), (0, 3)]
    grade = family.grade(puzzle, draw(puzzle, detour))
    assert grade.reason == "path is not shortest (len 6, shortest 4)"
    assert grade.cell == (1, 1)


def test_two_shortest_paths_drawn_at_once_are_rejected():
    family = MazeFamily(5)
    puzzle = maze(ROOM)
    both = [(0, 1), (0, 2), (1, 2), (1, 0), (2, 0), (2, 1)]
    grade = family.grade(puzzle, draw(puzzle, both))
    assert grade.reason == "path is not shortest (len 7, shortest 4)"
    assert grade.cell == (1, 0)  # the second cell one step from the start


def test_right_number_of_cells_but_disconnected():
    family = MazeFamily(5)
    puzzle = maze(ROOM)
    grade = family.grade(puzzle, draw(puzzle, [(0, 1), (0, 2), (4, 4)]))
    assert grade.reason == "path does not connect start to goal" and grade.cell == (0, 2)


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"wall": PATH}, "path goes through a wall"),
        ({"wall": OPEN}, "wall changed"),
        ({"open": WALL}, "wall added"),
        ({"start": OPEN, "open": START}, "start moved"),
        ({"goal": PATH}, "goal moved"),
        ({"open": 0}, "unknown token 0"),
        ({"open": 9}, "unknown token 9"),
    ],
)
def test_changed_cells_are_rejected(generated, change, reason):
    family, puzzle, solution, path = generated
    spots = {
        "wall": tuple(np.argwhere(puzzle == WALL)[len(path)]),
        "open": next(tuple(c) for c in np.argwhere(solution == OPEN)),
        "start": ends(puzzle)[0],
        "goal": ends(puzzle)[1],
    }
    answer = solution.copy()
    for what, token in change.items():
        answer[spots[what]] = token
    grade = family.grade(puzzle, answer, solution)
    assert not grade.solved and grade.reason == reason
    first = min(spots[what] for what in change)  # the first changed cell in row-major order
    assert grade.cell == tuple(int(x) for x in first)


def test_wrong_shape_is_rejected(generated):
    family, puzzle, solution, _ = generated
    grade = family.grade(puzzle, solution[:10, :10])
    assert not grade.solved and grade.reason == "shape 10x10, expected 15x15"
    assert grade.cell is None
    assert str(grade) == "wrong: shape 10x10, expected 15x15"


def test_grade_message_names_the_cell(generated):
    family, puzzle, solution, path = generated
    answer = solution.copy()
    answer[path[0]] = OPEN
    row, col = ends(puzzle)[0]
    assert str(family.grade(puzzle, answer)).endswith(f"at row {row + 1}, column {col + 1}")


def test_unreachable_goal():
    family = MazeFamily(5)
    puzzle = maze(["S.#..", "..#..", "###..", "....G", "....."])
    solved = family.solve(puzzle)
    assert solved.count == 0 and solved.grid is None
    with pytest.raises(NoSolutionError, match="goal is unreachable from start"):
        check_solvable(puzzle)
    with pytest.raises(NoSolutionError):
        family.check_solvable(puzzle)
    grade = family.grade(puzzle, puzzle)
    assert not grade.solved and grade.reason == "goal is unreachable from start"
    check_solvable(maze(ROOM))  # no error


def test_solve_needs_one_start_and_one_goal():
    puzzle = maze(ROOM)
    puzzle[4, 4] = START
    with pytest.raises(RuleError, match="2 cells marked start"):
        MazeFamily(5).solve(puzzle)


# --- symmetries --------------------------------------------------------------------------------


def test_symmetries_are_the_eight_rotations_and_reflections():
    family = MazeFamily(6)
    grid = np.arange(36).reshape(6, 6)
    expected = {np.rot90(g, k).tobytes() for g in (grid, grid.T) for k in range(4)}
    made = {family.symmetry(k).cell_perm.reshape(6, 6).tobytes() for k in range(8)}
    assert made == expected and len(made) == 8
    assert all((family.symmetry(k).value_map == np.arange(VOCAB_SIZE)).all() for k in range(8))

    rng = np.random.default_rng(0)
    drawn = {family.random_symmetry(rng).cell_perm.tobytes() for _ in range(200)}
    assert len(drawn) == 8


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_augmentation_keeps_a_valid_pair(seed):
    family = MazeFamily(16)
    rng = np.random.default_rng(seed)
    puzzle, solution, length = family.generate(rng, "medium")
    pairs = [family.augment(rng, puzzle, solution)]
    for k in range(8):
        sym = family.symmetry(k)
        pairs.append(tuple(sym.apply(g.reshape(-1)).reshape(g.shape) for g in (puzzle, solution)))
    for p, s in pairs:
        assert p.dtype == np.uint8
        assert family.solve(p).difficulty == length
        assert family.grade(p, s).solved
        assert sorted(p.ravel().tolist()) == sorted(puzzle.ravel().tolist())


# --- text --------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, generator=st.sampled_from(["walls", "carved"]))
def test_format_then_parse_round_trips(seed, generator):
    family = MazeFamily(12, generator=generator)
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), "easy")
    text = family.format(puzzle)
    assert " " not in text and text.endswith("\n") and len(text.splitlines()) == 12
    assert np.array_equal(family.parse(text), puzzle)
    assert np.array_equal(family.parse_answer(family.format(solution)), solution)
    assert family.parse(text).dtype == np.uint8

    both = family.parse_many(text + "\n" + family.format(solution), allow_path=True)
    assert [p.line for p in both] == [1, 14]
    assert np.array_equal(both[0].grid, puzzle) and both[0].solution is None
    assert np.array_equal(both[1].grid, puzzle) and np.array_equal(both[1].solution, solution)
    assert both[1].positions[13] == (15, 2)


def test_parse_accepts_spaces_crlf_and_blank_lines():
    family = MazeFamily(5)
    rows = ["S    ", "     ", "  G  ", "     ", "     "]  # a row of spaces is a row
    parsed = family.parse_many("\n\n" + "\r\n".join(rows) + "\r\n\r\n\n")
    assert len(parsed) == 1 and parsed[0].line == 3
    assert np.array_equal(parsed[0].grid, maze(ROOM))
    assert len(parsed[0].positions) == 25 and parsed[0].positions[-1] == (7, 5)


def test_format_rejects_what_is_not_a_maze():
    family = MazeFamily(5)
    with pytest.raises(ValueError, match="style"):
        family.format(maze(ROOM), style="csv")
    with pytest.raises(ValueError, match="tokens"):
        family.format(np.zeros((5, 5), dtype=np.uint8))


def text_with(changes: dict[int, str], rows: list[str] = ROOM) -> str:
    """ROOM as text, with some rows (0-based) replaced."""
    return "\n".join(changes.get(i, row) for i, row in enumerate(rows)) + "\n"


BAD_TEXT = [
    # (text, error, line, column, message)
    (text_with({1: "..x.."}), ParseError, 2, 3, "unknown character 'x'"),
    (text_with({1: "..\t.."}), ParseError, 2, 3, "unknown character '\\t'"),
    (text_with({3: "...."}), ParseError, 4, 5, "row has 4 cells, expected 5"),
    (text_with({3: "......"}), ParseError, 4, 6, "row has 6 cells, expected 5"),
    ("\n\n" + text_with({})[:-6], ParseError, 3, None, "maze is 4 rows x 5 columns"),
    ("S.....\n" + "......\n" * 3 + ".....G\n", ParseError, 1, None, "maze is 5 rows x 6"),
    ("S.....\n" + "......\n" * 4 + ".....G\n", ParseError, 1, None, "is 6x6, expected 5x5"),
    (text_with({0: "....."}), RuleError, 1, None, "no start 'S'"),
    (text_with({3: "..S.."}), RuleError, 4, 3, "second start 'S'"),
    (text_with({2: "....."}), RuleError, 1, None, "no goal 'G'"),
    (text_with({4: "G...G"}), RuleError, 5, 1, "second goal 'G'"),
    (text_with({1: ".o..."}), ParseError, 2, 2, "only allowed in answers"),
    (text_with({}) + "\n" + text_with({2: "..G.#x"}), ParseError, 9, 6, "unknown character"),
]


@pytest.mark.parametrize("text,error,line,column,message", BAD_TEXT)
def test_bad_text_is_located(text, error, line, column, message):
    with pytest.raises(error) as caught:
        MazeFamily(5).parse_many(text, source="mazes.txt")
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message in caught.value.message
    where = ":".join(str(x) for x in ("mazes.txt", line, column) if x is not None)
    assert str(caught.value).startswith(where + ": ")


def test_answers_may_mark_a_path_and_must_be_one_maze():
    family = MazeFamily(5)
    answer = family.parse_answer(text_with({0: "So...", 1: ".oo..", 2: "..G.."}))
    assert (answer == PATH).sum() == 3 and family.grade(maze(ROOM), answer).solved
    with pytest.raises(ParseError, match="expected one maze, found 2"):
        family.parse_answer(text_with({}) + "\n" + text_with({}))
    with pytest.raises(ParseError, match="expected one puzzle, found 0"):
        family.parse("\n\n")


def test_the_rule_check_passes_any_simple_path_and_calls_the_shortest_best():
    puzzle = maze(["S.G..", ".....", ".....", ".....", "....."])
    family = MazeFamily(5)
    short = family.check_answer(puzzle, draw(puzzle, [(0, 1)]))
    assert short == RuleCheck(passes=True, cost=2, best=True)
    around = draw(puzzle, [(1, 0), (2, 0), (2, 1), (2, 2), (1, 2)])
    assert family.check_answer(puzzle, around) == RuleCheck(passes=True, cost=6, best=False)
    assert not family.grade(puzzle, around).solved  # the grader wants the shortest
    branch = draw(puzzle, [(0, 1), (1, 1)])  # a dead end off the path
    loop_apart = draw(puzzle, [(0, 1), (3, 3), (3, 4), (4, 3), (4, 4)])
    for answer in (puzzle, branch, loop_apart, draw(puzzle, [(1, 0), (1, 1)])):
        assert not family.check_answer(puzzle, answer).passes


@given(seed=SEEDS, index=st.integers(0, 7))
@settings(max_examples=30)
def test_solutions_pass_the_rule_check_in_every_orientation(seed, index):
    family = MazeFamily(9)
    puzzle, solution, _ = family.generate(np.random.default_rng(seed), "medium")
    sym = family.symmetry(index)
    moved = family.decode(sym.apply(family.encode(solution)))
    moved_puzzle = family.decode(sym.apply(family.encode(puzzle)))
    assert family.check_answer(moved_puzzle, moved).best
    back = sym.inverse().apply(family.encode(moved))
    assert np.array_equal(back, family.encode(solution))


def is_carved(puzzle: np.ndarray) -> bool:
    """A carved maze keeps every cell at two even coordinates a wall (its passages run on odd
    coordinates); random walls almost never do."""
    return bool((puzzle[::2, ::2] == WALL).all())


def test_the_mixed_generator_draws_both_kinds_of_maze_by_the_seed():
    family = MazeFamily(11, generator="mixed")
    kinds = [is_carved(family.generate(np.random.default_rng(seed), "medium")[0])
             for seed in range(40)]
    assert 8 <= sum(kinds) <= 32
    again = [is_carved(family.generate(np.random.default_rng(seed), "medium")[0])
             for seed in range(40)]
    assert kinds == again
    assert all(is_carved(MazeFamily(11, generator="carved").generate(
        np.random.default_rng(seed), "medium")[0]) for seed in range(10))
    assert not any(is_carved(MazeFamily(11).generate(
        np.random.default_rng(seed), "medium")[0]) for seed in range(10))
