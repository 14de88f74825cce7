"""Briefly trained 4×4 runs shared by the evaluation tests."""

import pytest

from hrm.presets import preset
from hrm.train import RunConfig, train


def train_tiny(folder, **train_settings):
    """A briefly trained 4×4 HRM run: it copies givens and fills some blanks."""
    raw = preset("tiny")
    raw["data"].update(train=300, test=64)
    settings = dict(max_steps=300, eval_every=300, checkpoint_every=300, threads=1)
    raw["train"].update({**settings, **train_settings})
    train(RunConfig.from_dict(raw), folder, progress=False)
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("eval-run"))


@pytest.fixture
def tiny_trainer():
    return train_tiny
