"""The Hierarchical Reasoning Model: two recurrent modules on two timescales.

State ``z_H, z_L [B, L, D]``. In one *segment* the low-level module updates ``z_L`` from
``z_L + z_H + x`` ``h_cycles × l_cycles`` times, and after every ``l_cycles`` of those the
high-level module updates ``z_H`` from ``z_H + z_L``. The answer is read from ``z_H`` by the
output head and the halting Q-values (halt, continue) by the Q head.

Gradients (``gradient``):
  ``one_step``   only the last low-level and high-level update carry gradients (the paper's
                 one-step approximation: O(1) memory in the number of steps);
  ``last_cycle`` the whole last high-level cycle (its l_cycles low-level updates and the
                 high-level update) carries gradients;
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

from hrm.layers import (
    POSITIONS,
    AnswerFeedback,
    Block,
    Linear,
    RotaryEmbedding,
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

GRADIENTS = ("one_step", "last_cycle", "unrolled", "full")


@dataclass
class HRMConfig:
    vocab_size: int
    seq_len: int
    hidden: int = 128
    heads: int = 4
    expansion: float = 4.0
    h_layers: int = 2
    l_layers: int = 2
    h_cycles: int = 2
    l_cycles: int = 2
    positions: str = "learned"  # "learned", "grid" (row + column), "sudoku" (+ box), "rope"
    relative_bias: bool = False  # a learned attention bias per grid offset (layers.GridBias)
    qk_norm: bool = False  # normalised queries and keys (layers.Attention)
    mixer: str = "attention"  # or "mlp": positions mixed by layers.TokenMixer
    mixer_expansion: float = 4.0  # the token mixer's inner width: this × seq_len × 2/3
    grid_conv: bool = False  # a 3×3 depthwise convolution over the grid in every block
    feedback: bool = False  # read confident answers back in (layers.AnswerFeedback)
    feedback_threshold: float = 0.9
    carry_state: bool = True  # false: segments pass on only the feedback board, not z_H, z_L
    init_state_std: float = 1.0  # scale of the fixed initial z_H, z_L (0: zeros)
    gradient: str = "one_step"
    unrolled_steps: int = 2  # low-level updates with gradients when gradient == "unrolled"
    halt_bias_init: float = -5.0  # Q head bias: start far from halting (see act.py)

    def __post_init__(self) -> None:
        if self.gradient not in GRADIENTS:
            choices = ", ".join(GRADIENTS)
            raise ValueError(f"gradient must be one of {choices}, not {self.gradient!r}")
        if self.positions not in POSITIONS:
            choices = ", ".join(POSITIONS)
            raise ValueError(f"positions must be one of {choices}, not {self.positions!r}")
        for name in ("hidden", "heads", "h_layers", "l_layers", "h_cycles", "l_cycles",
                     "unrolled_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        check_mixer(self.mixer, self.positions, self.qk_norm, self.relative_bias,
                    self.mixer_expansion)
        check_feedback_threshold(self.feedback_threshold)
        check_grid_conv(self.grid_conv, self.seq_len)
        check_state_carry(self.carry_state, self.feedback)
        check_init_state_std(self.init_state_std)


@dataclass
class State:
    z_high: torch.Tensor  # [B, L, D]
    z_low: torch.Tensor  # [B, L, D]
    board: torch.Tensor | None = None  # [B, L] cells filled by answer feedback, 0 = none

    def detach(self) -> State:
        return State(self.z_high.detach(), self.z_low.detach(), self.board)

    def rows(self, index: torch.Tensor) -> State:
        """The state of the examples ``index`` selects (a bool mask or indices over B)."""
        board = None if self.board is None else self.board[index]
        return State(self.z_high[index], self.z_low[index], board)

    def extend(self, other: State) -> State:
        """This batch followed by ``other``'s examples."""
        board = None if self.board is None else torch.cat([self.board, other.board])
        return State(torch.cat([self.z_high, other.z_high]), torch.cat([self.z_low, other.z_low]),
                     board)


