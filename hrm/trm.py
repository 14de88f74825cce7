"""The Tiny Recursive Model (Jolicoeur-Martineau, "Less is More: Recursive Reasoning with Tiny
Networks", 2025, arXiv 2510.04871): one small network for both of HRM's updates.

State: the embedded answer ``y`` and a latent ``z`` [B, L, D]. One *recursion* updates ``z``
``latent_steps`` (n) times from ``x + y + z``, then ``y`` once from ``y + z``: the puzzle ``x``
is left out of the answer update, which is how the one network tells the two apart. A segment
runs ``recursions`` (T) recursions; all but the last run without gradients, and the last is
backpropagated through all its updates. Across segments the trainer's deep supervision and
halting apply as for HRM (``act.py``); TRM learns halting as "is the current answer right",
which is ``act.halt_only``.

Against HRM: one network instead of two modules, no one-step gradient approximation (the last
recursion is differentiated in full), and the answer ``y`` is a state of its own, read by the
output head, rather than the high-level state.

This module deliberately does not loop over segments or decide halting (``act.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hrm.layers import StateNoise
from hrm.segment_model import (
    SegmentModel,
    SegmentModelConfig,
    State,
    block_for,
    setting_names,
)


@dataclass
class TRMConfig(SegmentModelConfig):
    layers: int = 2  # blocks of the one network
    latent_steps: int = 6  # n: updates of z per recursion
    recursions: int = 3  # T: recursions per segment, all but the last without gradients
    # ablations for the comparison with HRM: a second network for the answer update (HRM's
    # split into two modules), and HRM's one-step gradient (in the last recursion only the last
    # latent update and the answer update carry gradients) instead of the whole recursion. Not
    # called `gradient`: that is HRM's setting, which presets written for HRM carry and a TRM
    # drops (HRM_ONLY)
    networks: int = 1
    one_step_gradient: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("layers", "latent_steps", "recursions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.networks not in (1, 2):
            raise ValueError(f"networks must be 1 or 2, not {self.networks}")

    def blocks(self) -> tuple[int, int]:
        per_recursion = (self.latent_steps + 1) * self.layers
        differentiated = 2 * self.layers if self.one_step_gradient else per_recursion
        return self.recursions * per_recursion, differentiated


# HRM's settings that have no meaning for TRM: its split into two modules and their schedule
HRM_ONLY = ("h_layers", "l_layers", "h_cycles", "l_cycles", "gradient", "unrolled_steps")


def trm_drops(settings: dict) -> set[str]:
    """The settings of a run's model section that a TRM ignores: HRM's split and schedule."""
    return set(settings) & set(HRM_ONLY)


def trm_config(settings: dict, vocab_size: int, seq_len: int) -> TRMConfig:
    """The config a run's model section (``settings``, without ``kind``) describes. A preset
    written for HRM describes a TRM of the same width and mixer: HRM's module split and
    schedule (``HRM_ONLY``) are dropped, and the network keeps TRM's own depth unless
    ``layers`` is given."""
    kept = {k: v for k, v in settings.items() if k not in trm_drops(settings)}
    extra = set(kept) - setting_names(TRMConfig)
    if extra:
        raise ValueError(f"model.{sorted(extra)[0]} is not a TRM setting")
    return TRMConfig(vocab_size=vocab_size, seq_len=seq_len, **kept)


class TRM(SegmentModel):
    LATENTS = ("y_init", "z_init")  # fixed initial answer and latent

    def __init__(self, config: TRMConfig) -> None:
        super().__init__(config)
        self.net = nn.ModuleList(block_for(config) for _ in range(config.layers))
        self.answer_net = None  # the answer update's own blocks, with networks=2
        if config.networks == 2:
            self.answer_net = nn.ModuleList(block_for(config) for _ in range(config.layers))
        self.add_heads()

    def network(self, h: torch.Tensor, noise: StateNoise | None,
                blocks: nn.ModuleList | None = None) -> torch.Tensor:
        for block in blocks if blocks is not None else self.net:
            h = block(h, self.rotary)
        return h if noise is None else noise(h)

    def recursion(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, latent_steps: int,
                  noise: StateNoise | None, one_step: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``one_step``: all latent updates but the last run without gradients."""
        for step in range(latent_steps):
            with torch.set_grad_enabled(torch.is_grad_enabled()
                                        and not (one_step and step < latent_steps - 1)):
                z = self.network(x + y + z, noise)
        return self.network(y + z, noise, self.answer_net), z

    def forward(
        self, state: State, inputs: torch.Tensor, cycles: tuple[int, int] | None = None,
        noise: StateNoise | None = None,
    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One segment: (new state, detached; logits [B, L, V]; Q-values [B, 2]).

        ``cycles`` (recursions, latent_steps) overrides the config's for this call (training's
        shallow phase). ``noise`` is added after every update (test-time attempts)."""
        recursions, latent_steps = cycles or (self.config.recursions, self.config.latent_steps)
        x = self.read_puzzle(inputs, state)
        y, z = self.latents(state, x)
        with torch.no_grad():
            for _ in range(recursions - 1):
                y, z = self.recursion(x, y, z, latent_steps, noise)
        y, z = self.recursion(x, y, z, latent_steps, noise, self.config.one_step_gradient)
        return self.read_answer(y, (y, z))
