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

from hrm.layers import (
    POSITIONS,
    Block,
    Linear,
    StateNoise,
    TokenEmbedding,
    check_feedback_threshold,
    check_grid_conv,
    check_init_state_std,
    check_mixer,
    check_state_carry,
    feedback_for,
    grid_bias_for,
    halting_head,
    initial_state_vector,
    rotary_for,
)
from hrm.model import State, empty_board, reset_board


@dataclass
class TransformerConfig:
    vocab_size: int
    seq_len: int
    hidden: int = 128
    heads: int = 4
    expansion: float = 4.0
    layers: int = 4
    positions: str = "learned"  # "learned", "grid" (row + column), "sudoku" (+ box), "rope"
    relative_bias: bool = False  # a learned attention bias per grid offset (layers.GridBias)
    qk_norm: bool = False  # normalised queries and keys (layers.Attention)
    mixer: str = "attention"  # or "mlp": positions mixed by layers.TokenMixer
    mixer_expansion: float = 4.0  # the token mixer's inner width: this × seq_len × 2/3
    grid_conv: bool = False  # a 3×3 depthwise convolution over the grid in every block
    refine: bool = False  # run HRM's segment loop instead of one pass
    feedback: bool = False  # with refine: read confident answers back in (layers.AnswerFeedback)
    feedback_threshold: float = 0.9
    carry_state: bool = True  # with refine: false passes on only the feedback board, not the state
    init_state_std: float = 1.0  # with refine: scale of the fixed first state (0: zeros)
    halt_bias_init: float = -5.0

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            choices = ", ".join(POSITIONS)
            raise ValueError(f"positions must be one of {choices}, not {self.positions!r}")
        for name in ("hidden", "heads", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.feedback and not self.refine:
            raise ValueError("feedback needs refine: one pass has no next segment to feed")
        check_mixer(self.mixer, self.positions, self.qk_norm, self.relative_bias,
                    self.mixer_expansion)
        check_feedback_threshold(self.feedback_threshold)
        check_grid_conv(self.grid_conv, self.seq_len)
        if self.refine:
            check_state_carry(self.carry_state, self.feedback)
        check_init_state_std(self.init_state_std)


def matched_layers(hrm_model: dict) -> int:
    """Transformer depth with the parameter count of the HRM described by ``hrm_model``
    (HRMConfig fields; defaults where missing)."""
    return int(hrm_model.get("h_layers", 2)) + int(hrm_model.get("l_layers", 2))


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = TokenEmbedding(
            config.vocab_size, config.hidden, config.seq_len, config.positions,
            uncompiled=config.mixer == "mlp",
        )
        self.rotary = rotary_for(config.positions, config.hidden, config.heads, config.seq_len)
        self.grid_bias = grid_bias_for(config.relative_bias, config.heads, config.seq_len)
        self.feedback = feedback_for(config.feedback, config.hidden, config.feedback_threshold)
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.expansion, qk_norm=config.qk_norm,
                  mixer=config.mixer, seq_len=config.seq_len,
                  mixer_expansion=config.mixer_expansion, grid_conv=config.grid_conv)
            for _ in range(config.layers)
        )
        self.output_head = Linear(config.hidden, config.vocab_size)
        self.q_head = halting_head(config.hidden, config.halt_bias_init)
        # the state a first segment starts from (HRM's z_H init: same role, same scale setting)
        self.register_buffer("state_init", initial_state_vector(config.hidden,
                                                                config.init_state_std))

    # The segment interface of hrm/act.py. The state is HRM's State with one tensor used, so
    # the trainer's carry and checkpoints work unchanged.
    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        shape = (batch, self.config.seq_len, self.config.hidden)
        device = device or self.state_init.device
        z = self.state_init.to(device).expand(shape).clone()
        return State(z, torch.zeros_like(z),
                     empty_board(self.feedback, batch, self.config.seq_len, device))

    def reset(self, state: State, mask: torch.Tensor) -> State:
        m = mask.view(-1, 1, 1)
        z = torch.where(m, self.state_init.to(state.z_high.dtype), state.z_high)
        return State(z, state.z_low, reset_board(state.board, mask))

    def forward(
        self, state: State, inputs: torch.Tensor, cycles: tuple[int, int] | None = None,
        noise: StateNoise | None = None,
    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One pass (or one segment with ``refine``): (new state, detached; logits [B, L, V];
        Q-values [B, 2]). ``cycles`` is accepted for the segment interface and ignored.
        ``noise`` is added after every block (test-time attempts), as HRM adds it after every
        module update."""
        if self.feedback is not None:
            x = self.feedback(self.embed, inputs, state.board)
        else:
            x = self.embed(inputs)
        if self.config.refine:
            x = (state.z_high if self.config.carry_state else self.state_init.to(x.dtype)) + x
        bias = self.grid_bias() if self.grid_bias is not None else None  # [H, L, L]
        for block in self.blocks:
            x = block(x, self.rotary, bias=bias)
            if noise is not None:
                x = noise(x)
        logits = self.output_head(x)
        q_values = self.q_head(x.mean(dim=1)).float()
        board = self.feedback.board(logits) if self.feedback is not None else None
        return State(x, state.z_low, board).detach(), logits, q_values
