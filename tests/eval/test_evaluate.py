import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file

from eval.evaluate import evaluate, segment_caps, wilson_interval
from eval.report import evaluation_text
from eval.runs import RunError, load_run, run_segments
from hrm.config import RunConfig
from hrm.inference import PuzzleQueue, SegmentTrace, graded
from hrm.kinds import KINDS
from hrm.presets import preset
from hrm.train import evaluate as training_evaluate
from hrm.train import train
from puzzles import make_family
from puzzles.dataset import PuzzleDataset


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_interval_holds_the_rate_and_mirrors(successes, total):
    successes = min(successes, total)
    low, high = wilson_interval(successes, total)
    assert 0 <= low <= successes / total <= high <= 1
    mirror_low, mirror_high = wilson_interval(total - successes, total)
    assert low == pytest.approx(1 - mirror_high) and high == pytest.approx(1 - mirror_low)


def test_wilson_interval_known_values():
    # 0 of 10: the upper end is z² / (n + z²)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 1.96**2 / (10 + 1.96**2)))
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


@given(st.integers(1, 64))
def test_segment_caps_double_up_to_four_times_training(trained):
    caps = segment_caps(trained)
    assert caps[0] == 1 and caps[-1] == 4 * trained and trained in caps
    assert caps == sorted(set(caps))


def test_halted_at_takes_the_first_halt_within_the_cap():
    halts = np.array([[False, True, True], [False, False, False], [True, False, False]])
    trace = SegmentTrace(np.zeros((3, 3, 4), np.uint8), halts, np.zeros((3, 3), np.float32))
    assert trace.halted_at(3).tolist() == [2, 3, 1]
    assert trace.halted_at(1).tolist() == [1, 1, 1]


confidences = st.lists(st.lists(st.floats(0, 1, width=32), min_size=4, max_size=4),
                       min_size=1, max_size=8)


@given(confidences, st.floats(0.01, 0.99), st.floats(0.01, 0.99), st.integers(1, 4))
def test_a_higher_threshold_never_stops_earlier(rows, a, b, cap):
    confidence = np.array(rows, dtype=np.float32)
    trace = SegmentTrace(np.zeros((*confidence.shape, 4), np.uint8), confidence > 0.5,
                         confidence)
    low, high = sorted((a, b))
    assert (trace.halted_at(cap, high) >= trace.halted_at(cap, low)).all()
    assert (trace.halted_at(cap, low) <= cap).all()
    # compared in float32, as the confidences are stored
    first = [next((i + 1 for i, c in enumerate(confidence[r, :cap]) if c > np.float32(low)), cap)
             for r in range(len(rows))]
    assert trace.halted_at(cap, low).tolist() == first


def test_another_shortest_path_is_solved_but_not_exact(tmp_path):
    maze = make_family("maze", 5)
    puzzle = maze.parse("S....\n.###.\n.###.\n.###.\n....G")
    one = puzzle.copy()
    other = puzzle.copy()
    for r, c in [(1, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2), (4, 3)]:
        one[r, c] = 5
    for r, c in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 4), (2, 4), (3, 4)]:
        other[r, c] = 5
    assert maze.grade(puzzle, one).solved and maze.grade(puzzle, other).solved

    class Split:  # the three arrays graded reads
        family = maze
        inputs = np.stack([maze.encode(puzzle)] * 2)
        labels = np.stack([maze.encode(one)] * 2)

    broken = other.copy()
    broken[3, 4] = 2  # a gap in the path
    predictions = np.stack([maze.encode(other), maze.encode(broken)])
    solved, exact = graded(Split, predictions)
    assert solved.tolist() == [True, False] and exact.tolist() == [False, False]


