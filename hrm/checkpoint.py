"""Run directories: ``config.json``, ``metrics.jsonl`` and the latest checkpoint.

::

    RUN/config.json                       everything needed to rebuild the model and the run
    RUN/metrics.jsonl                     one JSON object per logged step or evaluation
    RUN/checkpoint/model.safetensors      weights (load with ``load_model_weights``)
    RUN/checkpoint/trainer_state.safetensors  optimiser moments, carry, RNG states
    RUN/checkpoint/trainer_state.json     step, epoch, batch position, optimiser settings

A checkpoint is written into a temporary directory and swapped in with renames, so a run killed
at any moment leaves the previous complete checkpoint. Nothing here unpickles: tensors go
through safetensors and everything else through JSON.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from puzzles.files import read_json_object, replace_dir

CHECKPOINT = "checkpoint"


def save_checkpoint(
    run: Path, model_state: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], info: dict
) -> None:
    """Write model weights, trainer tensors and trainer info as one checkpoint, atomically."""
    tmp = run / f".{CHECKPOINT}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model_state.items()}, tmp / "model.safetensors",
              metadata={"step": str(info["step"])})
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp / "trainer_state.safetensors")
    (tmp / "trainer_state.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    replace_dir(tmp, run / CHECKPOINT)


def has_checkpoint(run: Path) -> bool:
    return (run / CHECKPOINT / "trainer_state.json").is_file()


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged or not ours; ``str()`` names the file."""


# what trainer_state.json must hold, and of which type
INFO_FIELDS = {"step": int, "epoch": int, "position": int, "optimizer": dict}


def load_checkpoint(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(model weights, trainer tensors, trainer info), each file checked as it is read."""
    folder = run / CHECKPOINT
    info = _read_info(folder / "trainer_state.json")
    return _read_tensors(folder / "model.safetensors"), _read_tensors(
        folder / "trainer_state.safetensors"), info


def _read_info(path: Path) -> dict:
    info = read_json_object(path, CheckpointError)
    for key, kind in INFO_FIELDS.items():
        value = info.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            wanted = "a count" if kind is int else "an object"
            raise CheckpointError(f"{path}: {key!r} must be {wanted}, not {value!r}")
    return info


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file; anything else (truncated, empty, a pickle) is refused by name.
    safetensors parses a JSON header and raw bytes: nothing in the file is executed."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(path)
    except Exception as err:  # SafetensorError is not exported under a stable name
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimiser's state as flat tensors plus JSON-able settings."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], settings: dict
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": settings["param_groups"]})
