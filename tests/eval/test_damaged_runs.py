"""Damaged runs and datasets walked through every command that reads them: each must end in
one line on stderr naming the damaged file, and exit 2, never a traceback, a hang or a wrong
result with exit 0. Also: a run finds its data from anywhere, and resuming after a kill leaves
one metrics record per step."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from hrm.cli import main


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x40
    path.write_bytes(bytes(raw))


CHECKPOINT = "checkpoint"
# damage: (what is done to the run folder, the file the error must name)
RUN_DAMAGES = {
    "weights truncated": (lambda r: truncate(r / CHECKPOINT / "model.safetensors"),
                          "model.safetensors"),
    "weights empty": (lambda r: (r / CHECKPOINT / "model.safetensors").write_bytes(b""),
                      "model.safetensors"),
    "weights a pickle": (lambda r: (r / CHECKPOINT / "model.safetensors").write_bytes(
        pickle.dumps({"weights": [1, 2, 3]})), "model.safetensors"),
    "trainer tensors truncated": (lambda r: truncate(
        r / CHECKPOINT / "trainer_state.safetensors"), "trainer_state.safetensors"),
    "trainer info empty object": (lambda r: (r / CHECKPOINT / "trainer_state.json").write_text(
        "{}"), "trainer_state.json"),
    "trainer info a list": (lambda r: (r / CHECKPOINT / "trainer_state.json").write_text("[]"),
                            "trainer_state.json"),
    "trainer info cut short": (lambda r: truncate(r / CHECKPOINT / "trainer_state.json"),
                               "trainer_state.json"),
    "config a list": (lambda r: (r / "config.json").write_text("[1, 2]"), "config.json"),
    "config width not a number": (lambda r: edit_json(
        r / "config.json", lambda c: c["model_config"].update(hidden="wide")), "config.json"),
    "config width fractional": (lambda r: edit_json(
        r / "config.json", lambda c: c["model_config"].update(hidden=31.5)), "config.json"),
    "config cut short": (lambda r: truncate(r / "config.json"), "config.json"),
    "halting choice garbage": (lambda r: (r / "halting.json").write_text('{"threshold": "x"}'),
                               "halting.json"),
}


@pytest.fixture
def damaged(run_dir, tmp_path):
    """A fresh copy of the trained run, to damage."""
    return shutil.copytree(run_dir, tmp_path / "run")


def commands(run: Path, puzzle: str) -> dict[str, tuple]:
    return {
        "eval": ("eval", run, "--limit", 4, "--halting"),
        "solve": ("solve", run, puzzle, "--attempts", 1),
        "resume": ("train", "--out", run, "--resume", "--set", "train.max_steps=810"),
    }


@pytest.mark.parametrize("damage", RUN_DAMAGES)
def test_a_damaged_run_is_refused_by_every_command(damaged, solved_puzzle, hrm_cli, damage):
    harm, named = RUN_DAMAGES[damage]
    harm(damaged)
    for name, args in commands(damaged, solved_puzzle).items():
        if name == "resume" and named == "halting.json":
            continue  # training does not read the halting choice; it rewrites it at the end
        code, out, err = hrm_cli(*args)
        assert code == 2, (name, code, err)
        assert err.count("\n") == 1 and err.startswith("hrm: error: "), (name, err)
        assert named in err, (name, err)
        assert "Traceback" not in err


@pytest.mark.parametrize("array", ["test/labels.npy", "test/inputs.npy", "train/inputs.npy"])
def test_a_changed_dataset_is_never_evaluated_or_trained_on(damaged, hrm_cli, array):
    flip_byte(damaged / "data" / array)
    split = array.split("/")[0]
    code, _, err = hrm_cli("eval", damaged, "--split", split, "--limit", 4, "--halting")
    assert code == 2 and array in err and err.count("\n") == 1
    code, _, err = hrm_cli("train", "--out", damaged, "--resume", "--set",
                           "train.max_steps=810")
    assert code == 2 and array.split("/")[1] in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["show", "stats", "eval", "train", "compare"])
def test_every_command_refuses_a_damaged_dataset(damaged, tmp_path, hrm_cli, command):
    data = damaged / "data"
    np.save(data / "train" / "inputs.npy", np.full((1, 16), 200, dtype=np.uint8))
    args = {
        "show": ("data", "show", data), "stats": ("data", "stats", data),
        "eval": ("eval", damaged, "--data", data, "--split", "train", "--halting"),
        "train": ("train", "--data", data, "--out", tmp_path / "new"),
        "compare": ("compare", "--data", data, "--models", "hrm", "--preset", "tiny",
                    "--budget", "2s", "--out", tmp_path / "cmp"),
    }[command]
    code, _, err = hrm_cli(*args)
    assert code == 2 and "train/inputs.npy" in err and err.count("\n") == 1, err
    assert not (tmp_path / "new").exists()  # training left no run directory behind


def test_a_run_finds_its_data_from_another_directory(damaged, tmp_path, hrm_cli, monkeypatch):
    moved = shutil.move(damaged, tmp_path / "elsewhere" / "run")
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = hrm_cli("eval", "run", "--limit", 4, "--halting", "--json", "r.json")
    assert code == 0, err
    assert Path(json.loads(Path("r.json").read_text())["data"]).resolve() == (
        Path(moved) / "data").resolve()


def test_a_run_trained_on_given_data_resumes_from_another_directory(damaged, tmp_path, hrm_cli,
                                                                    monkeypatch):
    """Started as ``hrm train --data sets/d`` in one directory, resumed from another."""
    home = tmp_path / "home"
    (home / "sets").mkdir(parents=True)
    run = Path(shutil.move(damaged, home / "run"))
    shutil.move(run / "data", home / "sets" / "d")

    def started_in_home(config):
        config["data"]["path"] = config["data_path"] = "sets/d"
        config.pop("data_path_from_run", None)  # as a run from before recorded it

    edit_json(run / "config.json", started_in_home)
    monkeypatch.chdir(tmp_path)
    code, _, err = hrm_cli("train", "--out", run, "--resume", "--set", "train.max_steps=810")
    assert code == 0, err
    code, _, err = hrm_cli("eval", run, "--limit", 4, "--halting")
    assert code == 0, err


def test_a_run_refuses_its_data_once_changed_and_names_the_array(damaged, hrm_cli):
    meta = damaged / "data" / "meta.json"
    edit_json(meta, lambda m: m["sha256"].update({"test/labels.npy": "0" * 64}))
    # the copy must not find the original run's data at the absolute path it recorded
    edit_json(damaged / "config.json", lambda c: c.update(data_path="/nowhere/data"))
    code, _, err = hrm_cli("eval", damaged, "--limit", 4, "--halting")
    assert code == 2 and "test/labels.npy differs" in err and "--data" in err


def test_a_run_whose_data_is_gone_asks_for_data(damaged, hrm_cli):
    shutil.rmtree(damaged / "data")
    edit_json(damaged / "config.json", lambda c: c.update(data_path="/nowhere/data"))
    code, _, err = hrm_cli("eval", damaged, "--limit", 4)
    assert code == 2 and "/nowhere/data" in err and "--data" in err


def test_resume_after_a_kill_logs_each_step_once(damaged, hrm_cli):
    metrics = damaged / "metrics.jsonl"
    step = json.loads((damaged / CHECKPOINT / "trainer_state.json").read_text())["step"]
    lines = metrics.read_text().splitlines()
    # what a run killed after its checkpoint had logged: later steps, and a line cut short
    later = [json.dumps({"step": step + 10 * i, "loss": 1.0}) for i in (1, 2)]
    metrics.write_text("\n".join(lines + later) + '\n{"step": ')
    code, _, err = hrm_cli("train", "--out", damaged, "--resume", "--set",
                           f"train.max_steps={step + 30}", "--set", "train.eval_every=1000")
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    logged = [s for s in steps if s > step]
    assert logged == [step + 10, step + 20, step + 30]
    assert len(steps) == len(set(steps))


def test_resume_as_another_model_kind_names_the_kind(damaged, hrm_cli):
    code, _, err = hrm_cli("train", "--out", damaged, "--resume", "--model", "transformer")
    assert code == 2 and "holds a hrm run, not a transformer one" in err


def test_an_unexpected_error_is_one_line_with_exit_3_and_debug_shows_it(run_dir, hrm_cli,
                                                                        monkeypatch):
    import importlib

    def broken(*args, **kwargs):
        raise IndexError("index 7 is out of bounds")

    # the module, not the function of the same name that eval/__init__ exports
    monkeypatch.setattr(importlib.import_module("eval.evaluate"), "evaluate", broken)
    code, _, err = hrm_cli("eval", run_dir, "--limit", 2)
    assert code == 3 and err.count("\n") == 1
    assert "internal error: IndexError" in err and "--debug" in err
    with pytest.raises(IndexError):
        main(["--debug", "eval", str(run_dir), "--limit", "2"])

