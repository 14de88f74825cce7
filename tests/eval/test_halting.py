"""Choosing a run's halting threshold on fresh validation puzzles (``eval/halting.py``)."""

import json
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from eval.evaluate import THRESHOLDS
from eval.halting import TOLERANCE, calibrate_halting, choose_threshold
from eval.runs import HALTING_FILE, RunError, load_run
from hrm.cli import cli


def curve(rates: list[float]) -> list[dict]:
    return [{"threshold": t, "segments": 8, "halting": r, "mean_segments": 4.0}
            for t, r in zip(THRESHOLDS, rates, strict=True)]


def test_the_lowest_threshold_within_the_tolerance_of_the_best_is_chosen():
    points = curve([0.80, 0.84, 0.847, 0.852, 0.854, 0.855])
    assert choose_threshold(points, fixed_rate=0.853) == 0.8  # 0.847 >= 0.855 - 0.01
    assert choose_threshold(points, fixed_rate=0.99) == max(THRESHOLDS)  # none is close enough
    # a run that drifts past its answer: all 8 segments solve 82%, halting up to 97%
    drifting = curve([0.958, 0.965, 0.967, 0.970, 0.974, 0.974])
    assert choose_threshold(drifting, fixed_rate=0.821) == 0.7  # 0.965 >= 0.974 - 0.01


@given(st.lists(st.floats(0, 1), min_size=len(THRESHOLDS), max_size=len(THRESHOLDS)),
       st.floats(0, 1))
def test_the_choice_is_a_measured_threshold_and_close_enough_when_any_is(rates, fixed):
    points = curve(rates)
    chosen = choose_threshold(points, fixed)
    assert chosen in THRESHOLDS
    best = max(fixed, *rates)
    close = [p["threshold"] for p in points if p["halting"] >= best - TOLERANCE]
    assert chosen == (min(close) if close else max(THRESHOLDS))


@pytest.fixture
def own_run(run_dir, tmp_path):
    """A copy of the shared 4×4 run, so that choosing its threshold changes no other test."""
    return shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("validation"))


def test_calibration_writes_the_choice_and_runs_load_it(own_run):
    record = calibrate_halting(own_run, 40)
    written = json.loads((own_run / HALTING_FILE).read_text())
    assert written == record and record["puzzles"] == 40 and record["segments"] == 4
    assert record["threshold"] in THRESHOLDS
    assert [p["threshold"] for p in record["table"]] == list(THRESHOLDS)
    run = load_run(own_run)
    assert run.halt_threshold == record["threshold"] and record["step"] == run.step
    # the validation puzzles are fresh: not the run's training or test puzzles
    validation = (own_run / "validation" / "meta.json").read_text()
    assert json.loads(validation)["seed"] != run.data["seed"]


def test_a_choice_made_for_another_checkpoint_is_ignored(own_run):
    step = load_run(own_run).step
    (own_run / HALTING_FILE).write_text(json.dumps({"threshold": 0.9, "step": step - 1}))
    assert load_run(own_run).halt_threshold == 0.5
    (own_run / HALTING_FILE).write_text(json.dumps({"threshold": 0.9, "step": step}))
    assert load_run(own_run).halt_threshold == 0.9


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not a halting choice"),
    ('{"threshold": 1.5, "step": 1}', "not between 0 and 1"),
])
def test_a_broken_choice_is_a_one_line_error(own_run, text, message):
    (own_run / HALTING_FILE).write_text(text)
    with pytest.raises(RunError, match=message):
        load_run(own_run)


def test_eval_uses_the_run_s_threshold_unless_told_otherwise(own_run, tmp_path):
    step = load_run(own_run).step
    (own_run / HALTING_FILE).write_text(json.dumps({"threshold": 0.9, "step": step}))
    for extra, expected in (([], 0.9), (["--halt-threshold", "0.7"], 0.7)):
        args = ["eval", str(own_run), "--halting", "--json", str(tmp_path / "r.json"), *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "r.json").read_text())["halt_threshold"] == expected
        assert f"learned halting at threshold {expected}" in result.output


def test_training_chooses_the_threshold_when_asked(tmp_path, tiny_trainer):
    run_dir = tiny_trainer(tmp_path / "r", max_steps=20, calibrate_halting=24)
    chosen = json.loads((run_dir / HALTING_FILE).read_text())["threshold"]
    assert load_run(run_dir).halt_threshold == chosen
