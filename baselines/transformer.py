"""The fixed-depth transformer baseline: HRM's blocks, embeddings, heads and loss, one stack.

By default it answers in one pass: ``layers`` post-norm blocks over the embedded puzzle, the
output head on top. With ``refine`` it runs the same segment loop as HRM (``hrm/act.py``):
each segment reads its previous output state plus the input, ``state' = blocks(state + x)``,
with a loss after every segment and learned halting. That isolates what HRM's two-timescale
recurrence adds over plain iterative refinement at the same parameter count.

Depth is chosen to match an HRM's parameters: HRM's low- and high-level modules hold
``l_layers + h_layers`` blocks and everything else (embeddings, heads) is shared, so a
transformer with that many layers has exactly as many parameters.

This module deliberately has no recurrence inside a segment and no gradient tricks: every
layer carries gradients, as in any transformer.
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
class TransformerConfig(SegmentModelConfig):
    layers: int = 4
    refine: bool = False  # run HRM's segment loop instead of one pass

    def __post_init__(self) -> None:
        if self.feedback and not self.refine:
            raise ValueError("feedback needs refine: one pass has no next segment to feed")
        super().__post_init__()
        if self.layers < 1:
            raise ValueError("layers must be at least 1")

    def blocks(self) -> tuple[int, int]:
        return self.layers, self.layers


HRM_DEPTH = ("h_layers", "l_layers")  # a baseline's depth, read by matched_layers


def matched_layers(hrm_model: dict) -> int:
    """Transformer depth with the parameter count of the HRM described by ``hrm_model``
    (HRMConfig fields; defaults where missing)."""
    return int(hrm_model.get("h_layers", 2)) + int(hrm_model.get("l_layers", 2))


# settings of the segment loop, which a transformer that answers in one pass does not run
SEGMENT_LOOP_SETTINGS = ("feedback", "feedback_threshold", "carry_state", "init_state_std")


def transformer_drops(settings: dict) -> set[str]:
    """The settings of a run's model section that a transformer ignores: HRM's recurrence
    settings (its layer counts only set the depth while ``layers`` is not given), and the
    segment loop's when it answers in one pass."""
    dropped = set(settings) - setting_names(TransformerConfig)
    if "layers" not in settings:
        dropped -= set(HRM_DEPTH)
    if not settings.get("refine"):
        dropped |= set(settings) & set(SEGMENT_LOOP_SETTINGS)
    return dropped


def transformer_config(settings: dict, vocab_size: int, seq_len: int) -> TransformerConfig:
    """The config a run's model section (``settings``, without ``kind``) describes. Presets hold
    HRM settings, so that one preset describes every model: the transformer takes the shared
    ones (hidden, heads, positions, ...) and, unless ``layers`` is given, as many layers as the
    HRM described has blocks, so that the parameter counts match. HRM's recurrence settings do
    not apply and are dropped, and so are the segment loop's when it answers in one pass."""
    dropped = transformer_drops(settings) | set(HRM_DEPTH)
    kept = {k: v for k, v in settings.items() if k not in dropped}
    kept.setdefault("layers", matched_layers(settings))
    return TransformerConfig(vocab_size=vocab_size, seq_len=seq_len, **kept)


class Transformer(SegmentModel):
    # the state a first segment starts from (HRM's z_H init: same role, same scale setting)
    LATENTS = ("state_init",)

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.blocks = nn.ModuleList(block_for(config) for _ in range(config.layers))
        self.add_heads()

    def forward(
        self, state: State, inputs: torch.Tensor, cycles: tuple[int, int] | None = None,
        noise: StateNoise | None = None,
    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One pass (or one segment with ``refine``): (new state, detached; logits [B, L, V];
        Q-values [B, 2]). ``cycles`` is accepted for the segment interface and ignored.
        ``noise`` is added after every block (test-time attempts), as HRM adds it after every
        module update."""
        x = self.read_puzzle(inputs, state)
        if self.config.refine:
            (previous,) = self.latents(state, x)
            x = previous + x
        for block in self.blocks:
            x = block(x, self.rotary)
            if noise is not None:
                x = noise(x)
        return self.read_answer(x, (x,))
