"""Running a maze model at a grid size it was not trained on (``eval.runs.at_size``): the same
weights at another size when nothing in the model is tied to its size, a one-line refusal
naming the reason otherwise."""

import numpy as np
import pytest
import torch

from eval import load_run
from eval.halting import train_and_calibrate
from eval.runs import RunError, at_size
from hrm.config import RunConfig
from hrm.presets import preset
from puzzles import make_family


def train_small_maze(folder, positions: str):
    """A 7×7 maze run of a few hundred steps: enough to have trained weights, not to solve."""
    raw = preset("maze-small")
    raw["data"].update(size=7, difficulty="easy", train=200, test=32)
    raw["model"].update(hidden=32, positions=positions, mixer="none")
    raw["train"].update(max_steps=60, eval_every=60, checkpoint_every=60, threads=1,
                        compile=False, dtype="fp32", shallow_steps=0, calibrate_halting=0,
                        warmup_steps=10)
    train_and_calibrate(RunConfig.from_dict(raw), folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def agnostic_run(tmp_path_factory):
    return train_small_maze(tmp_path_factory.mktemp("maze-none"), "none")


def test_a_model_without_positions_runs_at_another_size_with_the_same_weights(agnostic_run):
    run = load_run(agnostic_run)
    bigger = at_size(run, 11)
    assert bigger.family.size == 11 and bigger.model.config.seq_len == 121
    assert bigger.data["size"] == 11 and bigger.data_path is None
    for name, weight in run.model.state_dict().items():
        assert torch.equal(weight, bigger.model.state_dict()[name]), name
    assert at_size(run, 7) is run

    # the grid convolution reads neighbours only: a cell's first-block output at 11×11 depends
    # on its 3×3 neighbourhood, so an 11×11 maze and a 7×7 one that agree around a cell agree
    # there (cells away from either edge)
    family = make_family("maze", 11)
    rng = np.random.default_rng(0)
    grid = family.generate(rng, "easy")[0]
    small = grid[:7, :7].copy()
    block = run.model.low.blocks[0]
    embed_big = bigger.model.embed(torch.as_tensor(grid.reshape(1, -1), dtype=torch.long))
    embed_small = run.model.embed(torch.as_tensor(small.reshape(1, -1), dtype=torch.long))
    conv_big = block.grid_conv(embed_big).view(11, 11, -1)
    conv_small = block.grid_conv(embed_small).view(7, 7, -1)
    torch.testing.assert_close(conv_big[1:6, 1:6], conv_small[1:6, 1:6])


def test_eval_and_solve_run_it_at_the_size_asked(agnostic_run, tmp_path, hrm_cli):
    code, out, err = hrm_cli("eval", agnostic_run, "--size", "9", "--count",
                             "8", "--seed", "3", "--difficulty", "easy", "--halting")
    assert code == 0, err
    assert "9×9 maze" in out

    family = make_family("maze", 9)
    puzzle = family.generate(np.random.default_rng(1), "easy")[0]
    file = tmp_path / "maze.txt"
    file.write_text(family.format(puzzle))
    code, out, err = hrm_cli("solve", agnostic_run, file)
    assert code in (0, 1), err  # solved or not, but answered
    assert "#1" in out


def test_a_model_with_grid_positions_is_refused_in_one_line(tmp_path, hrm_cli):
    folder = train_small_maze(tmp_path / "grid", "grid")
    with pytest.raises(RunError, match="grid positions fit its training size"):
        at_size(load_run(folder), 9)
    code, _, err = hrm_cli("eval", folder, "--size", "9", "--count", "4")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "solves 7×7 maze, not 9×9: its grid positions" in err

    family = make_family("maze", 9)
    file = tmp_path / "maze.txt"
    file.write_text(family.format(family.generate(np.random.default_rng(1), "easy")[0]))
    code, _, err = hrm_cli("solve", folder, file)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "holds a 9×9 maze, and" in err and "grid positions" in err


def test_positions_none_needs_something_that_tells_cells_apart():
    raw = preset("maze-small")
    raw["model"].update(positions="none", grid_conv=False)
    with pytest.raises(ValueError, match="positions=none with attention alone"):
        RunConfig.from_dict(raw)
