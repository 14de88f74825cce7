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
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from puzzles.dataset import replace_dir

CHECKPOINT = "checkpoint"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


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


def load_checkpoint(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    folder = run / CHECKPOINT
    info = json.loads((folder / "trainer_state.json").read_text())
    model = load_file(folder / "model.safetensors")
    return model, load_file(folder / "trainer_state.safetensors"), info


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