def empty_board(feedback: AnswerFeedback | None, batch: int, seq_len: int,
                device: torch.device) -> torch.Tensor | None:
    """Nothing filled yet [B, L], for a model with answer feedback; None without."""
    if feedback is None:
        return None
    return torch.zeros(batch, seq_len, dtype=torch.long, device=device)


def reset_board(board: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor | None:
    """``board`` emptied where ``mask`` [B] is true."""
    return None if board is None else torch.where(mask[:, None], 0, board)


class RecurrentModule(nn.Module):
    """A stack of blocks applied to ``state + injection``."""

    def __init__(self, config: HRMConfig, layers: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.expansion, qk_norm=config.qk_norm,
                  mixer=config.mixer, seq_len=config.seq_len,
                  mixer_expansion=config.mixer_expansion, grid_conv=config.grid_conv)
            for _ in range(layers)
        )

    def forward(
        self,
        state: torch.Tensor,
        injection: torch.Tensor,
        rotary: RotaryEmbedding | None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = state + injection
        for block in self.blocks:
            x = block(x, rotary, bias=bias)
        return x


class HRM(nn.Module):
    def __init__(self, config: HRMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = TokenEmbedding(
            config.vocab_size, config.hidden, config.seq_len, config.positions,
            uncompiled=config.mixer == "mlp",
        )
        self.rotary = rotary_for(config.positions, config.hidden, config.heads, config.seq_len)
        self.grid_bias = grid_bias_for(config.relative_bias, config.heads, config.seq_len)
        self.feedback = feedback_for(config.feedback, config.hidden, config.feedback_threshold)
        self.low = RecurrentModule(config, config.l_layers)
        self.high = RecurrentModule(config, config.h_layers)
        self.output_head = Linear(config.hidden, config.vocab_size)
        self.q_head = halting_head(config.hidden, config.halt_bias_init)
        # fixed initial states, one vector broadcast over batch and positions
        self.register_buffer("z_high_init", initial_state_vector(config.hidden,
                                                                 config.init_state_std))
        self.register_buffer("z_low_init", initial_state_vector(config.hidden,
                                                                config.init_state_std))

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        shape = (batch, self.config.seq_len, self.config.hidden)
        device = device or self.z_high_init.device
        return State(
            self.z_high_init.to(device).expand(shape).clone(),
            self.z_low_init.to(device).expand(shape).clone(),
            empty_board(self.feedback, batch, self.config.seq_len, device),
        )

    def reset(self, state: State, mask: torch.Tensor) -> State:
        """The initial state where ``mask`` [B] is true, ``state`` elsewhere."""
        m = mask.view(-1, 1, 1)
        return State(
            torch.where(m, self.z_high_init.to(state.z_high.dtype), state.z_high),
            torch.where(m, self.z_low_init.to(state.z_low.dtype), state.z_low),
            reset_board(state.board, mask),
        )

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
        if self.feedback is not None:
            x = self.feedback(self.embed, inputs, state.board)
        else:
            x = self.embed(inputs)
        bias = self.grid_bias() if self.grid_bias is not None else None  # [H, L, L]
        if cfg.carry_state:
            z_high, z_low = state.z_high, state.z_low
        else:
            z_high = self.z_high_init.to(x.dtype).expand_as(x)
            z_low = self.z_low_init.to(x.dtype).expand_as(x)
        total = h_cycles * l_cycles
        first_grad = {
            "one_step": total - 1,
            "last_cycle": total - l_cycles,
            "unrolled": max(0, total - cfg.unrolled_steps),
            "full": 0,
        }[cfg.gradient]
        for step in range(total):
            with torch.set_grad_enabled(torch.is_grad_enabled() and step >= first_grad):
                z_low = self.low(z_low, z_high + x, self.rotary, bias)
                if noise is not None:
                    z_low = noise(z_low)
                if (step + 1) % l_cycles == 0:
                    z_high = self.high(z_high, z_low, self.rotary, bias)
                    if noise is not None:
                        z_high = noise(z_high)
        logits = self.output_head(z_high)
        q_values = self.q_head(z_high.mean(dim=1)).float()
        board = self.feedback.board(logits) if self.feedback is not None else None
        return State(z_high, z_low, board).detach(), logits, q_values


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
