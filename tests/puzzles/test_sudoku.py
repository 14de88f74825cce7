"""Tests for puzzles.sudoku: generation by tier, text formats and their errors, grading,
symmetries, tokens and the family's solve().

Validity is checked by a plain row/column/box check written here, not by the module's solver.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from puzzles import make_family
from puzzles.base import ParseError, PuzzleError, RuleError
from puzzles.sudoku import SudokuFamily
from puzzles.sudoku_generate import TIER_FLOORS, full_grid

SEEDS = st.integers(0, 2**32 - 1)
SIZES = [4, 6, 9, 16]
FAMILY = {n: SudokuFamily(n) for n in SIZES}
BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3), 16: (4, 4)}

# Tiers generate() offers at each size (measured: 4×4 never needs a guess, 6×6 never rates 2)
OFFERED = {
    4: ("easy",),
    6: ("easy", "medium"),
    9: ("easy", "medium", "hard", "extreme"),
    16: ("easy",),
}
QUICK = [(n, tier) for n, tiers in OFFERED.items() for tier in tiers if tier != "extreme"]
UNOFFERED = [(4, "medium"), (4, "extreme"), (6, "hard"), (6, "extreme"), (16, "medium")]

WIKIPEDIA = (
    "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79",
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
)
INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
NO_SOLUTION = "12345678." + "........9" + "." * 63


def grid(text: str, n: int = 9) -> np.ndarray:
    return FAMILY[n].parse(text)


def is_solution(g: np.ndarray, n: int) -> bool:
    """Every row, column and box holds 1..n exactly once (checked without the solver)."""
    rows, cols = BOXES[n]
    g = np.asarray(g).reshape(n, n)
    boxes = g.reshape(n // rows, rows, n // cols, cols).transpose(0, 2, 1, 3).reshape(n, n)
    want = np.tile(np.arange(1, n + 1), (n, 1))
    return all(np.array_equal(np.sort(u, axis=1), want) for u in (g, g.T, boxes))


def givens_kept(puzzle: np.ndarray, solution: np.ndarray) -> bool:
    return bool(np.all((puzzle == 0) | (puzzle == solution)))


def solved_pair(n: int, seed: int, blank: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A random solution grid and a partial grid of it (not necessarily unique)."""
    rng = np.random.default_rng(seed)
    solution = full_grid(FAMILY[n], rng).reshape(n, n).astype(np.uint8)
    puzzle = np.where(rng.random((n, n)) < blank, 0, solution).astype(np.uint8)
    return puzzle, solution