def test_evaluation_agrees_with_itself_and_with_the_trainer(run_dir):
    run = load_run(run_dir, dtype="fp32")  # the trainer evaluates with fp32 weights too
    dataset = PuzzleDataset(run_dir / "data", "test")
    result = evaluate(run, dataset, batch_size=16)
    assert result["puzzles"] == 64 and result["segments"] == 4 and result["model"] == "hrm"
    # the headline is the scaling curve's point at the training segments
    point = next(p for p in result["scaling"] if p["segments"] == 4)
    assert point["fixed"] == pytest.approx(result["solved"]["rate"])
    assert point["halting"] == pytest.approx(result["halting"]["solved"]["rate"])
    assert [p["segments"] for p in result["scaling"]] == [1, 2, 4, 8, 16]
    assert sum(result["halting"]["histogram"].values()) == 64
    # the threshold rows: 0.5 at the training segments is the run's own learned halting
    paper = next(p for p in result["thresholds"] if p["threshold"] == 0.5 and p["segments"] == 4)
    assert paper["halting"] == pytest.approx(result["halting"]["solved"]["rate"])
    assert paper["mean_segments"] == pytest.approx(result["halting"]["mean_segments"])
    assert {p["segments"] for p in result["thresholds"]} == {4, 16}
    assert "learned halting by threshold" in evaluation_text(result)
    # cell accuracy is the copy and fill accuracies weighted by their cells
    copy = dataset.inputs == dataset.labels
    weighted = (result["copy_accuracy"] * copy.sum() + result["fill_accuracy"] * (~copy).sum())
    assert weighted / copy.size == pytest.approx(result["cell_accuracy"])
    assert sum(t["total"] for t in result["by_tier"].values()) == 64
    # the trainer's own evaluation of the same weights and segments
    trainer = training_evaluate(run.model, KINDS["hrm"], dataset, 4)
    assert trainer["test_solved"] == pytest.approx(result["solved"]["rate"])
    assert trainer["test_exact"] == pytest.approx(result["exact"]["rate"])
    assert trainer["test_cell_accuracy"] == pytest.approx(result["cell_accuracy"])
    assert result["solved"]["low"] <= result["solved"]["rate"] <= result["solved"]["high"]
    json.dumps(result)  # JSON-ready


def test_limit_and_a_family_mismatch(run_dir, tmp_path):
    run = load_run(run_dir)
    dataset = PuzzleDataset(run_dir / "data", "test")
    assert evaluate(run, dataset, caps=[1, 4], limit=10)["puzzles"] == 10
    from puzzles.dataset import BuildSpec, build_dataset
    other = build_dataset(BuildSpec("sudoku", 9, "easy", 0, 4), tmp_path / "nine")
    with pytest.raises(ValueError, match="the data is 9×9 sudoku but the run solves 4×4 sudoku"):
        evaluate(run, PuzzleDataset(other, "test"))


def test_load_run_uses_the_averaged_weights(tmp_path, tiny_trainer):
    run_dir = tiny_trainer(tmp_path / "ema", ema=0.9, max_steps=20)
    trainer = load_file(run_dir / "checkpoint" / "trainer_state.safetensors")
    run = load_run(run_dir)
    for name, value in run.model.named_parameters():
        torch.testing.assert_close(value.detach(), trainer[f"ema/{name}"])


def test_load_run_errors_name_the_problem(tmp_path, run_dir):
    with pytest.raises(RunError, match="is not a training run"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RunError, match="has no checkpoint yet"):
        load_run(tmp_path)


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    raw = preset("tiny")
    raw["data"] = {"family": "maze", "size": 7, "difficulty": "easy", "train": 128, "test": 32}
    raw["model"].update(hidden=32, h_layers=1, l_layers=1)
    raw["train"].update(max_steps=30, eval_every=30, checkpoint_every=30, threads=1)
    folder = tmp_path_factory.mktemp("maze-run")
    train(RunConfig.from_dict(raw), folder, progress=False)
    return folder


def test_a_maze_run_is_graded_as_paths(maze_run):
    run = load_run(maze_run)
    result = evaluate(run, PuzzleDataset(maze_run / "data", "test"), caps=[1, 4])
    assert result["family"] == "maze" and result["puzzles"] == 32
    assert result["solved"]["count"] >= result["exact"]["count"]  # any shortest path counts
    # walls, start and goal are copied; path cells are filled
    dataset = PuzzleDataset(maze_run / "data", "test")
    assert (dataset.inputs != dataset.labels).sum() > 0 and result["fill_accuracy"] is not None
    assert "valid shortest path" in evaluation_text(result)


def test_solve_reports_a_maze_without_a_path(maze_run, capsys):
    from hrm.cli import main

    blocked = "S.#....\n..#....\n###....\n.......\n.......\n.......\n......G"
    with pytest.raises(SystemExit) as done:
        main(["solve", str(maze_run), blocked])
    assert done.value.code == 2
    assert capsys.readouterr().out.startswith("#1 (line 1): no path from start to goal")


