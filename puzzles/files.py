"""Files written whole or not at all, and JSON read back with errors that name the file.

Datasets, checkpoints, run configs and results all go through here, so that a run killed at
any moment leaves the previous complete file (a temporary name, then a rename), and a damaged
file is reported as one line naming it. This module deliberately knows nothing of puzzles,
models or runs: callers say which error type their readers expect.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def read_json_object(path: Path, error: type[Exception] = ValueError) -> dict[str, Any]:
    """The JSON object in ``path``; ``error`` naming the file (and line and column) if it
    cannot be read, does not parse, or holds something other than an object."""
    try:
        value = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise error(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot be read ({err})") from None
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object")
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
        raise


def replace_dir(new: Path, target: Path) -> None:
    """Swap the finished directory ``new`` in at ``target`` with renames, so ``target`` is
    always either the old complete version or the new one."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    moved = target.exists()
    if moved:
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if moved:
            os.replace(old, target)  # put the previous version back
        raise
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():
        old.unlink()