def deadly_rectangle(solution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blank four a,b / b,a cells lying in two boxes: exactly two solutions. (puzzle, other)."""
    n = solution.shape[0]
    rows, cols = BOXES[n]
    for r1 in range(n):
        for r2 in range(r1 + 1, n):
            for c1 in range(n):
                for c2 in range(c1 + 1, n):
                    boxes = {(r // rows, c // cols) for r in (r1, r2) for c in (c1, c2)}
                    s = solution
                    if s[r1, c1] == s[r2, c2] and s[r1, c2] == s[r2, c1] and len(boxes) == 2:
                        puzzle, other = s.copy(), s.copy()
                        rr, cc = [r1, r1, r2, r2], [c1, c2, c1, c2]
                        puzzle[rr, cc] = 0
                        other[rr, cc] = s[rr, [c2, c1, c2, c1]]
                        return puzzle, other
    raise AssertionError("no deadly rectangle in this grid")


def one_line(err: PuzzleError) -> str:
    text = str(err)
    assert "\n" not in text
    return text


# --- construction and tiers ------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_family_attributes(n):
    family = make_family("sudoku", n)
    assert isinstance(family, SudokuFamily)
    assert (family.size, family.seq_len, family.vocab_size) == (n, n * n, n + 2)
    assert family.box_rows * family.box_cols == n
    assert family.difficulties == OFFERED[n]


@pytest.mark.parametrize("n", [0, 3, 8, 25])
def test_unsupported_size(n):
    with pytest.raises(ValueError, match="Sudoku size must be one of"):
        SudokuFamily(n)


def test_tier_boundaries():
    family = FAMILY[9]
    assert family.tier(0.0, True) == "easy"
    assert family.tier(50.0, True) == "easy"  # singles decide, whatever the rating
    assert family.tier(0.0, False) == "medium"
    assert family.tier(TIER_FLOORS["hard"] - 0.01, False) == "medium"
    assert family.tier(TIER_FLOORS["hard"], False) == "hard"
    assert family.tier(TIER_FLOORS["extreme"] - 0.01, False) == "hard"
    assert family.tier(TIER_FLOORS["extreme"], False) == "extreme"


# --- generation ------------------------------------------------------------------------------


def check_generated(n: int, tier: str, puzzle, solution, rating) -> None:
    family = FAMILY[n]
    assert puzzle.shape == solution.shape == (n, n)
    assert puzzle.dtype == solution.dtype == np.uint8
    assert is_solution(solution, n)
    assert givens_kept(puzzle, solution)
    assert 0 < np.count_nonzero(puzzle) < n * n
    solved = family.solve(puzzle)
    assert solved.count == 1
    assert np.array_equal(solved.grid, solution)
    assert rating >= 0.0
    assert family.tier(rating, family.singles_suffice(puzzle)) == tier
    if tier == "easy":
        assert family.singles_suffice(puzzle)


@pytest.mark.parametrize(("n", "tier"), QUICK)
@given(seed=SEEDS)
@settings(max_examples=8)
def test_generated_puzzles_are_unique_and_in_their_tier(n, tier, seed):
    check_generated(n, tier, *FAMILY[n].generate(np.random.default_rng(seed), tier))


@pytest.mark.parametrize(("n", "tier"), QUICK)
def test_generation_is_reproducible(n, tier):
    family = FAMILY[n]
    first = family.generate(np.random.default_rng(7), tier)
    again = family.generate(np.random.default_rng(7), tier)
    other = family.generate(np.random.default_rng(8), tier)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(("n", "tier"), UNOFFERED)
def test_unoffered_tiers_fail_fast_with_the_choices(n, tier):
    with pytest.raises(ValueError, match=f"{tier!r} is not available for {n}×{n}") as err:
        FAMILY[n].generate(np.random.default_rng(0), tier)
    assert ", ".join(OFFERED[n]) in str(err.value)


def test_unknown_tier():
    with pytest.raises(ValueError, match="'impossible' is not available"):
        FAMILY[9].generate(np.random.default_rng(0), "impossible")


@pytest.mark.slow
def test_extreme_generation():
    family = FAMILY[9]
    puzzle, solution, rating = family.generate(np.random.default_rng(0), "extreme")
    assert rating >= TIER_FLOORS["extreme"]
    check_generated(9, "extreme", puzzle, solution, rating)
    group = family.generate_group(np.random.default_rng(5), "extreme", 3)
    assert 1 <= len(group) <= 3
    for item in group:
        check_generated(9, "extreme", *item)
    assert len({s.tobytes() for _, s, _ in group}) == len(group)


# --- text: round trips -----------------------------------------------------------------------


@given(
    n=st.sampled_from(SIZES),
    seed=SEEDS,
    blank=st.floats(0, 1),
    style=st.sampled_from(["grid", "line"]),
)
@settings(max_examples=60)
def test_parse_inverts_format(n, seed, blank, style):
    puzzle, _ = solved_pair(n, seed, blank)
    text = FAMILY[n].format(puzzle, style)
    if style == "line":
        assert len(text) == n * n and "\n" not in text
    parsed = FAMILY[n].parse(text)
    assert parsed.dtype == np.uint8
    assert np.array_equal(parsed, puzzle)


@given(n=st.sampled_from(SIZES), seed=SEEDS, data=st.data())
@settings(max_examples=30)
def test_every_blank_character_is_a_blank(n, seed, data):
    puzzle, _ = solved_pair(n, seed)
    text = FAMILY[n].format(puzzle, "line")
    blanks = iter(
        data.draw(st.lists(st.sampled_from(".0_"), min_size=len(text), max_size=len(text)))
    )
    mixed = "".join(next(blanks) if ch == "." else ch for ch in text)
    assert np.array_equal(FAMILY[n].parse(mixed), puzzle)


@given(seed=SEEDS)
@settings(max_examples=20)
def test_16x16_digits_may_be_lowercase(seed):
    puzzle, solution = solved_pair(16, seed)
    family = FAMILY[16]
    text = family.format(solution, "line")
    assert set("ABCDEFG") & set(text)
    assert np.array_equal(family.parse(text.lower()), solution)
    assert np.array_equal(family.parse(family.format(puzzle).lower()), puzzle)


def test_grid_layout_with_other_separators():
    lines = []
    for r in range(9):
        row = WIKIPEDIA[0][9 * r : 9 * r + 9]
        if r in (3, 6):
            lines.append("------+-------+------")
        lines.append(f"{' '.join(row[:3])} ! {' '.join(row[3:6])}\t|\t{row[6:]}")
    assert "\t|\t" in lines[0] and "!" in lines[-1]
    assert np.array_equal(grid("\n".join(lines)), grid(WIKIPEDIA[0]))


def test_sdk_file_with_comments_blank_lines_and_several_puzzles():
    family = FAMILY[9]
    second = family.format(grid(WIKIPEDIA[1]), "grid")
    text = "\n".join(
        [
            "# a collection",
            "",
            WIKIPEDIA[0],
            "   # indented comment",
            "",
            second,
            "",
            INKALA.replace(".", "0"),
            "",
        ]
    )
    parsed = family.parse_many(text)
    assert [p.line for p in parsed] == [3, 6, 18]
    assert np.array_equal(parsed[0].grid, grid(WIKIPEDIA[0]))
    assert np.array_equal(parsed[1].grid, grid(WIKIPEDIA[1]))
    assert np.array_equal(parsed[2].grid, grid(INKALA))
    assert all(p.solution is None and p.rating is None for p in parsed)
    lines = text.splitlines()
    for p in parsed:  # every cell's position points at its character in the text
        assert len(p.positions) == 81
        for (line, column), value in zip(p.positions, p.grid.reshape(-1), strict=True):
            char = lines[line - 1][column - 1]
            assert (char in ".0") if value == 0 else char == str(value)


def test_parse_wants_exactly_one_puzzle():
    with pytest.raises(ParseError, match="expected one puzzle, found 2"):
        FAMILY[9].parse(WIKIPEDIA[0] + "\n" + WIKIPEDIA[1])
    with pytest.raises(ParseError, match="found 0"):
        FAMILY[9].parse("# nothing here\n\n")


def test_format_rejects_unknown_styles():
    with pytest.raises(ValueError, match="unknown style"):
        FAMILY[9].format(grid(WIKIPEDIA[0]), "fancy")


def test_grid_format_draws_boxes():
    text = FAMILY[6].format(np.zeros((6, 6), dtype=np.uint8))
    lines = text.splitlines()
    assert len(lines) == 6 + 2  # two bars between three bands of 2 rows
    assert lines[2] == lines[5] == "-------+-------"
    assert lines[0] == " . . . | . . . "


# --- text: CSV -------------------------------------------------------------------------------


def csv_text(rows: list[tuple[str, str, str, str]], header: str = "source,question,answer,rating"):
    return "\n".join([header] + [",".join(row) for row in rows]) + "\n"


def test_csv_rows_carry_solution_and_rating():
    family = FAMILY[9]
    text = csv_text(
        [
            ("wiki", WIKIPEDIA[0], WIKIPEDIA[1], "0.00"),
            ("gen", WIKIPEDIA[0].replace(".", "0"), WIKIPEDIA[1], "2.5"),
        ]
    )
    parsed = family.parse_many("\n" + text + "\n# trailing comment\n")
    assert [p.line for p in parsed] == [3, 4]
    assert [p.rating for p in parsed] == [0.0, 2.5]
    for p in parsed:
        assert np.array_equal(p.grid, grid(WIKIPEDIA[0]))
        assert np.array_equal(p.solution, grid(WIKIPEDIA[1]))
    line, column = parsed[0].positions[0]
    assert (line, column) == (3, len("wiki,") + 1)


def test_csv_after_a_leading_comment():
    text = "# reference puzzles\n" + csv_text([("x", WIKIPEDIA[0], WIKIPEDIA[1], "1")])
    parsed = FAMILY[9].parse_many(text)
    assert len(parsed) == 1 and parsed[0].rating == 1.0
    assert np.array_equal(parsed[0].solution, grid(WIKIPEDIA[1]))


@given(seed=SEEDS, n=st.sampled_from(SIZES))
@settings(max_examples=20)
def test_csv_round_trip(seed, n):
    family = FAMILY[n]
    puzzle, solution = solved_pair(n, seed)
    rating = np.random.default_rng(seed).random() * 20
    row = ("s", family.format(puzzle, "line"), family.format(solution, "line"), repr(rating))
    (parsed,) = family.parse_many(csv_text([row]))
    assert np.array_equal(parsed.grid, puzzle) and np.array_equal(parsed.solution, solution)
    assert parsed.rating == rating


def test_csv_with_a_wrong_field_count():
    text = csv_text([("x", WIKIPEDIA[0], WIKIPEDIA[1], "1"), ("y", WIKIPEDIA[0], "2")])
    with pytest.raises(ParseError, match="expected 4 CSV fields") as err:
        FAMILY[9].parse_many(text, source="ref.csv")
    assert err.value.line == 3
    assert one_line(err.value).startswith("ref.csv:3: ")


def test_csv_with_a_bad_rating():
    text = csv_text([("src", WIKIPEDIA[0], WIKIPEDIA[1], "hard")])
    with pytest.raises(ParseError, match="rating 'hard' is not a number") as err:
        FAMILY[9].parse_many(text)
    row = text.splitlines()[1]
    assert err.value.line == 2
    assert row[err.value.column - 1 :] == "hard"


def test_csv_with_a_short_question():
    text = csv_text([("src", WIKIPEDIA[0][:-1], WIKIPEDIA[1], "1")])
    with pytest.raises(ParseError, match="puzzle has 80 cells, expected 81") as err:
        FAMILY[9].parse_many(text)
    assert (err.value.line, err.value.column) == (2, 5)


def test_csv_with_a_bad_character_in_the_answer():
    answer = WIKIPEDIA[1][:10] + "x" + WIKIPEDIA[1][11:]
    text = csv_text([("src", WIKIPEDIA[0], answer, "1")])
    with pytest.raises(ParseError, match="unexpected character 'x'") as err:
        FAMILY[9].parse_many(text)
    assert (err.value.line, err.value.column) == (2, len("src,") + 82 + 11)


@pytest.mark.parametrize("indent", ["", "  ", "\t"])
def test_csv_positions_count_the_indent(indent):
    row = f"{indent}s,1.x.............,1234341221434321,1"
    with pytest.raises(ParseError, match="unexpected character 'x'") as err:
        FAMILY[4].parse_many(f"source,question,answer,rating\n{row}\n")
    assert row[err.value.column - 1] == "x"
    (parsed,) = FAMILY[4].parse_many(f"source,question,answer,rating\n{row.replace('x', '.')}\n")
    line, column = parsed.positions[0]
    assert row[column - 1] == "1"


# --- text: errors ----------------------------------------------------------------------------


def test_unknown_character_in_a_line():
    text = WIKIPEDIA[0][:10] + "x" + WIKIPEDIA[0][11:]
    with pytest.raises(ParseError, match="unexpected character 'x'") as err:
        FAMILY[9].parse_many(text, source="in.txt")
    assert (err.value.line, err.value.column) == (1, 11)
    assert one_line(err.value).startswith("in.txt:1:11: ")


def test_unknown_character_in_a_grid_layout():
    lines = FAMILY[9].format(grid(WIKIPEDIA[0])).splitlines()
    lines[4] = lines[4][:11] + "a" + lines[4][12:]  # r4c5 (the bar is line 4)
    with pytest.raises(ParseError, match="unexpected character 'a'") as err:
        FAMILY[9].parse_many("# header\n" + "\n".join(lines))
    assert (err.value.line, err.value.column) == (6, 12)


@pytest.mark.parametrize("n", [4, 6, 9])
def test_letters_beyond_the_size_are_unknown(n):
    text = "G" + "." * (n * n - 1)
    with pytest.raises(ParseError, match="unexpected character 'G'") as err:
        FAMILY[n].parse(text)
    assert (err.value.line, err.value.column) == (1, 1)


def test_a_row_with_the_wrong_number_of_cells():
    lines = FAMILY[9].format(grid(WIKIPEDIA[0])).splitlines()
    lines[6] = lines[6][:-2]  # drop the row's last cell
    with pytest.raises(ParseError, match="row has 8 cells, expected 9") as err:
        FAMILY[9].parse_many("\n".join(lines), source="g.txt")
    assert err.value.line == 7
    assert one_line(err.value).startswith("g.txt:7")


def test_a_line_with_one_cell_missing():
    with pytest.raises(ParseError, match="row has 8 cells") as err:
        FAMILY[9].parse_many(WIKIPEDIA[0] + "\n" + WIKIPEDIA[0][:-1])
    assert err.value.line == 2


def test_an_incomplete_puzzle():
    text = WIKIPEDIA[0] + "\n\n" + "\n".join(WIKIPEDIA[0][r * 9 : r * 9 + 9] for r in range(5))
    with pytest.raises(ParseError, match="incomplete puzzle: 45 of 81 cells") as err:
        FAMILY[9].parse_many(text)
    assert err.value.line == 3
    one_line(err.value)


def repeated(cells: list[tuple[int, int]], digit: int = 5) -> str:
    g = np.zeros((9, 9), dtype=np.uint8)
    for r, c in cells:
        g[r, c] = digit
    return FAMILY[9].format(g, "line")


@pytest.mark.parametrize(
    ("first", "second", "unit"),
    [((2, 7), (2, 1), "row"), ((1, 4), (6, 4), "column"), ((5, 5), (3, 3), "box")],
)
def test_a_repeated_given_points_at_its_second_occurrence(first, second, unit):
    later = max(first, second)  # reading order
    with pytest.raises(RuleError, match=f"digit 5 repeats in a {unit}") as err:
        FAMILY[9].parse_many(repeated([first, second]), source="p")
    assert (err.value.line, err.value.column) == (1, later[0] * 9 + later[1] + 1)
    assert f"r{later[0] + 1}c{later[1] + 1}" in err.value.message
    assert one_line(err.value).startswith(f"p:1:{later[0] * 9 + later[1] + 1}: ")


def test_a_repeated_given_in_a_grid_layout():
    g = grid(WIKIPEDIA[0])
    g[8, 0] = 5  # r1c1 holds 5: column 1 now repeats, at r9c1
    text = FAMILY[9].format(g)
    with pytest.raises(RuleError, match="repeats in a column") as err:
        FAMILY[9].parse(text)
    assert (err.value.line, err.value.column) == (11, 2)


def test_check_rules_without_positions():
    with pytest.raises(RuleError, match=r"digit 4 repeats in a row \(cell r1c2\)") as err:
        FAMILY[4].check_rules(np.array([[4, 4, 0, 0]] + [[0] * 4] * 3, dtype=np.uint8))
    assert err.value.line is None and err.value.column is None
    FAMILY[4].check_rules(np.zeros((4, 4), dtype=np.uint8))  # blanks never repeat


# --- grading ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for n in SIZES:
        puzzle, solution, _ = FAMILY[n].generate(np.random.default_rng(n), "easy")
        out[n] = (puzzle, solution)
    return out


@pytest.mark.parametrize("n", SIZES)
def test_the_solution_grades_correct(n, generated):
    puzzle, solution = generated[n]
    for reference in (solution, None):
        verdict = FAMILY[n].grade(puzzle, solution.copy(), reference)
        assert verdict.solved and verdict.exact
        assert verdict.reason is None and verdict.cell is None
        assert str(verdict) == "correct"


@pytest.mark.parametrize("n", SIZES)
@given(data=st.data())
@settings(max_examples=20)
def test_a_changed_given_is_caught(n, generated, data):
    puzzle, solution = generated[n]
    r, c = data.draw(st.sampled_from([tuple(map(int, rc)) for rc in np.argwhere(puzzle)]))
    answer = solution.copy()
    answer[r, c] = data.draw(st.integers(0, n).filter(lambda v: v != solution[r, c]))
    verdict = FAMILY[n].grade(puzzle, answer, solution)
    assert not verdict.solved and verdict.exact is False
    assert verdict.reason == "a given digit was changed"
    assert verdict.cell == (r, c)
    assert str(verdict) == f"wrong: a given digit was changed at row {r + 1}, column {c + 1}"


@pytest.mark.parametrize("n", SIZES)
@given(data=st.data())
@settings(max_examples=20)
def test_an_unfilled_cell_is_caught(n, generated, data):
    puzzle, solution = generated[n]
    r, c = data.draw(st.sampled_from([tuple(map(int, rc)) for rc in np.argwhere(puzzle == 0)]))
    answer = solution.copy()
    answer[r, c] = data.draw(st.sampled_from([0, n + 1]))
    verdict = FAMILY[n].grade(puzzle, answer)
    assert not verdict.solved
    assert (verdict.reason, verdict.cell) == ("cell is not filled with a digit", (r, c))


def blank_pairs(puzzle: np.ndarray, same: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Pairs of blank cells sharing a row (same='row') or a column (same='column')."""
    blanks = [tuple(map(int, rc)) for rc in np.argwhere(puzzle == 0)]
    key = 0 if same == "row" else 1
    return [(a, b) for a in blanks for b in blanks if a < b and a[key] == b[key]]


@pytest.mark.parametrize("n", SIZES)
@given(data=st.data())
@settings(max_examples=20)
def test_swapping_two_cells_of_a_row_breaks_a_column(n, generated, data):
    puzzle, solution = generated[n]
    (r, c1), (_, c2) = data.draw(st.sampled_from(blank_pairs(puzzle, "row")))
    answer = solution.copy()
    answer[r, [c1, c2]] = answer[r, [c2, c1]]
    verdict = FAMILY[n].grade(puzzle, answer, solution)
    digit = answer[r, c1]
    assert not verdict.solved
    assert verdict.reason == f"digit {FAMILY[n].digit_chars[digit - 1]} repeats in a column"
    # the first broken column is c1; the repeat is reported at the lower of its two copies
    other = int(np.flatnonzero(solution[:, c1] == digit)[0])
    assert verdict.cell == (max(r, other), c1)


@pytest.mark.parametrize("n", SIZES)
@given(data=st.data())
@settings(max_examples=20)
def test_swapping_two_cells_of_a_column_breaks_a_row(n, generated, data):
    puzzle, solution = generated[n]
    (r1, c), (r2, _) = data.draw(st.sampled_from(blank_pairs(puzzle, "column")))
    answer = solution.copy()
    answer[[r1, r2], c] = answer[[r2, r1], c]
    verdict = FAMILY[n].grade(puzzle, answer)
    digit = answer[r1, c]
    assert not verdict.solved
    assert verdict.reason.endswith("repeats in a row")
    other = int(np.flatnonzero(solution[r1] == digit)[0])
    assert verdict.cell == (r1, max(c, other))


@pytest.mark.parametrize("n", [4, 9, 16])
@given(data=st.data())
@settings(max_examples=20)
def test_swapping_rows_of_different_bands_breaks_a_box(n, generated, data):
    _, solution = generated[n]
    rows = FAMILY[n].box_rows
    r1 = data.draw(st.integers(0, n - 1))
    r2 = data.draw(st.integers(0, n - 1).filter(lambda r: r // rows != r1 // rows))
    answer = solution.copy()
    answer[[r1, r2]] = answer[[r2, r1]]
    assume(not is_solution(answer, n))
    verdict = FAMILY[n].grade(np.zeros_like(solution), answer, solution)
    assert not verdict.solved and verdict.reason.endswith("repeats in a box")
    r, c = verdict.cell
    rows, cols = BOXES[n]
    top, left = r // rows * rows, c // cols * cols
    box = answer[top : top + rows, left : left + cols]
    assert np.count_nonzero(box == answer[r, c]) == 2


@pytest.mark.parametrize("shape", [(9, 8), (81,), (3, 3, 9)])
def test_an_answer_of_the_wrong_shape(shape):
    puzzle = grid(WIKIPEDIA[0])
    verdict = FAMILY[9].grade(puzzle, np.ones(shape, dtype=np.uint8))
    assert not verdict.solved and verdict.cell is None
    assert verdict.reason == f"answer is {'×'.join(map(str, shape))}, expected 9×9"


def test_another_valid_solution_is_solved_but_not_exact():
    solution = grid(WIKIPEDIA[1])
    puzzle, other = deadly_rectangle(solution)
    assert is_solution(other, 9) and not np.array_equal(other, solution)
    verdict = FAMILY[9].grade(puzzle, other, solution)
    assert verdict.solved and verdict.exact is False
    assert FAMILY[9].grade(puzzle, solution, solution).exact is True


# --- solve -----------------------------------------------------------------------------------


def test_solve_counts_none_one_and_several():
    family = FAMILY[9]
    none = family.solve(grid(NO_SOLUTION))
    assert none.count == 0 and none.grid is None and np.isnan(none.difficulty)

    one = family.solve(grid(WIKIPEDIA[0]))
    assert one.count == 1 and np.array_equal(one.grid, grid(WIKIPEDIA[1]))
    assert one.grid.dtype == np.uint8 and one.difficulty == 0.0

    puzzle, other = deadly_rectangle(grid(WIKIPEDIA[1]))
    several = family.solve(puzzle)
    assert several.count == 2
    assert any(np.array_equal(several.grid, g) for g in (grid(WIKIPEDIA[1]), other))

    assert FAMILY[4].solve(np.zeros((4, 4), dtype=np.uint8)).count == 2


def test_solve_does_not_change_the_puzzle_and_rates_reproducibly():
    puzzle = grid(INKALA)
    before = puzzle.copy()
    first, second = FAMILY[9].solve(puzzle), FAMILY[9].solve(puzzle)
    assert np.array_equal(puzzle, before)
    assert first.difficulty == second.difficulty == SudokuFamily(9).rate(puzzle)
    assert first.difficulty >= TIER_FLOORS["extreme"]


def test_tier_of():
    family = FAMILY[9]
    easy = grid(WIKIPEDIA[0])
    assert family.tier_of(easy, family.solve(easy).difficulty) == "easy"
    hard = grid(INKALA)
    assert family.tier_of(hard, family.solve(hard).difficulty) == "extreme"


@pytest.mark.parametrize(("n", "tier"), QUICK)
def test_tier_of_agrees_with_generation(n, tier):
    family = FAMILY[n]
    puzzle, _, rating = family.generate(np.random.default_rng(3), tier)
    solved = family.solve(puzzle)
    assert solved.difficulty == pytest.approx(rating)
    assert family.tier_of(puzzle, solved.difficulty) == tier


def test_dedupe_key():
    solution = grid(WIKIPEDIA[1])
    a, b = solution.copy(), solution.copy()
    a[0, 0] = b[8, 8] = 0
    assert FAMILY[9].dedupe_key(a, solution) == FAMILY[9].dedupe_key(b, solution)
    small = np.zeros((4, 4), dtype=np.uint8)
    assert FAMILY[4].dedupe_key(small, small + 1) != FAMILY[4].dedupe_key(small + 1, small + 1)


# --- symmetries and tokens -------------------------------------------------------------------


@given(n=st.sampled_from(SIZES), seed=SEEDS)
@settings(max_examples=40)
def test_symmetries_map_puzzles_to_puzzles(n, seed):
    family = FAMILY[n]
    rng = np.random.default_rng(seed)
    tier = family.difficulties[-1] if n != 9 else "hard"
    puzzle, solution, _ = family.generate(rng, tier)
    new_puzzle, new_solution = family.augment(rng, puzzle, solution)
    assert is_solution(new_solution, n)
    assert givens_kept(new_puzzle, new_solution)
    assert np.count_nonzero(new_puzzle) == np.count_nonzero(puzzle)
    solved = family.solve(new_puzzle)
    assert solved.count == 1 and np.array_equal(solved.grid, new_solution)
    assert family.singles_suffice(new_puzzle) == family.singles_suffice(puzzle)


@given(n=st.sampled_from(SIZES), seed=SEEDS)
@settings(max_examples=40)
def test_symmetry_arrays(n, seed):
    family = FAMILY[n]
    sym = family.random_symmetry(np.random.default_rng(seed))
    assert np.array_equal(np.sort(sym.cell_perm), np.arange(n * n))
    assert sym.value_map.shape == (family.vocab_size,)
    assert sym.value_map[0] == 0 and sym.value_map[1] == 1
    assert np.array_equal(np.sort(sym.value_map[2:]), np.arange(2, n + 2))
    # a batch is transformed row by row
    batch = np.stack([family.encode(solved_pair(n, seed + i)[0]) for i in range(3)])
    out = sym.apply(batch)
    assert out.shape == batch.shape
    for row, tokens in zip(out, batch, strict=True):
        assert np.array_equal(row, sym.apply(tokens))


def is_transposed(perm: np.ndarray, n: int) -> bool:
    """Whether output rows draw from source columns (row 0's sources share a column)."""
    sources = perm.reshape(n, n)[0]
    return len(set(sources % n)) == 1


@pytest.mark.parametrize("n", SIZES)
def test_transpose_only_for_square_boxes(n):
    rng = np.random.default_rng(n)
    seen = {is_transposed(FAMILY[n].random_symmetry(rng).cell_perm, n) for _ in range(100)}
    assert seen == ({False} if n == 6 else {False, True})


def test_6x6_symmetries_keep_boxes_two_by_three():
    family, rng = FAMILY[6], np.random.default_rng(0)
    box = np.arange(36).reshape(6, 6)
    box = (box // 6) // 2 * 2 + (box % 6) // 3  # box id of each cell
    for _ in range(100):
        sources = family.random_symmetry(rng).cell_perm.reshape(6, 6)
        for b in range(6):
            assert len(set(box.reshape(-1)[sources[box == b]])) == 1


@given(n=st.sampled_from(SIZES), data=st.data())
@settings(max_examples=40)
def test_encode_decode_round_trip(n, data):
    family = FAMILY[n]
    values = data.draw(st.lists(st.integers(0, n), min_size=n * n, max_size=n * n))
    g = np.array(values, dtype=np.uint8).reshape(n, n)
    tokens = family.encode(g)
    assert tokens.shape == (n * n,) and tokens.dtype == np.uint8
    assert tokens.min() >= 1 and tokens.max() < family.vocab_size
    assert np.array_equal(family.decode(tokens), g)
    padded = tokens.copy()
    padded[0] = 0  # padding decodes to a blank
    assert family.decode(padded)[0, 0] == 0


@given(n=st.sampled_from(SIZES), seed=SEEDS)
@settings(max_examples=40)
def test_a_symmetry_is_undone_by_its_inverse_and_keeps_the_rules(n, seed):
    family = FAMILY[n]
    puzzle, solution = solved_pair(n, seed)
    sym = family.random_symmetry(np.random.default_rng(seed))
    moved = sym.apply(family.encode(solution))
    assert np.array_equal(sym.inverse().apply(moved), family.encode(solution))
    moved_puzzle = family.decode(sym.apply(family.encode(puzzle)))
    check = family.check_answer(moved_puzzle, family.decode(moved))
    assert check.passes and check.best  # a solution of the moved puzzle, by the rules alone
    wrong = solution.copy()
    wrong[puzzle == 0] = wrong[puzzle == 0] % n + 1  # every blank changed: a unit repeats
    if (puzzle == 0).any():
        assert not family.check_answer(puzzle, wrong).passes
