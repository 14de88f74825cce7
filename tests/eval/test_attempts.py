"""Test-time attempts: selection by the rules, the anytime stop, and the batched runner."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eval.attempts import (
    RULES,
    AttemptSettings,
    Finished,
    attempt_points,
    choose,
    run_attempts,
)
from eval.evaluate import evaluate
from eval.runs import load_run, run_segments
from hrm.inference import graded
from hrm.layers import StateNoise
from puzzles.base import RuleCheck
from puzzles.dataset import PuzzleDataset


def finished(attempt, answer, passes=False, cost=0, confidence=0.5):
    return Finished(attempt, np.array(answer, dtype=np.uint8), confidence, 1,
                    RuleCheck(passes, cost, passes))


def test_the_rule_check_comes_before_confidence_and_votes():
    items = [finished(0, [1], confidence=0.99), finished(1, [1], confidence=0.99),
             finished(2, [2], passes=True, confidence=0.1)]
    assert choose(items) == (2, "rules")


def test_among_passing_answers_the_shorter_path_wins():
    items = [finished(0, [1], passes=True, cost=12, confidence=0.9),
             finished(1, [2], passes=True, cost=10, confidence=0.2)]
    assert choose(items) == (1, "shortest")


def test_then_confidence_then_votes_then_the_earlier_attempt():
    assert choose([finished(0, [1], confidence=0.4), finished(1, [2], confidence=0.6)]) == \
        (1, "confidence")
    votes = [finished(0, [1]), finished(1, [2]), finished(2, [2])]
    assert choose(votes) == (1, "vote")
    assert choose([finished(0, [1]), finished(1, [2])]) == (0, "order")
    assert choose([finished(0, [3])]) == (0, "single")
    assert choose([finished(0, [3]), finished(1, [3])]) == (0, "agreement")


@given(st.integers(1, 1024))
def test_attempt_points_double_up_to_the_count(count):
    points = attempt_points(count)
    assert points[0] == 1 and points[-1] == count and points == sorted(set(points))
    assert all(b <= 2 * a for a, b in zip(points, points[1:], strict=False))


@pytest.mark.parametrize(("settings", "message"), [
    (dict(count=0), "between 1 and"),
    (dict(count=5000), "between 1 and"),
    (dict(count=4, noise=float("nan")), "finite"),
    (dict(count=4, noise=-1.0), "at least 0"),
    (dict(count=4, symmetry=False), "something to vary them"),
])
def test_bad_settings_say_why(settings, message):
    with pytest.raises(ValueError, match=message):
        AttemptSettings(**settings)


def test_noise_of_zero_leaves_a_row_unchanged():
    z = torch.randn(3, 5, 8)
    noisy = StateNoise(torch.tensor([0.0, 0.5, 0.0]), torch.Generator().manual_seed(0))(z)
    assert torch.equal(noisy[0], z[0]) and torch.equal(noisy[2], z[2])
    assert not torch.equal(noisy[1], z[1])


@pytest.fixture(scope="module")
def tiny(run_dir):
    run = load_run(run_dir)
    return run, PuzzleDataset(run_dir / "data", "test")


def test_one_attempt_is_the_plain_run_under_learned_halting(tiny):
    run, data = tiny
    trace = run_attempts(run, data.inputs, AttemptSettings(1), run.max_segments)
    plain = run_segments(run, data.inputs, run.max_segments, stop_at_halt=True)
    used = plain.halted_at(run.max_segments)
    assert np.array_equal(trace.answers[:, 0], plain.answers_at(used))
    assert np.array_equal(trace.segments[:, 0], used)
    assert set(trace.rule[:, 0].tolist()) == {RULES.index("single")}


def test_the_first_attempt_runs_without_noise(tiny):
    run, data = tiny
    plain = run_attempts(run, data.inputs, AttemptSettings(1), run.max_segments)
    noisy = run_attempts(run, data.inputs, AttemptSettings(4, noise=0.5), run.max_segments)
    assert np.array_equal(plain.answers[:, 0], noisy.answers[:, 0])


def test_attempts_solve_more_and_anytime_saves_work_without_changing_answers(tiny):
    run, data = tiny
    anytime = run_attempts(run, data.inputs, AttemptSettings(8), run.max_segments)
    every = run_attempts(run, data.inputs, AttemptSettings(8, run_all=True), run.max_segments)
    solved = np.stack([graded(data, anytime.answers[:, i])[0]
                       for i in range(len(anytime.points))], 1)
    assert (np.diff(solved.astype(int), axis=1) >= 0).all()  # more attempts never lose one
    assert solved[:, -1].mean() > solved[:, 0].mean()  # and here they win some
    for i in range(len(anytime.points)):  # the same puzzles solved, at most the same work
        assert np.array_equal(solved[:, i], graded(data, every.answers[:, i])[0])
    assert (anytime.attempts <= every.attempts).all() and (every.attempts[:, -1] == 8).all()
    assert anytime.segments[:, -1].sum() < every.segments[:, -1].sum()
    passed_first = solved[:, 0]
    assert (anytime.attempts[passed_first, -1] == 1).all()  # stopped at its first answer


def test_attempts_are_the_same_whatever_the_streams(tiny):
    run, data = tiny
    settings = AttemptSettings(4, noise=0.2, run_all=True)
    one = run_attempts(run, data.inputs, settings, run.max_segments, streams=1)
    again = run_attempts(run, data.inputs, settings, run.max_segments, streams=1)
    assert np.array_equal(one.answers, again.answers)
    symmetric = AttemptSettings(4, run_all=True)  # no noise: each attempt stands alone
    one = run_attempts(run, data.inputs, symmetric, run.max_segments, streams=1)
    two = run_attempts(run, data.inputs, symmetric, run.max_segments, streams=2)
    assert np.array_equal(one.answers, two.answers) and np.array_equal(one.rule, two.rule)


def test_the_choice_never_looks_at_the_solution(tiny):
    run, data = tiny
    wrong = PuzzleDataset(data.path, "test")
    wrong.labels = np.roll(data.labels, 1, axis=0)  # every stored solution replaced
    settings = AttemptSettings(8)
    right = evaluate(run, data, halting_only=True, attempts=settings)["attempts"]
    spoiled = evaluate(run, wrong, halting_only=True, attempts=settings)["attempts"]
    for a, b in zip(right["points"], spoiled["points"], strict=True):
        assert a["solved"] == b["solved"] and a["mean_attempts"] == b["mean_attempts"]
    assert right["chosen_by"] == spoiled["chosen_by"]
    assert right["points"][-1]["exact"]["rate"] > spoiled["points"][-1]["exact"]["rate"]


def test_a_small_batch_keeps_many_attempts_bounded(tiny):
    run, data = tiny
    trace = run_attempts(run, data.inputs[:3], AttemptSettings(64, run_all=True),
                         run.max_segments, batch_size=5)
    assert (trace.attempts[:, -1] == 64).all() and trace.points[-1] == 64
    assert (trace.distinct >= 1).all() and (trace.distinct <= 64).all()
