"""Briefly trained 4×4 runs shared by the evaluation tests."""

import pytest

from eval.halting import train_and_calibrate
from hrm.config import RunConfig
from hrm.presets import preset


def train_tiny(folder, **train_settings):
    """A briefly trained 4×4 HRM run: it copies givens and fills some blanks."""
    raw = preset("tiny")
    raw["data"].update(train=300, test=64)
    settings = dict(max_steps=800, eval_every=800, checkpoint_every=800, threads=1)
    raw["train"].update({**settings, **train_settings})
    train_and_calibrate(RunConfig.from_dict(raw), folder, progress=False)
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("eval-run"))


@pytest.fixture(scope="session")
def solved_puzzle(run_dir) -> str:
    """A test puzzle the run solves, in the one-line format."""
    from eval import load_run, solve_puzzles
    from puzzles.dataset import PuzzleDataset

    run = load_run(run_dir)
    test = PuzzleDataset(run_dir / "data", "test")
    puzzles = [run.family.decode(row) for row in test.inputs]
    solved = [p for p, a in zip(puzzles, solve_puzzles(run, puzzles), strict=True)
              if a.grade and a.grade.solved]
    assert solved, "the tiny run solves none of its test puzzles: it did not learn"
    return run.family.format(solved[0], style="line").strip()


@pytest.fixture
def tiny_trainer():
    return train_tiny
