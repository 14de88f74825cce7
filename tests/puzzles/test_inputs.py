"""Tests for puzzles.inputs: where puzzle text comes from and which family it is."""

from __future__ import annotations

import io

import numpy as np
import pytest

from puzzles.base import ParseError, RuleError
from puzzles.inputs import detect, read_puzzles, read_text
from puzzles.sudoku import SudokuFamily

SUDOKU = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SUDOKU_GRID = """\
+-------+-------+-------+
| 5 3 . | . 7 . | . . . |
| 6 . . | 1 9 5 | . . . |
| . 9 8 | . . . | . 6 . |
+-------+-------+-------+
| 8 . . | . 6 . | . . 3 |
| 4 . . | 8 . 3 | . . 1 |
| 7 . . | . 2 . | . . 6 |
+-------+-------+-------+
| . 6 . | . . . | 2 8 . |
| . . . | 4 1 9 | . . 5 |
| . . . | . 8 . | . 7 9 |
+-------+-------+-------+
"""
SUDOKU4 = "1.3.......2.4..."
SUDOKU6 = "1.....\n..3...\n....5.\n.2....\n...4..\n.....6\n"
MAZE = "#######\n#S....#\n#.###.#\n#.#...#\n#.#.###\n#...G.#\n#######\n"
SDK = "#AAuthor\n#DA classic\n#B03.10.2005\n" + "\n".join(
    SUDOKU[r * 9 : r * 9 + 9] for r in range(9)
)
CSV = f"source,question,answer,rating\nweb,{SUDOKU},{'1' * 81},0.5\n"


def sudoku16(first_row_small: bool = False) -> str:
    """A 16×16 grid layout (letters for 10-16); optionally a first row holding only 1-4."""
    n = 16
    grid = np.array([[(4 * (r % 4) + r // 4 + c) % n + 1 for c in range(n)] for r in range(n)])
    grid[::3, ::2] = 0
    if first_row_small:
        grid[0][grid[0] > 4] = 0
    return SudokuFamily(16).format(grid.astype(np.uint8))


# --- detect -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SUDOKU, ("sudoku", 9)),
        (SUDOKU + "\n" + SUDOKU.replace("5", "."), ("sudoku", 9)),
        (SUDOKU_GRID, ("sudoku", 9)),
        (SUDOKU_GRID.replace("+-------+-------+-------+\n", ""), ("sudoku", 9)),
        (SUDOKU4, ("sudoku", 4)),
        ("1 . | 3 .\n. . | . .\n----+----\n. 2 | . .\n4 . | . .\n", ("sudoku", 4)),
        (SUDOKU6, ("sudoku", 6)),
        (SUDOKU6.replace("\n", ""), ("sudoku", 6)),
        (sudoku16(), ("sudoku", 16)),
        (sudoku16(first_row_small=True), ("sudoku", 16)),
        (sudoku16().replace("\n", "").replace(" ", "").replace("|", ""), ("sudoku", 16)),
        (CSV, ("sudoku", 9)),
        ("source,question,answer,rating\nx,1.3.......2.4...,1234341221434321,0\n", ("sudoku", 4)),
        (MAZE, ("maze", 7)),
        (MAZE + "\n" + MAZE, ("maze", 7)),
        (SDK, ("sudoku", 9)),
    ],
    ids=[
        "line81",
        "two-lines81",
        "grid9-bordered",
        "grid9",
        "line16",
        "grid4",
        "grid6",
        "line36",
        "grid16",
        "grid16-small-first-row",
        "line256",
        "csv",
        "csv4",
        "maze",
        "two-mazes",
        "sdk",
    ],
)
def test_detect(text, expected):
    assert detect(text) == expected


def test_several_4x4_lines_are_not_a_16x16_grid():
    assert detect("\n".join([SUDOKU4, "..3.4...1.....2.", "4...........1..2"])) == ("sudoku", 4)


def test_undetectable_input_names_its_line():
    with pytest.raises(ParseError, match="first row of 5 cells") as err:
        detect("# a comment\n\n12345\n", source="in.txt")
    assert err.value.line == 3
    assert str(err.value).startswith("in.txt:3: ")


@pytest.mark.parametrize("text", ["", "\n  \n", "# only\n# comments\n", "+---+---+\n|   |\n"])
def test_nothing_to_detect(text):
    with pytest.raises(ParseError, match="no puzzle found"):
        detect(text)


def test_maze_without_a_start_is_still_a_maze():
    assert detect(MAZE.replace("S", ".")) == ("maze", 7)
    with pytest.raises(RuleError, match="no start"):
        read_puzzles(MAZE.replace("S", "."))


# --- read_text --------------------------------------------------------------------------------


def test_read_text_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(SUDOKU + "\n"))
    assert read_text("-") == (SUDOKU + "\n", "<stdin>")


@pytest.mark.parametrize("name", ["puzzles.sdk", "mazes", "p.txt"])
def test_read_text_from_a_file(tmp_path, monkeypatch, name):
    (tmp_path / name).write_text(SDK)
    monkeypatch.chdir(tmp_path)
    assert read_text(name) == (SDK, name)
    assert read_text(str(tmp_path / name)) == (SDK, str(tmp_path / name))


def test_read_text_of_a_literal_puzzle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_text(SUDOKU) == (SUDOKU, "<argument>")
    assert read_text("S..\\n.#.\\n..G") == ("S..\n.#.\n..G", "<argument>")


@pytest.mark.parametrize("arg", ["missing.txt", "dir/puzzles", "p.sdk", "x.csv", "./nope"])
def test_read_text_of_a_missing_file(tmp_path, monkeypatch, arg):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParseError, match=f"no such file: {arg}"):
        read_text(arg)