def test_stopping_at_halt_gives_the_halting_answers_of_a_full_run(run_dir):
    run = load_run(run_dir, dtype="fp32")
    inputs = PuzzleDataset(run_dir / "data", "test").inputs
    full = run_segments(run, inputs, 6)
    early = run_segments(run, inputs, 6, batch_size=5, stop_at_halt=True)  # batches get refilled
    used = full.halted_at(6)
    assert 1 < used.mean() < 6  # some halt early, some do not: both paths are exercised
    assert (early.halted_at(6) == used).all()
    rows = np.arange(len(inputs))
    assert (early.predictions[rows, used - 1] == full.predictions[rows, used - 1]).all()
    # after a puzzle stops its trace repeats its last answer and confidence
    assert (early.predictions[:, -1] == early.predictions[rows, used - 1]).all()
    assert (early.confidence[:, -1] == early.confidence[rows, used - 1]).all()
    assert np.allclose(early.confidence[rows, used - 1], full.confidence[rows, used - 1])


def test_a_feedback_run_evaluates_the_same_with_refilled_batches(tmp_path):
    raw = preset("tiny")
    raw["data"].update(train=128, test=32)
    raw["model"].update(hidden=32, h_layers=1, l_layers=1, feedback=True, feedback_threshold=0.2)
    raw["train"].update(max_steps=30, eval_every=30, checkpoint_every=30, threads=1)
    train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run", dtype="fp32")
    inputs = PuzzleDataset(tmp_path / "run" / "data", "test").inputs
    whole = run_segments(run, inputs, 4, batch_size=32, streams=1)
    refilled = run_segments(run, inputs, 4, batch_size=5, stop_at_halt=True, streams=1)
    rows = np.arange(len(inputs))
    used = whole.halted_at(4)
    assert (refilled.predictions[rows, used - 1] == whole.predictions[rows, used - 1]).all()
    assert (whole.predictions[:, 1] != whole.predictions[:, 0]).any()  # later segments differ


@pytest.mark.parametrize("stop_at_halt", [False, True])
def test_streams_on_several_threads_give_the_same_trace(run_dir, stop_at_halt):
    run = load_run(run_dir, dtype="fp32")
    inputs = PuzzleDataset(run_dir / "data", "test").inputs
    one = run_segments(run, inputs, 4, batch_size=8, stop_at_halt=stop_at_halt, streams=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = run_segments(run, inputs, 4, batch_size=8, stop_at_halt=stop_at_halt)
        assert torch.get_num_threads() == 2  # restored after the streams ran on one each
    finally:
        torch.set_num_threads(threads)
    assert (one.predictions == two.predictions).all() and (one.halts == two.halts).all()
    assert np.allclose(one.confidence, two.confidence)


@given(st.integers(0, 300), st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_streams_take_every_puzzle_from_the_queue_once(count, wants):
    queue = PuzzleQueue(count)
    taken = [[] for _ in wants]

    def take_all(stream: int) -> None:
        while len(part := queue.take(wants[stream])):
            assert len(part) <= wants[stream]
            taken[stream].extend(part.tolist())

    with ThreadPoolExecutor(len(wants)) as pool:
        list(pool.map(take_all, range(len(wants))))
    assert sorted(sum(taken, [])) == list(range(count))


def test_halting_only_evaluation_matches_the_halting_part_of_a_full_one(run_dir):
    run = load_run(run_dir, dtype="fp32")
    dataset = PuzzleDataset(run_dir / "data", "test")
    full = evaluate(run, dataset, caps=[4])
    fast = evaluate(run, dataset, halting_only=True)
    assert fast["mode"] == "halting" and fast["scaling"] == []
    assert fast["solved"] == full["halting"]["solved"]
    assert fast["halting"]["histogram"] == full["halting"]["histogram"]
    assert fast["inference_flops"] < full["inference_flops"]
    assert "learned halting at threshold 0.5, at most 4" in evaluation_text(fast)


def test_load_run_in_bf16_and_a_bad_dtype(run_dir):
    assert next(load_run(run_dir, dtype="bf16").model.parameters()).dtype == torch.bfloat16
    assert next(load_run(run_dir, dtype="fp32").model.parameters()).dtype == torch.float32
    with pytest.raises(RunError, match="dtype must be fp32 or bf16, not 'fp16'"):
        load_run(run_dir, dtype="fp16")
