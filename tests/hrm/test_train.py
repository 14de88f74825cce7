import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file

from hrm.config import RunConfig, apply_override
from hrm.kinds import KINDS
from hrm.model import HRM, HRMConfig
from hrm.presets import PRESETS, preset
from hrm.train import (
    TrainingError,
    evaluate,
    learning_rate,
    phase,
    preferred_maze_paths,
    setup_distributed,
    spread_rows,
    train,
)
from puzzles.dataset import BuildSpec, PuzzleDataset, build_dataset
from puzzles.maze import PATH, MazeFamily


def tiny_config(**train_overrides) -> RunConfig:
    raw = preset("tiny")
    raw["data"].update(train=200, test=50)
    raw["model"].update(hidden=32, h_layers=1, l_layers=1)
    settings = dict(batch_size=32, max_steps=20, eval_every=10, checkpoint_every=10,
                    log_every=5, threads=1)
    raw["train"].update({**settings, **train_overrides})
    return RunConfig.from_dict(raw)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A shared 4×4 dataset, so each run does not rebuild it."""
    run = tmp_path_factory.mktemp("data-run")
    train(tiny_config(max_steps=1, eval_every=1), run, progress=False)
    return run / "data"


def with_data(config: RunConfig, data_dir) -> RunConfig:
    config.data.path = str(data_dir)
    return config


def weights(run) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoint" / "model.safetensors")


def test_a_run_writes_config_metrics_and_checkpoint(tmp_path, data_dir):
    run = tmp_path / "run"
    result = train(with_data(tiny_config(), data_dir), run, progress=False)
    assert set(result) == {"test_solved", "test_exact", "test_cell_accuracy"}
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["vocab_size"] == 6 and config["model_config"]["seq_len"] == 16
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "test_exact" in r] == [10, 20]
    assert all(0 < r["train_seconds"] <= r["seconds"] for r in lines)
    assert all(r["example_segments_per_s"] > 0 for r in lines if "loss" in r)
    info = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
    assert info["step"] == 20



def test_config_json_describes_the_dataset_given_not_the_preset(tmp_path, data_dir):
    config = with_data(tiny_config(max_steps=1, eval_every=1), data_dir)
    config.data.test, config.data.difficulty = 999, "hard"  # preset fields the data overrides
    train(config, tmp_path / "run", progress=False)
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data == {"path": str(data_dir), "family": "sudoku", "size": 4, "difficulty": "easy",
                    "train": 200, "test": 50, "seed": 0, "options": {}}

def test_same_seed_gives_the_same_weights(tmp_path, data_dir):
    for name in ("a", "b"):
        train(with_data(tiny_config(max_steps=6), data_dir), tmp_path / name, progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("ema", "shallow_steps"), [(0.0, 0), (0.9, 0), (0.0, 10)])
def test_resume_matches_an_uninterrupted_run(tmp_path, data_dir, ema, shallow_steps):
    def config(steps):
        overrides = dict(max_steps=steps, checkpoint_every=7, ema=ema, shallow_steps=shallow_steps)
        return with_data(tiny_config(**overrides), data_dir)

    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config(14), straight, progress=False)
    train(config(7), split, progress=False)
    train(config(14), split, resume=True, progress=False)
    a, b = weights(straight), weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)
    states = [load_file(r / "checkpoint" / "trainer_state.safetensors") for r in (straight, split)]
    averages = [{k: v for k, v in state.items() if k.startswith("ema/")} for state in states]
    assert len(averages[0]) == (len(a) - 2 if ema else 0)  # parameters, not the two buffers
    assert all(torch.equal(averages[0][k], averages[1][k]) for k in averages[0])
    if ema:
        assert not torch.equal(averages[0]["ema/output_head.weight"], a["output_head.weight"])


def test_resume_keeps_the_answer_feedback_board(tmp_path, data_dir):
    def config(steps):
        run_config = with_data(tiny_config(max_steps=steps, checkpoint_every=7), data_dir)
        run_config.model.update(feedback=True, feedback_threshold=0.2)  # fills from the start
        return run_config

    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config(14), straight, progress=False)
    train(config(7), split, progress=False)
    board = load_file(split / "checkpoint" / "trainer_state.safetensors")["rank0/carry.board"]
    assert board.any()
    train(config(14), split, resume=True, progress=False)
    a, b = weights(straight), weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_limited_evaluation_grades_the_spread_rows_of_a_split(data_dir):
    dataset = PuzzleDataset(data_dir, "test")
    rows = spread_rows(len(dataset), 5)
    first = PuzzleDataset(data_dir, "test")
    first.inputs, first.labels = dataset.inputs[rows], dataset.labels[rows]
    torch.manual_seed(0)
    model = HRM(HRMConfig(vocab_size=6, seq_len=16, hidden=32, heads=4))
    hrm = KINDS["hrm"]
    part = evaluate(model, hrm, dataset, segments=2, limit=5)
    assert part == evaluate(model, hrm, first, segments=2)
    assert part != evaluate(model, hrm, dataset, segments=2)


def test_shallow_phase_runs_one_cycle_and_one_segment_first(tmp_path, data_dir):
    config = with_data(tiny_config(max_steps=20, shallow_steps=10, log_every=1), data_dir)
    assert phase(config, 9) == (replace(config.act, max_segments=1), (1, 1), 1)
    assert phase(config, 10) == (config.act, None, config.act.max_segments)
    train(config, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    segments = [r["halted_segments"] for r in lines]
    assert all(s == 1 for s in segments[:10]) and max(segments[10:]) > 1


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path, data_dir):
    run = tmp_path / "run"
    train(with_data(tiny_config(max_steps=2), data_dir), run, progress=False)
    with pytest.raises(TrainingError, match="--resume"):
        train(with_data(tiny_config(max_steps=2), data_dir), run, progress=False)


def test_non_finite_loss_stops_with_the_step_named(tmp_path, data_dir):
    run = tmp_path / "run"
    # step 1 blows the weights up, so step 2 is the first whose loss is not finite
    config = with_data(tiny_config(warmup_steps=0), data_dir)
    config.train.lr = float("inf")  # past the settings' checks, which refuse it
    with pytest.raises(TrainingError, match="loss is nan at step 2"):
        train(config, run, progress=False)
    assert not (run / "checkpoint").exists()


def test_unknown_keys_and_bad_values_are_rejected():
    with pytest.raises(ValueError, match="train.speed"):
        RunConfig.from_dict({"train": {"speed": 1}})
    with pytest.raises(ValueError, match="model.depth"):
        RunConfig.from_dict({"model": {"depth": 3}})
    with pytest.raises(ValueError, match="section"):
        RunConfig.from_dict({"trainer": {}})
    with pytest.raises(ValueError, match="dtype"):
        RunConfig.from_dict({"train": {"dtype": "fp8"}})
    with pytest.raises(ValueError, match="schedule"):
        RunConfig.from_dict({"train": {"schedule": "linear"}})
    with pytest.raises(ValueError, match="options"):
        RunConfig.from_dict({"data": {"family": "maze", "size": 9, "options": {"walls": 3}}})
    with pytest.raises(ValueError, match="positions"):
        RunConfig.from_dict({"model": {"positions": "sinusoidal"}})
    with pytest.raises(ValueError, match="train.calibrate_halting"):
        RunConfig.from_dict({"train": {"calibrate_halting": -1}})
    with pytest.raises(ValueError, match="train.target must be 'label' or 'preferred'"):
        RunConfig.from_dict({"train": {"target": "nearest"}})


def test_the_preferred_target_is_refused_for_sudoku(tmp_path, data_dir):
    config = with_data(tiny_config(target="preferred"), data_dir)
    with pytest.raises(TrainingError, match="train.target=preferred is for mazes"):
        train(config, tmp_path / "run", progress=False)


def test_preferred_maze_paths_reads_path_against_open_logits():
    family = MazeFamily(9)
    puzzle, solution, _ = family.generate(np.random.default_rng(3), "medium")
    inputs = torch.from_numpy(family.encode(puzzle)).long()[None]  # [1, 81]
    logits = torch.zeros(1, 81, family.vocab_size)
    logits[0, torch.from_numpy(family.encode(solution) == PATH), PATH] = 2.0
    target = preferred_maze_paths(inputs, logits)
    assert target.dtype == inputs.dtype and target.shape == inputs.shape
    assert np.array_equal(target[0].numpy(), family.encode(solution))


def test_mazes_with_several_shortest_paths_train_towards_the_preferred_one(tmp_path):
    raw = preset("maze-small")
    raw["data"].update(size=7, difficulty="medium", train=256, test=32, options={})
    raw["model"].update(hidden=32, heads=2, h_layers=1, l_layers=1, positions="none",
                        mixer="none")
    raw["train"].update(batch_size=32, max_steps=150, shallow_steps=0, eval_every=150,
                        checkpoint_every=150, log_every=10, threads=1, dtype="fp32",
                        compile=False, calibrate_halting=0, target="preferred")
    train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["answer_loss"] for r in lines if "answer_loss" in r]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])


@pytest.mark.parametrize("raw, message", [
    ({"act": {"halt_only": "maybe"}}, "act.halt_only must be true or false, not 'maybe'"),
    ({"act": {"halt_only": 1}}, "act.halt_only must be true or false, not 1"),
    ({"model": {"grid_conv": "yes"}}, "model.grid_conv must be true or false"),
    ({"model": {"hidden": 64.5}}, "model.hidden must be an integer, not 64.5"),
    ({"train": {"max_steps": True}}, "train.max_steps must be an integer, not True"),
    ({"train": {"lr": "fast"}}, "train.lr must be a number, not 'fast'"),
    ({"train": {"eval_segments": "8"}}, "train.eval_segments must be an integer, not '8'"),
    ({"data": {"family": 3}}, "data.family must be a string, not 3"),
])
def test_values_of_the_wrong_type_are_rejected(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RunConfig.from_dict(raw)


def test_values_of_the_right_type_pass():
    config = RunConfig.from_dict({"train": {"lr": 1, "eval_segments": None, "max_seconds": 90},
                                  "act": {"halt_only": True}, "model": {"grid_conv": False}})
    assert config.train.lr == 1 and config.act.halt_only and config.train.eval_segments is None


def test_overrides_are_parsed_as_json_when_they_can_be():
    raw: dict = {}
    apply_override(raw, "train.lr=3e-4")
    apply_override(raw, "model.positions=rope")
    assert raw == {"train": {"lr": 3e-4}, "model": {"positions": "rope"}}
    with pytest.raises(ValueError, match="section.key=value"):
        apply_override(raw, "lr=3")


def test_warmup_then_constant_or_cosine():
    config = tiny_config(warmup_steps=10, lr=1.0, max_steps=110, schedule="constant").train
    assert learning_rate(config, 0) == pytest.approx(0.1)
    assert learning_rate(config, 50) == 1.0
    config.schedule = "cosine"
    assert learning_rate(config, 10) == pytest.approx(1.0)
    assert learning_rate(config, 110) == pytest.approx(0.1)
    config.max_seconds = 100.0  # the cosine follows the clock when it is ahead of the steps
    assert learning_rate(config, 10, seconds=50.0) == pytest.approx(0.55)
    assert learning_rate(config, 10, seconds=500.0) == pytest.approx(0.1)


def test_a_time_budget_stops_the_run_and_anneals_by_the_clock(tmp_path, data_dir):
    # no warm-up: a busy machine may make fewer steps in the 2 s than warming up takes
    config = with_data(tiny_config(max_steps=10**6, max_seconds=2.0, eval_every=10**6,
                                   checkpoint_every=10**6, schedule="cosine", warmup_steps=0),
                       data_dir)
    result = train(config, tmp_path / "run", progress=False)
    assert set(result) == {"test_solved", "test_exact", "test_cell_accuracy"}  # a final eval
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert 2.0 <= lines[-1]["train_seconds"] < 6.0 and "test_exact" in lines[-1]
    # the last step's rate is the clock's: at most what the schedule gave at the time of the
    # record before it (a step slowed by a busy machine starts earlier on the clock), and
    # never below the floor of 10%
    before = learning_rate(config.train, lines[-2]["step"], lines[-2]["train_seconds"])
    assert 0.1 * config.train.lr * 0.999 <= lines[-1]["lr"] <= before * 1.001
    info = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())
    assert info["step"] == lines[-1]["step"] and info["train_seconds"] >= 2.0


def test_tiny_preset_learns_4x4_sudoku(tmp_path, data_dir):
    """A short run of the tiny model must fill blanks far above chance and start solving
    unseen 4×4 puzzles outright. (Chance: givens copied, blanks guessed, is about 0.45 cell
    accuracy and 0 exact.)"""
    raw = preset("tiny")
    raw["data"]["path"] = str(data_dir)
    raw["train"].update(max_steps=500, eval_every=500, threads=1, schedule="constant")
    result = train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["answer_loss"] for r in lines if "answer_loss" in r]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert result["test_cell_accuracy"] >= 0.75
    assert result["test_exact"] >= 0.1


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "train.bogus=1"], "hrm: error: unknown config key 'train.bogus'"),
    (["--set", "model.layers=3"], "hrm: error: model.layers is not an HRM setting"),
    (["--model", "transformer", "--set", "model.layers=0"],
     "hrm: error: layers must be at least 1"),
    # a setting the model's kind would drop, when a user names it, not when a preset holds it
    (["--model", "trm", "--set", "model.gradient=one_step"],
     "hrm: error: model.gradient is not a TRM setting (a TRM ignores it); TRM settings: "),
    (["--model", "transformer", "--set", "model.h_cycles=3"],
     "hrm: error: model.h_cycles is not a Transformer setting (a Transformer ignores it); "),
    (["--difficulty", "easy:2,bogus"], "hrm: error: unknown difficulty 'bogus' (tiers here: "
                                        "easy; a mix reads tier:weight,tier:weight)"),
    (["--preset", "huge"], "hrm: error: unknown preset 'huge': choose from tiny, cpu-small, "
                           "maze-small, paper, cpu-hard, trm-small"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    command = [sys.executable, "-m", "hrm.cli", "train", "--out", str(tmp_path / "r"), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)


def cli_train(out, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hrm.cli", "train", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_resume_needs_only_the_run_and_keeps_its_settings(tmp_path, data_dir):
    run, straight = tmp_path / "run", tmp_path / "straight"
    small = ["--data", str(data_dir), "--set", "model.hidden=32", "--set", "model.l_layers=1",
             "--set", "train.checkpoint_every=3", "--set", "train.eval_every=3",
             "--set", "train.threads=1"]
    assert cli_train(straight, *small, "--set", "train.max_steps=6").returncode == 0
    assert cli_train(run, *small, "--set", "train.max_steps=3").returncode == 0
    done = cli_train(run, "--resume", "--set", "train.max_steps=6")  # nothing else repeated
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run / "checkpoint" / "trainer_state.json").read_text())["step"] == 6
    a, b = weights(straight), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_with_another_model_is_one_line_naming_the_setting(tmp_path, data_dir):
    run = tmp_path / "run"
    train(with_data(tiny_config(max_steps=2), data_dir), run, progress=False)
    done = cli_train(run, "--resume", "--preset", "tiny", "--data", str(data_dir))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"hrm: error: {run / 'config.json'}: the run was trained with model h_layers=1, not 2; "
        "resume it with its own "
        f"settings (hrm train --out {run} --resume)"]


def test_resuming_on_other_data_is_refused(tmp_path, data_dir):
    run, other = tmp_path / "run", tmp_path / "other"
    build_dataset(BuildSpec("sudoku", 4, "easy", train=200, test=50, seed=1), other)
    train(with_data(tiny_config(max_steps=2), data_dir), run, progress=False)
    with pytest.raises(TrainingError, match="other data"):
        train(with_data(tiny_config(max_steps=4), other), run, resume=True, progress=False)


def torchrun(run, data_dir, max_steps: int, *extra: str) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "hrm.cli", "train", "--data", str(data_dir), "--preset", "tiny",
        "--set", "model.hidden=32", "--set", "model.h_layers=1", "--set", "model.l_layers=1",
        "--set", "train.batch_size=16", "--set", "train.threads=1",
        "--set", f"train.max_steps={max_steps}", "--set", "train.eval_every=4",
        "--set", "train.checkpoint_every=4", "--out", str(run), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1",
                               "CUDA_VISIBLE_DEVICES": ""})  # gloo, even beside a GPU
    # the children's own errors, not torchrun's traceback about them
    errors = [line for line in done.stderr.splitlines()
              if re.search(r"Error|terminate|what\(\)|Abort", line)]
    assert done.returncode == 0, "\n".join(errors[:20]) or done.stderr[-2000:]


def test_two_processes_with_gloo_stay_in_sync_and_resume_exactly(tmp_path, data_dir):
    straight, split = tmp_path / "straight", tmp_path / "split"
    torchrun(straight, data_dir, 8)
    torchrun(split, data_dir, 4)
    torchrun(split, data_dir, 8, "--resume")
    for run in (straight, split):
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        flags = [r["ranks_in_sync"] for r in records if "ranks_in_sync" in r]
        assert flags and all(flags)
    info = json.loads((split / "checkpoint" / "trainer_state.json").read_text())
    assert info["world_size"] == 2 and info["step"] == 8
    a, b = weights(straight), weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_more_processes_than_gpus_is_refused_before_nccl_starts(monkeypatch):
    # NCCL cannot give two ranks one GPU; the message says what to do instead
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(TrainingError, match=r"2 processes on a node with 1 GPU\(s\)"):
        setup_distributed()


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_preset_builds_every_model_kind(name, kind):
    from hrm.config import build_config, build_model
    from puzzles import make_family

    raw = preset(name)
    own_kind = raw["model"].get("kind", "hrm")
    raw["model"]["kind"] = kind
    if own_kind == "trm" and kind == "hrm":
        # TRM's recursion settings mean nothing to HRM: a clear error, not a silent drop
        with pytest.raises(ValueError, match=r"model\.\w+ is not an HRM setting"):
            RunConfig.from_dict(raw)
        return
    config = RunConfig.from_dict(raw)
    family = make_family(config.data.family, config.data.size, **config.data.options)
    model_config = build_config(config.model, family.vocab_size + 40, family.seq_len * 4)
    assert build_model(model_config) is not None


def test_a_one_pass_transformer_drops_the_segment_loop_settings_a_refining_one_keeps():
    from hrm.config import build_config

    model = {"kind": "transformer", "hidden": 32, "heads": 4, "h_layers": 1, "l_layers": 1,
             "h_cycles": 1, "l_cycles": 1, "feedback": True, "carry_state": False,
             "init_state_std": 0.0}
    one_pass = build_config(model, 6, 16)
    assert not one_pass.feedback and one_pass.carry_state and one_pass.layers == 2
    assert one_pass.init_state_std == 1.0
    refining = build_config({**model, "refine": True}, 6, 16)
    assert refining.feedback and not refining.carry_state and refining.init_state_std == 0.0



@given(count=st.integers(1, 3000), limit=st.integers(1, 3000))
def test_a_limited_evaluation_takes_rows_spread_over_the_whole_split(count, limit):
    # a mixed-tier split stores its tiers one after another: the first rows would be the easiest
    rows = spread_rows(count, limit)
    taken = min(count, limit)
    assert len(rows) == taken and np.all(np.diff(rows) > 0)
    assert rows[0] == 0 and rows[-1] < count
    # no gap wider than an even share, up to the end of the split
    share = -(-count // taken)
    assert np.all(np.diff(rows) <= share) and rows[-1] >= count - share


def test_spread_rows_without_a_limit_is_the_whole_split():
    assert np.array_equal(spread_rows(7, None), np.arange(7))


def tiny_maze_config(size: int, **train_overrides) -> RunConfig:
    """A size-free maze model (grid convolution, no positions) on a few mazes."""
    raw = preset("maze-small")
    raw["data"].update(size=size, difficulty="easy", train=64, test=8, options={})
    raw["model"].update(hidden=16, heads=2, h_layers=1, l_layers=1, positions="none",
                        mixer="none")
    settings = dict(batch_size=32, max_steps=2, shallow_steps=0, eval_every=2,
                    checkpoint_every=2, threads=1, dtype="fp32", compile=False,
                    calibrate_halting=0)
    raw["train"].update({**settings, **train_overrides})
    return RunConfig.from_dict(raw)


@pytest.mark.parametrize("size", [7, 9])
def test_init_starts_from_another_runs_weights_even_at_another_maze_size(tmp_path, size):
    train(tiny_maze_config(7), tmp_path / "first", progress=False)
    config = tiny_maze_config(size, init=str(tmp_path / "first"), lr=1e-12, warmup_steps=0,
                              max_steps=1, eval_every=1, checkpoint_every=1)
    train(config, tmp_path / "second", progress=False)
    before, after = weights(tmp_path / "first"), weights(tmp_path / "second")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


def test_init_from_another_model_or_no_run_is_one_error(tmp_path):
    train(tiny_maze_config(7), tmp_path / "first", progress=False)
    wider = tiny_maze_config(7, init=str(tmp_path / "first"))
    wider.model["hidden"] = 32
    with pytest.raises(TrainingError, match="train.init: .* holds another model"):
        train(wider, tmp_path / "second", progress=False)
    with pytest.raises(TrainingError, match="train.init: .*trainer_state.json"):
        train(tiny_maze_config(7, init=str(tmp_path / "none")), tmp_path / "third",
              progress=False)


def test_init_takes_the_averaged_weights_of_a_run_that_kept_them(tmp_path):
    train(tiny_maze_config(7, ema=0.5), tmp_path / "first", progress=False)
    averaged = {k.split("/", 1)[1]: v for k, v in
                load_file(tmp_path / "first" / "checkpoint" / "trainer_state.safetensors").items()
                if k.startswith("ema/")}
    config = tiny_maze_config(7, init=str(tmp_path / "first"), lr=1e-12, warmup_steps=0,
                              max_steps=1, eval_every=1, checkpoint_every=1)
    train(config, tmp_path / "second", progress=False)
    after = weights(tmp_path / "second")
    assert averaged and averaged.keys() <= after.keys()
    assert all(torch.allclose(averaged[k], after[k], atol=1e-6) for k in averaged)
    assert not all(torch.equal(averaged[k], weights(tmp_path / "first")[k]) for k in averaged)
