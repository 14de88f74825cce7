"""What every model that answers in segments shares: its settings, the state passed from one
segment to the next, the embedded puzzle, and the heads that read an answer and a halting
decision from the last latent.

A *segment model* maps (state, puzzle tokens) to (next state, logits [B, L, V], Q-values
[B, 2]); ``act.py`` loops it over segments and decides halting. HRM (``hrm/model.py``) and the
transformer with segments (``baselines/transformer.py``) are segment models that differ only in
what happens between reading the puzzle and reading the answer, and they get everything else
from here: ``SegmentModelConfig`` (the shared settings, checked once), ``State``, and
``SegmentModel`` (embedding, answer feedback, output and Q heads, fixed initial latents).

This module deliberately does not define a model's computation inside a segment, nor any loop
over segments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from hrm.layers import (
    POSITIONS,
    Block,
    Linear,
    TokenEmbedding,
    check_mixer,
    feedback_for,
    grid_side,
    halting_head,
    initial_state_vector,
    rotary_for,
)


@dataclass
class SegmentModelConfig:
    vocab_size: int
    seq_len: int
    hidden: int = 128
    heads: int = 4
    expansion: float = 4.0
    positions: str = "learned"  # "learned", "grid" (row + column), "rope" or "none"
    qk_norm: bool = False  # normalised queries and keys (layers.Attention)
    mixer: str = "attention"  # "mlp": layers.TokenMixer; "none": only the grid convolution
    mixer_expansion: float = 4.0  # the token mixer's inner width: this × seq_len × 2/3
    grid_conv: bool = False  # a 3×3 depthwise convolution over the grid in every block
    feedback: bool = False  # read confident answers back in (layers.AnswerFeedback)
    feedback_threshold: float = 0.9
    carry_state: bool = True  # false: segments pass on only the feedback board, not the latents
    init_state_std: float = 1.0  # scale of the fixed initial latents (0: zeros)
    halt_bias_init: float = -5.0  # Q head bias: start far from halting (see act.py)

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            choices = ", ".join(POSITIONS)
            raise ValueError(f"positions must be one of {choices}, not {self.positions!r}")
        for name in ("hidden", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        check_mixer(self.mixer, self.positions, self.qk_norm, self.mixer_expansion,
                    self.grid_conv)
        if not 0 < self.feedback_threshold < 1:
            raise ValueError(f"feedback_threshold must be between 0 and 1, not "
                             f"{self.feedback_threshold}")
        if self.grid_conv:
            grid_side(self.seq_len, "grid_conv needs")
        if self.positions == "grid":
            grid_side(self.seq_len, "grid positions need")
        if not self.carry_state and not self.feedback:
            raise ValueError("carry_state=false needs feedback=true: with neither, every "
                             "segment would repeat the first")
        if self.init_state_std < 0:
            raise ValueError(f"init_state_std must be at least 0, not {self.init_state_std}")

    def blocks(self) -> tuple[int, int]:
        """Blocks one segment runs, and how many of them carry gradients (``hrm/flops.py``)."""
        raise NotImplementedError


def setting_names(config: type) -> set[str]:
    """The fields of a model config a run's model section may set (all but the two the data
    decides)."""
    return {f.name for f in dataclasses.fields(config)} - {"vocab_size", "seq_len"}


@dataclass
class State:
    """What a segment passes to the next: the model's latents, each [B, L, D] (HRM: z_H and
    z_L; the transformer: its output), and the cells answer feedback filled [B, L] (0 = none;
    None without feedback)."""

    z: tuple[torch.Tensor, ...]
    board: torch.Tensor | None = None

    def detach(self) -> State:
        return State(tuple(z.detach() for z in self.z), self.board)

    def rows(self, index: torch.Tensor) -> State:
        """The state of the examples ``index`` selects (a bool mask or indices over B)."""
        board = None if self.board is None else self.board[index]
        return State(tuple(z[index] for z in self.z), board)

    def extend(self, other: State) -> State:
        """This batch followed by ``other``'s examples."""
        board = None if self.board is None else torch.cat([self.board, other.board])
        return State(tuple(torch.cat(pair) for pair in zip(self.z, other.z, strict=True)), board)


def block_for(config: SegmentModelConfig) -> Block:
    """One block as the shared settings describe it."""
    return Block(config.hidden, config.heads, config.expansion, qk_norm=config.qk_norm,
                 mixer=config.mixer, seq_len=config.seq_len,
                 mixer_expansion=config.mixer_expansion, grid_conv=config.grid_conv)


class SegmentModel(nn.Module):
    """The parts around a segment's computation. A subclass builds its blocks between
    ``__init__`` and ``add_heads`` (so parameters are created, and drawn from the RNG, in one
    fixed order), names its fixed initial latents in ``LATENTS``, and in ``forward`` calls
    ``read_puzzle``, then ``latents``, then ``read_answer``."""

    LATENTS: tuple[str, ...] = ()  # names of the buffers holding each latent's initial vector

    def __init__(self, config: SegmentModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.hidden, config.seq_len,
                                    config.positions, uncompiled=config.mixer == "mlp")
        self.rotary = rotary_for(config.positions, config.hidden, config.heads, config.seq_len)
        self.feedback = feedback_for(config.feedback, config.hidden, config.feedback_threshold)

    def add_heads(self) -> None:
        """The output and Q heads, then one fixed initial vector per latent, broadcast over
        batch and positions."""
        config = self.config
        self.output_head = Linear(config.hidden, config.vocab_size)
        self.q_head = halting_head(config.hidden, config.halt_bias_init)
        for name in self.LATENTS:
            self.register_buffer(name, initial_state_vector(config.hidden, config.init_state_std))

    def _initial(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.LATENTS]

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        shape = (batch, self.config.seq_len, self.config.hidden)
        device = device or self.output_head.weight.device
        board = None
        if self.feedback is not None:
            board = torch.zeros(batch, self.config.seq_len, dtype=torch.long, device=device)
        return State(tuple(v.to(device).expand(shape).clone() for v in self._initial()), board)

    def reset(self, state: State, mask: torch.Tensor) -> State:
        """The initial state where ``mask`` [B] is true, ``state`` elsewhere."""
        m = mask.view(-1, 1, 1)
        z = tuple(torch.where(m, v.to(z.dtype), z)
                  for v, z in zip(self._initial(), state.z, strict=True))
        board = None if state.board is None else torch.where(mask[:, None], 0, state.board)
        return State(z, board)

    def read_puzzle(self, inputs: torch.Tensor, state: State) -> torch.Tensor:
        """The embedded puzzle [B, L, D], with the cells the last segment filled."""
        if self.feedback is not None:
            return self.feedback(self.embed, inputs, state.board)
        return self.embed(inputs)

    def latents(self, state: State, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The latents this segment starts from: the state's, or without ``carry_state`` the
        initial ones (the filled board is then all that passes on)."""
        if self.config.carry_state:
            return state.z
        return tuple(v.to(x.dtype).expand_as(x) for v in self._initial())

    def read_answer(self, z: torch.Tensor, latents: tuple[torch.Tensor, ...]
                    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """(next state, detached; logits [B, L, V]; Q-values [B, 2]), read from ``z``."""
        logits = self.output_head(z)
        q_values = self.q_head(z.mean(dim=1)).float()
        board = self.feedback.board(logits) if self.feedback is not None else None
        return State(latents, board).detach(), logits, q_values
