"""Progress on stderr: a live bar on a terminal, a plain line now and then anywhere else.

A bar redraws itself several times a second; written to a log file or a pipe each redraw is
kept, and ``hrm quickstart > log 2>&1`` grew 227 KB of them. When stderr is not a terminal,
``progress_bar`` gives a ``LineProgress`` instead: one line every ``LINE_SECONDS``, and one at
the end of a task that printed any.

This module deliberately does not decide what is worth reporting: callers say what they count.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LINE_SECONDS = 30.0


def progress_bar(total: float | None = None, desc: str = "", unit: str = "it",
                 initial: int = 0, disable: bool = False, leave: bool = True):
    """A tqdm bar on a terminal, else a ``LineProgress``; both count with ``update(n)``."""
    if not disable and not sys.stderr.isatty():
        return LineProgress(total, desc, unit, initial)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable,
                leave=leave, file=sys.stderr)


class LineProgress:
    """The part of tqdm's interface the commands use, printing plain lines."""

    def __init__(self, total: float | None, desc: str = "", unit: str = "it", initial: int = 0,
                 every: float = LINE_SECONDS, file: TextIO | None = None) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every, self.file = every, file
        self.postfix: dict[str, Any] = {}
        self.started = self.last = time.monotonic()
        self.start_count = initial
        self.lines = 0

    def update(self, n: float = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self._line()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.lines:
            self._line()
        self.lines = 0  # closing twice prints once

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        done = f"{self.n:g}" + (f"/{self.total:g}" if self.total else "")
        parts = [f"{done} {self.unit}"]
        if self.total:
            parts[0] += f" ({self.n / self.total:.0%})"
        parts.append(f"{elapsed / 60:.1f} min")
        if elapsed > 0 and self.n > self.start_count:
            parts.append(f"{(self.n - self.start_count) / elapsed:.3g} {self.unit}/s")
        parts += [f"{key} {value}" for key, value in self.postfix.items()]
        return (f"{self.desc}: " if self.desc else "") + ", ".join(parts)

    def _line(self) -> None:
        print(self.text(), file=self.file or sys.stderr, flush=True)
        self.last = time.monotonic()
        self.lines += 1
