"""Named run configurations: ``tiny`` for tests, ``cpu-small`` and ``maze-small`` for a laptop,
``cpu-hard`` for every 9×9 tier in two hours of a laptop, ``trm-small`` for the Tiny Recursive
Model on a laptop, ``paper`` for GPUs.

A preset is a nested dict with the sections of ``hrm.config.RunConfig`` (``data``, ``model``,
``act``, ``train``); ``--config FILE`` and ``--set key=value`` override it.
"""

from __future__ import annotations

import copy

PRESETS: dict[str, dict] = {
    # 4×4 Sudoku in about two minutes on a laptop CPU
    "tiny": {
        "data": {"family": "sudoku", "size": 4, "difficulty": "easy", "train": 1000, "test": 200},
        "model": {"hidden": 64, "heads": 4, "h_layers": 2, "l_layers": 2, "h_cycles": 2,
                  "l_cycles": 2, "positions": "learned"},
        "act": {"max_segments": 4},
        "train": {"batch_size": 64, "lr": 1e-3, "weight_decay": 0.1, "warmup_steps": 50,
                  "schedule": "cosine", "max_steps": 1600, "eval_every": 400,
                  "checkpoint_every": 400},
    },
    # 9×9 Sudoku `easy` on two CPU cores (docs/experiments.md has how it was chosen). Cells
    # mix through a SwiGLU across the 81 positions, not attention: it takes off about 1,000
    # steps sooner (3 seeds: 89.7% against attention's 83.7% at 8 segments in 30 minutes). It
    # collapses at attention's lr of 2e-3, so 1e-3. Its inner width at expansion 1 (48) rather
    # than 2 makes steps 1.15× cheaper and learned halting better (3 seeds: 92.2% against 89.0%,
    # in 3-4 segments against 4.5); one seed of three drifted past its answer when made to run
    # all 8 segments (82.1%). 7,800 steps: what two cores do in 30 minutes
    "cpu-small": {
        "data": {"family": "sudoku", "size": 9, "difficulty": "easy", "train": 1000,
                 "test": 1000},
        "model": {"hidden": 128, "heads": 4, "h_layers": 2, "l_layers": 2, "h_cycles": 2,
                  "l_cycles": 2, "positions": "grid", "gradient": "full", "mixer": "mlp",
                  "mixer_expansion": 1.0},
        "act": {"max_segments": 8, "halt_only": True},
        "train": {"batch_size": 64, "lr": 1e-3, "weight_decay": 0.1, "warmup_steps": 100,
                  "schedule": "cosine", "max_steps": 7800, "shallow_steps": 1500,
                  "eval_every": 1000, "eval_limit": 200, "checkpoint_every": 500,
                  "dtype": "bf16", "compile": True, "calibrate_halting": 1000},
    },
    # 15×15 hard mazes on two CPU cores. Unique shortest paths: with several, the label is one
    # of them and the symmetries the loader applies would make the targets contradict.
    # Cycles 1/1, and no state carried between segments, only the cells the last answer was
    # sure of: a carried state made every model that reasons in segments lose what its one-pass
    # phase had learnt. Initial states of zero: the paper's, each as large as the embedded
    # maze, slowed the one-pass phase. The model is small enough for about 9,300 steps in 30
    # minutes: hidden 64 with 2 heads costs 0.4× a step at hidden 128 with 4. Four segments
    # instead of eight pass a maze through in half the steps. Every block also reads each
    # cell's eight neighbours through a 3×3 convolution (grid_conv): a path spreads from cell
    # to neighbouring cell, which attention had to find from positions alone; with it the
    # model solves 58% of 200 test mazes at step 1,500 where it had solved 1%
    # (docs/experiments.md)
    "maze-small": {
        "data": {"family": "maze", "size": 15, "difficulty": "hard", "train": 1000,
                 "test": 1000, "options": {"unique_path": True}},
        "model": {"hidden": 64, "heads": 2, "h_layers": 2, "l_layers": 2, "h_cycles": 1,
                  "l_cycles": 1, "positions": "grid", "gradient": "full", "feedback": True,
                  "carry_state": False, "init_state_std": 0.0, "grid_conv": True},
        "act": {"max_segments": 4, "halt_only": True},
        # 9,300 steps: what two cores do in 30 minutes at sequence 225
        "train": {"batch_size": 64, "lr": 2e-3, "weight_decay": 0.1, "warmup_steps": 100,
                  "schedule": "cosine", "max_steps": 9300, "shallow_steps": 1000,
                  "eval_every": 500, "eval_limit": 200, "checkpoint_every": 500,
                  "dtype": "bf16", "compile": True, "calibrate_halting": 1000},
    },
    # The HRM paper's 27M-parameter Sudoku-Extreme configuration (arXiv 2506.21734); for GPUs.
    "paper": {
        "data": {"family": "sudoku", "size": 9, "difficulty": "extreme", "train": 1000,
                 "test": 1000},
        "model": {"hidden": 512, "heads": 8, "h_layers": 4, "l_layers": 4, "h_cycles": 2,
                  "l_cycles": 2, "positions": "rope", "expansion": 4.0},
        "act": {"max_segments": 16, "explore_prob": 0.1, "loss": "stablemax"},
        "train": {"batch_size": 768, "lr": 1e-4, "weight_decay": 1.0, "warmup_steps": 2000,
                  "betas": [0.9, 0.95], "max_steps": 20000, "eval_every": 2000,
                  "checkpoint_every": 2000, "dtype": "bf16"},
    },
}


def _variant(base: str, **changes: dict) -> dict:
    """The preset ``base`` with some settings of each named section changed."""
    raw = copy.deepcopy(PRESETS[base])
    for section, values in changes.items():
        raw[section].update(values)
    return raw


# One 9×9 model for every tier, `easy` to `extreme`, from 1,000 puzzles weighted to the hard end
# (guessing is what the hard tiers need, and `easy` puzzles never ask for it): the `cpu-small`
# model and recipe trained longer, 10,000 steps, under two hours on two cores in fp32 on a
# machine without bf16 hardware (docs/experiments.md has the runs). The test split and the
# halting calibration are the same mix
PRESETS["cpu-hard"] = _variant(
    "cpu-small",
    data={"difficulty": "easy:1,medium:2,hard:4,extreme:3", "test": 500},
    train={"max_steps": 10000, "calibrate_halting": 500},
)


# The Tiny Recursive Model on 9×9 Sudoku `easy`, beside `cpu-small`: its width, token mixer,
# segments, halting and schedule, with the paper's one network of 2 blocks and weight averaging
# (EMA 0.999), but 3 latent updates and 2 recursions a segment instead of the paper's 6 and 3.
# At 15 minutes on `medium` that took off far sooner (76.9% against 13.4%: 8 network passes a
# segment instead of 21, so 1.9× the steps); at 30 minutes on `easy` it tied the paper's
# depth and HRM (99.2%, 99.1%, 99.1%) at 0.38× the paper depth's inference FLOPs
# (BENCHMARKS.md). 8,960 steps: what it did in the 30 minutes in which `cpu-small` did 7,800
PRESETS["trm-small"] = {
    "data": copy.deepcopy(PRESETS["cpu-small"]["data"]),
    "model": {"kind": "trm", "hidden": 128, "heads": 4, "latent_steps": 3,
              "recursions": 2, "positions": "grid", "mixer": "mlp", "mixer_expansion": 1.0},
    "act": {"max_segments": 8, "halt_only": True},
    "train": {**PRESETS["cpu-small"]["train"], "max_steps": 8960, "ema": 0.999},
}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
