"""The Hierarchical Reasoning Model: two recurrent modules on two timescales.

State ``z_H, z_L [B, L, D]``. In one *segment* the low-level module updates ``z_L`` from
``z_L + z_H + x`` ``h_cycles × l_cycles`` times, and after every ``l_cycles`` of those the
high-level module updates ``z_H`` from ``z_H + z_L``. The answer is read from ``z_H`` by the
output head and the halting Q-values (halt, continue) by the Q head.

Gradients (``gradient``):
  ``one_step``   only the last low-level and high-level update carry gradients (the paper's
                 one-step approximation: O(1) memory in the number of steps);
  ``unrolled``   the last ``unrolled_steps`` low-level updates, and the high-level updates
                 among them, carry gradients (truncated backprop through time);
  ``full``       every update of the segment carries gradients (backprop through time).

With ``feedback`` (not in the paper) each segment also reads the cells the previous segment's
answer was sure of, filled into the puzzle (``layers.AnswerFeedback``). With ``carry_state``
off as well, every segment starts from the initial states and the filled board is all that
passes on: each segment is then the same computation as the first, on a fuller puzzle, so a
model trained on one segment meets nothing new in the next ones (docs/experiments.md).

``forward`` can run fewer cycles than the config says (``cycles``): the trainer uses that for a
shallow warm-up phase, since a model trained from scratch at full depth can stay stuck copying
its input (docs/experiments.md).

This module deliberately does not loop over segments or decide halting: ``act.py`` does that
for every model that reasons in segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hrm.layers import RotaryEmbedding, StateNoise
from hrm.segment_model import (
    SegmentModel,
    SegmentModelConfig,
    State,
    block_for,
    setting_names,
)

GRADIENTS = ("one_step", "unrolled", "full")


@dataclass
class HRMConfig(SegmentModelConfig):
    h_layers: int = 2
    l_layers: int = 2
    h_cycles: int = 2
    l_cycles: int = 2
    gradient: str = "one_step"
    unrolled_steps: int = 2  # low-level updates with gradients when gradient == "unrolled"
    # one network for both modules (TRM's choice): the high-level update runs the low-level
    # module's blocks; an ablation for the comparison with TRM
    shared_network: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gradient not in GRADIENTS:
            choices = ", ".join(GRADIENTS)
            raise ValueError(f"gradient must be one of {choices}, not {self.gradient!r}")
        for name in ("h_layers", "l_layers", "h_cycles", "l_cycles", "unrolled_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.shared_network and self.h_layers != self.l_layers:
            raise ValueError("shared_network needs h_layers == l_layers: both updates run the "
                             "same blocks")

    def blocks(self) -> tuple[int, int]:
        low, high = self.l_layers, self.h_layers
        steps = self.h_cycles * self.l_cycles
        total = steps * low + self.h_cycles * high
        window = {  # low-level updates inside the gradient window
            "one_step": 1,
            "unrolled": min(steps, self.unrolled_steps),
            "full": steps,
        }[self.gradient]
        high_updates = -(-window // self.l_cycles)  # one after every l_cycles low-level updates
        return total, window * low + high_updates * high


def hrm_config(settings: dict, vocab_size: int, seq_len: int) -> HRMConfig:
    """The config a run's model section (``settings``, without ``kind``) describes."""
    extra = set(settings) - setting_names(HRMConfig)
    if extra:
        raise ValueError(f"model.{sorted(extra)[0]} is not an HRM setting")
    return HRMConfig(vocab_size=vocab_size, seq_len=seq_len, **settings)


class RecurrentModule(nn.Module):
    """A stack of blocks applied to ``state + injection``."""

    def __init__(self, config: HRMConfig, layers: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(block_for(config) for _ in range(layers))

    def forward(self, state: torch.Tensor, injection: torch.Tensor,
                rotary: RotaryEmbedding | None) -> torch.Tensor:
        x = state + injection
        for block in self.blocks:
            x = block(x, rotary)
        return x


class HRM(SegmentModel):
    LATENTS = ("z_high_init", "z_low_init")  # the paper's fixed initial z_H and z_L

    def __init__(self, config: HRMConfig) -> None:
        super().__init__(config)
        self.low = RecurrentModule(config, config.l_layers)
        self.high = None if config.shared_network else RecurrentModule(config, config.h_layers)
        self.add_heads()

    def forward(
        self, state: State, inputs: torch.Tensor, cycles: tuple[int, int] | None = None,
        noise: StateNoise | None = None,
    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One segment: (new state, detached; logits [B, L, V]; Q-values [B, 2]).

        ``cycles`` (h_cycles, l_cycles) overrides the config's for this call. ``noise`` is
        added to ``z_L`` and ``z_H`` after each of their updates (test-time attempts). A
        segment is the model's forward pass, so DistributedDataParallel can wrap it."""
        cfg = self.config
        h_cycles, l_cycles = cycles or (cfg.h_cycles, cfg.l_cycles)
        x = self.read_puzzle(inputs, state)
        z_high, z_low = self.latents(state, x)
        high = self.high or self.low
        total = h_cycles * l_cycles
        first_grad = {
            "one_step": total - 1,
            "unrolled": max(0, total - cfg.unrolled_steps),
            "full": 0,
        }[cfg.gradient]
        for step in range(total):
            with torch.set_grad_enabled(torch.is_grad_enabled() and step >= first_grad):
                z_low = self.low(z_low, z_high + x, self.rotary)
                if noise is not None:
                    z_low = noise(z_low)
                if (step + 1) % l_cycles == 0:
                    z_high = high(z_high, z_low, self.rotary)
                    if noise is not None:
                        z_high = noise(z_high)
        return self.read_answer(z_high, (z_high, z_low))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
