import json
import re
from dataclasses import replace

import pytest

from eval.attempts import AttemptSettings
from eval.compare import (
    Comparison,
    compare,
    comparison_markdown,
    parse_budget,
    prepare_data,
    run_config,
    summarise,
)
from hrm.cli import main


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("30m", "time", 1800.0), ("90s", "time", 90.0), ("1.5h", "time", 5400.0),
    ("45", "time", 45.0), ("2e5", "examples", 2e5), ("1e15", "flops", 1e15),
])
def test_budgets_read_units(text, kind, value):
    assert parse_budget(text, kind) == value


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("30x", "time", "cannot read budget"), ("30m", "examples", "cannot read budget"),
    ("0", "time", "must be positive"), ("1", "watts", "budget kind must be one of"),
])
def test_bad_budgets_say_why(text, kind, message):
    with pytest.raises(ValueError, match=message):
        parse_budget(text, kind)


def test_each_budget_kind_sets_the_run_length(tmp_path):
    from puzzles.dataset import BuildSpec, build_dataset
    data = build_dataset(BuildSpec("sudoku", 4, "easy", 64, 8), tmp_path / "data")
    spec = Comparison("sudoku", 4, "easy", ["hrm"], 120.0, "time", preset="tiny")
    config = run_config(spec, "transformer", 2, data)
    assert config.train.max_seconds == 120.0 and config.train.seed == 2
    assert config.model["kind"] == "transformer"
    spec.budget_kind, spec.budget = "examples", 6400.0
    assert run_config(spec, "hrm", 0, data).train.max_steps == 100  # batch 64
    spec.budget_kind, spec.budget = "flops", 1e13
    hrm_steps = run_config(spec, "hrm", 0, data).train.max_steps
    transformer_steps = run_config(spec, "transformer", 0, data).train.max_steps
    cot_steps = run_config(spec, "cot", 0, data).train.max_steps
    # an HRM step runs 4 low- and 2 high-level updates: a transformer step is cheaper
    assert 1 <= hrm_steps < transformer_steps and cot_steps >= 1


def test_each_model_gets_its_settings_and_its_own_overrides(tmp_path):
    from puzzles.dataset import BuildSpec, build_dataset
    data = build_dataset(BuildSpec("sudoku", 4, "easy", 64, 8), tmp_path / "data")
    spec = Comparison("sudoku", 4, "easy", ["hrm", "transformer", "transformer-segments"], 60.0,
                      preset="tiny", overrides=["train.weight_decay=0.5",
                                                "transformer-segments:train.lr=0.003",
                                                "transformer:model.layers=8"])
    hrm, one_pass, segments = (run_config(spec, name, 0, data) for name in spec.models)
    assert one_pass.model["kind"] == segments.model["kind"] == "transformer"
    assert segments.model["refine"] is True and "refine" not in one_pass.model
    assert segments.train.lr == 0.003 and hrm.train.lr == one_pass.train.lr == 1e-3
    assert one_pass.model["layers"] == 8 and "layers" not in segments.model
    assert hrm.train.weight_decay == one_pass.train.weight_decay == 0.5


def test_compare_trains_evaluates_tabulates_and_resumes(tmp_path, capsys):
    spec = Comparison("sudoku", 4, "easy", ["hrm", "transformer"], 3.0, "time", train=200,
                      test=32, preset="tiny", overrides=["train.threads=1"])
    rows = compare(spec, tmp_path, progress=False, echo=lambda line: None)
    assert [r["model"] for r in rows] == ["hrm", "transformer"]
    for row in rows:
        assert 3.0 <= row["train_seconds"] < 6.0 and 0 <= row["solved_mean"] <= 1
    table = (tmp_path / "comparison.md").read_text()
    assert "| hrm |" in table and "| transformer |" in table
    assert (tmp_path / "comparison.png").stat().st_size > 0
    # a second call reuses the finished runs: nothing retrains
    stamp = (tmp_path / "runs" / "hrm-seed0" / "evaluation.json").stat().st_mtime
    assert compare(spec, tmp_path, progress=False, echo=lambda line: None) == rows
    assert (tmp_path / "runs" / "hrm-seed0" / "evaluation.json").stat().st_mtime == stamp
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["rows"][0]["model"] == "hrm"
    # attempts asked for later are measured on the kept runs, for both models alike
    with_attempts = replace(spec, attempts=AttemptSettings(4))
    rows = compare(with_attempts, tmp_path, progress=False, echo=lambda line: None)
    for row in rows:
        assert 1 <= row["attempts_used"] <= 4
        result = json.loads((tmp_path / "runs" / f"{row['model']}-seed0" / "evaluation.json")
                            .read_text())
        rates = [point["solved"]["rate"] for point in result["attempts"]["points"]]
        assert rates == sorted(rates) and row["attempts_mean"] == rates[-1]
    assert "with attempts" in (tmp_path / "comparison.md").read_text()
    # more seeds or models would add to the runs; another budget must not reuse them
    with pytest.raises(ValueError, match=r"holds runs made with budget 3.0, not 60.0"):
        compare(replace(spec, budget=60.0), tmp_path, progress=False, echo=lambda line: None)


@pytest.mark.parametrize(("change", "named"), [
    ({"budget": 9.0}, "budget 3.0, not 9.0"),
    ({"budget_kind": "examples", "budget": 3.0}, "budget_kind 'time', not 'examples'"),
    ({"preset": "cpu-small"}, "preset 'tiny', not 'cpu-small'"),
    ({"overrides": ["train.lr=0.01"]}, "overrides [], not ['train.lr=0.01']"),
    ({"test": 9}, "other data, not this data"),
])
def test_compare_refuses_an_out_made_with_another_spec(tmp_path, change, named):
    spec = Comparison("sudoku", 4, "easy", ["hrm"], 3.0, "time", train=64, test=8,
                      preset="tiny")
    claim = spec_folder(spec, tmp_path)
    with pytest.raises(ValueError, match=re.escape(named)):
        spec_folder(replace(spec, **change), tmp_path)
    assert json.loads(claim.read_text())["budget"] == 3.0  # the record is left as it was
    spec_folder(replace(spec, models=["hrm", "transformer"]), tmp_path)  # more models: fine