def test_read_text_of_a_binary_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ParseError, match="not a text file") as err:
        read_text(str(path))
    assert err.value.source == str(path)


# --- read_puzzles -----------------------------------------------------------------------------


def test_read_puzzles_detects_and_parses(tmp_path):
    path = tmp_path / "p.sdk"
    path.write_text(SDK)
    family, parsed, source = read_puzzles(str(path))
    assert (family.name, family.size, source) == ("sudoku", 9, str(path))
    assert [p.line for p in parsed] == [4]
    assert SudokuFamily(9).format(parsed[0].grid, "line") == SUDOKU


def test_read_puzzles_of_a_maze():
    family, parsed, _ = read_puzzles(MAZE + "\n" + MAZE)
    assert (family.name, family.size) == ("maze", 7)
    assert [p.line for p in parsed] == [1, 9]


def test_read_puzzles_with_family_and_size_given():
    family, parsed, _ = read_puzzles(SUDOKU4, family="sudoku", size=4)
    assert family.size == 4 and len(parsed) == 1
    with pytest.raises(ParseError, match="expected 9"):
        read_puzzles(SUDOKU4, size=9)


def test_read_puzzles_reports_a_bad_cell_with_line_and_column():
    with pytest.raises(ParseError) as err:
        read_puzzles(SUDOKU[:40] + "x" + SUDOKU[41:])
    assert (err.value.source, err.value.line, err.value.column) == ("<argument>", 1, 41)


# --- misleading detections and oversized inputs -----------------------------------------------


@pytest.mark.parametrize("typo", ["9", "5", "x"])
def test_a_4x4_puzzle_with_a_stray_character_is_called_4x4(typo):
    """The parser then names the character; a 16×16 grid would have been the wrong story."""
    puzzle = SUDOKU4[:5] + typo + SUDOKU4[6:]
    assert detect(puzzle) == ("sudoku", 4)
    assert detect("\n".join([puzzle] + [SUDOKU4] * 20)) == ("sudoku", 4)
    with pytest.raises(ParseError, match=f"1:6: unexpected character '{typo}' in a 4×4"):
        read_puzzles(puzzle)


def test_a_maze_of_wall_rows_with_a_bad_character_names_it():
    maze = "#####\n#S.x#\n#...#\n#..G#\n#####"
    with pytest.raises(ParseError, match=r"2:4: unknown character 'x'"):
        read_puzzles(maze)


def test_a_comment_block_is_still_only_comments():
    with pytest.raises(ParseError, match="only comments"):
        detect("# puzzles for the club\n# from the newspaper, week 12\n")


def test_input_with_too_many_puzzles_is_refused_before_parsing(monkeypatch):
    import time

    import puzzles.inputs

    monkeypatch.setattr(puzzles.inputs, "MAX_PUZZLES", 1000)
    text = SUDOKU4 * 1001  # 1,001 puzzles on one line
    started = time.perf_counter()
    with pytest.raises(ParseError, match="holds about 1,001 puzzles, more than the 1,000"):
        read_puzzles(text, "sudoku", 4)
    assert time.perf_counter() - started < 1.0  # counted, not parsed one by one
    assert len(read_puzzles(SUDOKU4 * 1000, "sudoku", 4)[1]) == 1000


def test_a_file_over_the_byte_cap_is_refused_unread(tmp_path, monkeypatch):
    import puzzles.inputs

    monkeypatch.setattr(puzzles.inputs, "MAX_BYTES", 100)
    path = tmp_path / "big.txt"
    path.write_text((SUDOKU4 + "\n") * 10)
    with pytest.raises(ParseError, match="170 bytes, more than the 100 one command reads"):
        read_text(str(path))
