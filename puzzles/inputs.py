"""Reading user puzzles: a string, a file or stdin, with the family detected from the text.

``hrm check`` and ``hrm solve`` both read puzzles through here, so they accept the same inputs.
Detection looks only at the text's shape; ``--family``/``--size`` override it. This module
deliberately does not solve or grade anything.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from puzzles import make_family
from puzzles.base import Parsed, ParseError, PuzzleFamily
from puzzles.sudoku import CSV_HEADER, SEPARATORS

MAZE_CHARS = set("#. SGo")
SMALL_SUDOKU_CHARS = set("1234.0_")


# the most one command reads: a 9×9 puzzle is 82 bytes a line, so 100,000 of them are 8 MB,
# and a CPU model answers 10-100 a second. Larger inputs are refused before any parsing
MAX_PUZZLES = 100_000
MAX_BYTES = 64 * 2**20


def read_text(arg: str) -> tuple[str, str]:
    """(text, source name) for '-' (stdin), an existing file, or the puzzle text itself."""
    if arg == "-":
        text = sys.stdin.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise ParseError(f"more than the {MAX_BYTES:,} bytes one command reads; split "
                             "it", source="<stdin>")
        return text, "<stdin>"
    path = Path(arg)
    if "\n" not in arg and len(arg) < 256 and path.is_file():
        if path.stat().st_size > MAX_BYTES:
            raise ParseError(f"{path.stat().st_size:,} bytes, more than the {MAX_BYTES:,} "
                             "one command reads; split it", source=str(path))
        try:
            return path.read_text(), str(path)
        except UnicodeDecodeError:
            raise ParseError("not a text file", source=str(path)) from None
    if "\n" not in arg and ("/" in arg or arg.endswith((".txt", ".sdk", ".csv"))):
        raise ParseError(f"no such file: {arg}")
    return arg.replace("\\n", "\n"), "<argument>"


def detect(text: str, source: str | None = None) -> tuple[str, int]:
    """(family name, size) guessed from the text's first puzzle."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ParseError("no puzzle found (the input is empty)", source=source)
    if any("S" in ln for ln in lines) and all(set(ln) <= MAZE_CHARS for ln in lines):
        return "maze", len(lines[0])
    content = [ln for ln in lines if not ln.lstrip().startswith("#")]
    if not content:
        # rows of walls: a maze with no start, or one whose parser names a bad character
        if all(set(ln) <= MAZE_CHARS for ln in lines) or _maze_rows(lines):
            return "maze", len(lines[0])
        raise ParseError("no puzzle found (only comments)", source=source)
    if content[0].strip().lower().startswith(CSV_HEADER):
        question = content[1].split(",")[1] if len(content) > 1 and "," in content[1] else ""
        return "sudoku", math.isqrt(len(question)) or 9
    # the first line holding cells: a border line such as +-------+-------+ holds none
    first = next((ln for ln in content if any(ch not in SEPARATORS for ch in ln)), None)
    if first is None:
        raise ParseError("no puzzle found (only separators)", source=source)
    count = sum(ch not in SEPARATORS for ch in first)
    if count == 16:  # a 4×4 puzzle on one line, or one row of a 16×16 grid
        rows = [set(ln) - set(SEPARATORS) for ln in content]
        cells = set().union(*[row for row in rows if row][:16])  # a 16×16 grid's rows
        # a 16×16 grid's givens use most of its 16 symbols; 4×4 puzzles with a stray
        # character in them use a few more than their 4 digits and blanks
        symbols = cells - SMALL_SUDOKU_CHARS
        return "sudoku", 16 if len(cells - {".", "0", "_"}) > 8 and symbols else 4
    if count in (36, 81, 256):
        return "sudoku", math.isqrt(count)
    if count in (4, 6, 9):
        return "sudoku", count
    raise ParseError(
        f"cannot tell the puzzle family from a first row of {count} cells "
        "(give --family and --size)",
        source=source,
        line=text.splitlines().index(first) + 1,
    )


def check_size(text: str, family: PuzzleFamily, source: str | None = None) -> None:
    """Refuse text holding more than ``MAX_PUZZLES`` puzzles, counted from its cells alone,
    before the parser spends minutes on them one by one."""
    cells = len(text) - sum(text.count(ch) for ch in SEPARATORS + "\n\r")
    puzzles = cells // family.seq_len
    if puzzles > MAX_PUZZLES:
        raise ParseError(f"holds about {puzzles:,} puzzles, more than the {MAX_PUZZLES:,} one "
                         "command takes; split it", source=source)


def _maze_rows(lines: list[str]) -> bool:
    """Whether ``lines``, each starting with '#', read as the rows of a maze: all as long,
    and nearly all maze characters (a comment block is words)."""
    width = len(lines[0])
    if len(lines) < 2 or any(len(ln) != width for ln in lines):
        return False
    strange = sum(ch not in MAZE_CHARS for ln in lines for ch in ln)
    return strange <= max(1, width * len(lines) // 50)


def read_puzzles(
    arg: str, family: str | None = None, size: int | None = None
) -> tuple[PuzzleFamily, list[Parsed], str]:
    """Parse every puzzle in ``arg`` (see ``read_text``); returns (family, puzzles, source)."""
    text, source = read_text(arg)
    if family is None or size is None:
        detected_family, detected_size = detect(text, source)
        family = family or detected_family
        size = size or detected_size
    fam = make_family(family, size)
    check_size(text, fam, source)
    parsed = fam.parse_many(text, source)
    if not parsed:
        raise ParseError("no puzzle found", source=source)
    return fam, parsed, source