def spec_folder(spec: Comparison, out):
    """What ``compare`` does before training: the data, then the folder's claim."""
    from eval.compare import SPEC_FILE, claim_folder, prepare_data

    data = prepare_data(spec, out / f"built-{spec.difficulty}-{spec.train}-{spec.test}")
    claim_folder(spec, out, data)
    return out / SPEC_FILE


def fake_result(solved: float, segments: int | None, halting: float | None) -> dict:
    """An evaluation's fields that the table reads; a one-pass model's halting is its answer."""
    def rate(value):
        return {"rate": value, "low": value - 0.02, "high": value + 0.02}
    result = {"solved": rate(solved), "parameters": 630_000, "training_flops": 4e14,
              "train_seconds": 1800.0, "train_steps": 7000, "copy_accuracy": 1.0,
              "fill_accuracy": 0.9, "inference_flops": 2e9, "segments": segments}
    if segments is None:
        result["mean_tokens"] = 230
    else:
        result["halting"] = {"solved": rate(halting or solved),
                             "mean_segments": 2.8 if segments > 1 else 1.0}
    return result


def test_the_table_has_learned_halting_beside_the_training_segments():
    spec = Comparison("sudoku", 9, "easy", ["hrm", "transformer", "cot"], 1800.0)
    rows = [summarise("hrm", [fake_result(0.821, 8, 0.958), fake_result(0.9, 8, 0.96)]),
            summarise("transformer", [fake_result(0.05, 1, None)]),
            summarise("cot", [fake_result(0.1, None, None)])]
    assert rows[0]["halting_mean"] == pytest.approx(0.959)
    assert rows[0]["halting_interval"] == (0.958, 0.96)  # range over seeds
    table = comparison_markdown(spec, rows).splitlines()
    hrm, one_pass, cot = (next(line for line in table if line.startswith(f"| {name} |"))
                          for name in spec.models)
    assert "| 86.1% (82.1–90.0) | 95.9% (95.8–96.0) |" in hrm and "2.8 of 8 segments" in hrm
    assert "| 5.0% (3.0–7.0) | — |" in one_pass  # one seed: its Wilson interval
    assert "| 10.0% (8.0–12.0) | — |" in cot and "230 tokens" in cot


def test_the_table_gives_every_segment_model_the_same_attempts():
    spec = Comparison("sudoku", 9, "easy", ["hrm", "cot"], 1800.0,
                      attempts=AttemptSettings(16))
    hrm_result = fake_result(0.8, 8, 0.9)
    hrm_result["attempts"] = {"points": [{"solved": {"rate": 0.99, "low": 0.98, "high": 0.995},
                                          "mean_attempts": 1.3, "inference_flops": 3e9}]}
    rows = [summarise("hrm", [hrm_result]), summarise("cot", [fake_result(0.1, None, None)])]
    table = comparison_markdown(spec, rows)
    assert "16 attempts (random symmetries; anytime)" in table
    hrm, cot = (next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
                for name in spec.models)
    assert hrm.endswith("| 99.0% (98.0–99.5) | 1.30 | 3.00e+09 |")
    assert cot.endswith("| — | — | — |") and "attempts for it are not built" in table
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert header.count("|") == hrm.count("|")


def test_quickstart_builds_trains_compares_and_solves(tmp_path, capsys):
    main(["quickstart", "--out", str(tmp_path), "--budget", "3s"])  # returns: exit code 0
    out = capsys.readouterr().out
    assert "| hrm |" in out and "| transformer |" in out
    assert "HRM on the first test puzzle" in out and "segment 1: " in out


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "hrm,gpt"], "unknown model 'gpt'"),
    (["--set", "cot:train.lr=1"], "'cot' is not one of the models compared (hrm, transformer)"),
    (["--budget", "soon"], "cannot read budget"),
    (["--difficulty", "brutal", "--size", "4"], "unknown difficulty 'brutal'"),
    (["--difficulty", "easy:1,medium:0", "--size", "6"], "the weight of 'medium'"),
    # refused before any data is built: TRM's preset holds settings HRM does not take
    (["--preset", "trm-small", "--models", "hrm,trm"],
     "preset 'trm-small' as hrm: model.latent_steps is not an HRM setting"),
])
def test_compare_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as done:
        main(["compare", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_a_setting_named_for_one_model_must_be_one_it_reads():
    spec = dict(family="sudoku", size=4, difficulty="easy", models=["hrm", "trm"], budget=3.0,
                preset="tiny")
    Comparison(**spec, overrides=["model.h_cycles=3"])  # for every model: TRM may ignore it
    with pytest.raises(ValueError, match=r"model.h_cycles is not a TRM setting"):
        Comparison(**spec, overrides=["trm:model.h_cycles=3"])


def test_compare_builds_a_mix_of_tiers_as_data_build_does(tmp_path):
    spec = Comparison(family="sudoku", size=6, difficulty="easy:1,medium:3", models=["hrm"],
                      budget=3.0, train=40, test=8, preset="tiny")
    data = prepare_data(spec, tmp_path)
    meta = json.loads((data / "meta.json").read_text())
    assert meta["difficulty"] == "easy:1,medium:3"
    assert meta["counts"] == {"train": 40, "test": 8}
