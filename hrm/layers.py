"""Building blocks shared by every model: norms, the SwiGLU MLP, positions, attention, blocks,
and the cross-entropy losses (softmax and stablemax).

Blocks are post-norm (normalise after each residual add), as in HRM: a recurrent module applies
the same blocks many times, and post-norm keeps the state's scale fixed however often that is.
Norms have no learned weights and linear layers no biases.

This module deliberately knows nothing of recurrence, segments or halting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without a learned scale; bf16 input is normalised in float32 inside the kernel."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Truncated normal at ±2 std (the initialisation used throughout)."""
    return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


class Linear(nn.Linear):
    """A bias-free linear layer, LeCun-normal initialised (std 1/sqrt(fan_in))."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        trunc_normal_(self.weight, 1.0 / math.sqrt(in_features))


def swiglu_inner(hidden: int, expansion: float) -> int:
    """The SwiGLU inner width: 2/3 of ``expansion × hidden`` (its parameters then match a plain
    MLP's), rounded to a multiple of 16."""
    return max(16, round(expansion * hidden * 2 / 3 / 16) * 16)


class SwiGLU(nn.Module):
    def __init__(self, hidden: int, expansion: float) -> None:
        super().__init__()
        inner = swiglu_inner(hidden, expansion)
        self.gate_up = Linear(hidden, 2 * inner)
        self.down = Linear(inner, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two products over halves of one weight rather than one product split in two: the
        # halves of a split output are strided, and SiLU and the product over strided rows took
        # half as long again on CPU. Same parameters, same numbers.
        gate_weight, up_weight = self.gate_up.weight.chunk(2, dim=0)
        return self.down(F.silu(F.linear(x, gate_weight)) * F.linear(x, up_weight))


class RotaryEmbedding(nn.Module):
    """Rotary position tables for sequences up to ``max_len``."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        angles = torch.outer(torch.arange(max_len).float(), inv_freq)  # [L, head_dim/2]
        angles = torch.cat([angles, angles], dim=-1)  # [L, head_dim]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [B, H, L, D] by position; cos/sin [L, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


# Below this sequence length, attention written out (softmax(QKᵀ)V) is faster on CPU than
# F.scaled_dot_product_attention, whose bf16 CPU path is slow at small head sizes (measured: see
# BENCHMARKS.md); above it SDPA's fused kernels win.
EXPLICIT_ATTENTION_MAX_LEN = 256


@dataclass
class KVCache:
    """One attention layer's keys and values for the positions decoded so far [B, H, T, D]."""

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=2)
            self.values = torch.cat([self.values, v], dim=2)
        return self.keys, self.values


class Attention(nn.Module):
    """Multi-head self-attention; bidirectional unless ``causal``.

    ``qk_norm``: queries and keys are RMS-normalised per head before their product, the queries
    then scaled by a learned gain per head (starting at 1). The scores can then grow only as
    fast as that gain, which takes away a known cause of runs diverging at high learning rates
    (attention logits that grow until the softmax saturates)."""

    def __init__(self, hidden: int, heads: int, causal: bool = False,
                 qk_norm: bool = False) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads, self.head_dim, self.causal = heads, hidden // heads, causal
        self.qkv = Linear(hidden, 3 * hidden)
        self.out = Linear(hidden, hidden)
        self.qk_gain = nn.Parameter(torch.ones(heads, 1, 1)) if qk_norm else None
        self.path = "auto"  # "auto", "sdpa" or "explicit": which attention kernel to use

    def forward(
        self,
        x: torch.Tensor,
        rotary: RotaryEmbedding | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """``x`` [B, L, D]; with a ``cache`` (causal decoding) ``x`` holds the positions after
        those cached, and their keys and values are appended to it."""
        batch, length, hidden = x.shape
        offset = cache.length if cache is not None else 0
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, L, D]
        if self.qk_gain is not None:
            q, k = rms_norm(q) * self.qk_gain.to(q.dtype), rms_norm(k)
        if rotary is not None:
            cos, sin = rotary.cos[offset : offset + length], rotary.sin[offset : offset + length]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keep = None  # [L, T] True where a query may see a key; None: all, or plain causal
        if cache is not None:
            k, v = cache.append(k, v)
            if self.causal and length > 1:
                keep = torch.ones(length, k.shape[2], dtype=torch.bool, device=x.device)
                keep = keep.tril(offset)
        causal = self.causal and cache is None
        use_explicit = self.path == "explicit" or (
            self.path == "auto" and length <= EXPLICIT_ATTENTION_MAX_LEN and x.device.type == "cpu"
        )
        if use_explicit:
            y = explicit_attention(q, k, v, causal, keep)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(batch, length, hidden))


def explicit_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    # scaling the queries, not the scores: head_dim numbers per query instead of one per key
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [B, H, L, T]
    if causal:
        length = q.shape[-2]
        keep = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    if scores.requires_grad:
        # training keeps float32 probabilities for softmax's backward (autocast leaves bf16
        # softmax in bf16), converted back for the product with bf16 values
        return scores.softmax(-1, dtype=torch.float32).to(v.dtype) @ v
    # at inference bf16 scores stay bf16: a float32 output converted back took 1.1-1.5× as
    # long on CPU (docs/experiments.md)
    return scores.softmax(-1) @ v


class TokenMixer(nn.Module):
    """A SwiGLU across positions instead of attention (MLP-Mixer's token mixing): each channel of
    the output at a cell is a learned function of that channel at every cell. For puzzles of one
    fixed size only, since its weights are per position; it needs no position encoding, as the
    weights already say which cell is which. Its products are its weights times each example's
    [L, D] state: no softmax and no per-head products, but an inner dimension of L, which CPU
    kernels handle less well than a power of two (docs/experiments.md)."""

    def __init__(self, seq_len: int, expansion: float) -> None:
        super().__init__()
        inner = swiglu_inner(seq_len, expansion)
        self.gate_up = Linear(seq_len, 2 * inner)
        self.down = Linear(inner, seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, D]
        gate_weight, up_weight = self.gate_up.weight.chunk(2, dim=0)
        inner = F.silu(gate_weight @ x) * (up_weight @ x)  # [I, L] @ [B, L, D] -> [B, I, D]
        return self.down.weight @ inner


def grid_side(seq_len: int, needs: str) -> int:
    """The side of the square grid a sequence of ``seq_len`` cells reads row by row; a one-line
    error naming what ``needs`` it when there is none."""
    side = math.isqrt(seq_len)
    if side * side != seq_len:
        raise ValueError(f"{needs} a square grid, not a sequence of {seq_len}")
    return side


class GridConv(nn.Module):
    """A depthwise 3×3 convolution over a square grid read row by row: each channel of a cell
    gets a learned mix of that channel at the cell and its eight neighbours (zeros past the
    edge). The same weights at every cell, so unlike ``TokenMixer`` it cannot learn where one
    puzzle's walls are, only how a cell reads its neighbours: the step that shortest paths
    spread by. Starts at zero, so it changes nothing until trained."""

    def __init__(self, hidden: int, seq_len: int) -> None:
        super().__init__()
        grid_side(seq_len, "grid_conv needs")
        self.weight = nn.Parameter(torch.zeros(3, 3, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, D]
        batch, length, hidden = x.shape
        # the side comes from the input, not from construction: the same weights run on a grid
        # of any size (eval/runs.py at_size)
        side = grid_side(length, "grid_conv needs")
        padded = F.pad(x.view(batch, side, side, hidden), (0, 0, 1, 1, 1, 1))  # [B, S+2, S+2, D]
        weight = self.weight.to(x.dtype)
        out = sum(weight[dy, dx] * padded[:, dy : dy + side, dx : dx + side]
                  for dy in range(3) for dx in range(3))
        return out.reshape(batch, length, hidden)


MIXERS = ("attention", "mlp", "none")


def check_mixer(mixer: str, positions: str, qk_norm: bool, mixer_expansion: float = 4.0,
                grid_conv: bool = False) -> None:
    """A one-line error for a mixer and settings that only attention uses."""
    if mixer not in MIXERS:
        raise ValueError(f"mixer must be one of {', '.join(MIXERS)}, not {mixer!r}")
    if not mixer_expansion > 0:
        raise ValueError(f"mixer_expansion must be positive, not {mixer_expansion}")
    if mixer != "attention" and (positions == "rope" or qk_norm):
        raise ValueError(f"mixer={mixer} has no attention: it cannot use rope positions or "
                         "qk_norm")
    if mixer == "none" and not grid_conv:
        raise ValueError("mixer=none leaves the grid convolution as the only way cells meet: "
                         "it needs grid_conv=true")
    if positions == "none" and mixer == "attention" and not grid_conv:
        raise ValueError("positions=none with attention alone leaves cells indistinguishable: "
                         "it needs grid_conv=true")


class Block(nn.Module):
    """Post-norm transformer block: x = norm(x + attn(x)); x = norm(x + mlp(x)).

    ``mixer="mlp"`` mixes positions with a ``TokenMixer`` (sequences of ``seq_len`` only, inner
    width from ``mixer_expansion``) instead of attention. ``grid_conv`` adds a ``GridConv`` of
    the block's input beside the mixer: x = norm(x + attn(x) + conv(x)). ``mixer="none"``
    leaves the convolution alone, x = norm(x + conv(x)): every cell reads only its neighbours,
    at a cost linear in the cells and with weights that fit any grid size."""

    def __init__(self, hidden: int, heads: int, expansion: float, causal: bool = False,
                 qk_norm: bool = False, mixer: str = "attention",
                 seq_len: int | None = None, mixer_expansion: float = 4.0,
                 grid_conv: bool = False) -> None:
        super().__init__()
        self.grid_conv = None
        if grid_conv:
            if causal or seq_len is None:
                raise ValueError("grid_conv needs a fixed grid and no causal mask")
            self.grid_conv = GridConv(hidden, seq_len)
        self.attn, self.token_mixer = None, None
        if mixer == "mlp":
            if causal or seq_len is None:
                raise ValueError("mixer=mlp needs a fixed sequence length and no causal mask")
            self.token_mixer = TokenMixer(seq_len, mixer_expansion)
        elif mixer == "none":
            if not grid_conv:
                raise ValueError("mixer=none needs grid_conv: cells would never meet")
        else:
            self.attn = Attention(hidden, heads, causal, qk_norm)
        self.mlp = SwiGLU(hidden, expansion)

    def forward(
        self,
        x: torch.Tensor,
        rotary: RotaryEmbedding | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        if self.attn is not None:
            mixed = self.attn(x, rotary, cache)
        elif self.token_mixer is not None:
            mixed = self.token_mixer(x)
        else:
            mixed = 0
        if self.grid_conv is not None:
            mixed = mixed + self.grid_conv(x)
        x = rms_norm(x + mixed)
        return rms_norm(x + self.mlp(x))


POSITIONS = ("learned", "grid", "rope", "none")


class TokenEmbedding(nn.Module):
    """Token embedding scaled by sqrt(hidden), plus positions unless rotary is used.

    ``learned``: one vector per position. ``grid``: for a square grid read row by row, a learned
    vector per row plus one per column, so every cell of a row shares what makes it that row
    (the structure a Sudoku or maze model otherwise has to discover from data). ``none``: no
    positions at all, for a model whose cells meet through the grid convolution, which tells
    them apart by their neighbourhoods (walls and edges) and whose weights fit any grid size."""

    def __init__(self, vocab: int, hidden: int, max_len: int, positions: str,
                 uncompiled: bool = False) -> None:
        super().__init__()
        # uncompiled: torch.compile leaves the lookup out of its graph. Models with a
        # TokenMixer need that: torch 2.13's CPU code for the lookup's backward, fused with the
        # mixer's transposed gradients, wrote past its buffers for lengths not a multiple of 32
        self.uncompiled = uncompiled
        self.scale = math.sqrt(hidden)
        self.tokens = nn.Embedding(vocab, hidden)
        trunc_normal_(self.tokens.weight, 1.0 / self.scale)
        self.positions = None
        if positions == "learned":
            table = trunc_normal_(torch.empty(max_len, hidden), 1 / self.scale)
            self.positions = nn.Parameter(table)
        elif positions == "grid":
            side = grid_side(max_len, "grid positions need")
            self.rows = nn.Parameter(trunc_normal_(torch.empty(side, 1, hidden), 1 / self.scale))
            self.columns = nn.Parameter(trunc_normal_(torch.empty(1, side, hidden), 1 / self.scale))

    def position_table(self) -> torch.Tensor | None:
        """[L, D], or None with rotary positions."""
        if self.positions is not None:
            return self.positions
        if hasattr(self, "rows"):
            # two unit-scale terms: 1/sqrt(2) keeps the sum at unit scale
            return ((self.rows + self.columns) / math.sqrt(2)).flatten(0, 1)
        return None

    def forward(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``tokens`` [B, L] at positions offset .. offset + L - 1."""
        if self.uncompiled:
            return self._embed_uncompiled(tokens, offset)
        return self._embed(tokens, offset)

    def _embed(self, tokens: torch.Tensor, offset: int) -> torch.Tensor:
        x = self.tokens(tokens)
        table = self.position_table()
        if table is not None:
            x = (x + table[offset : offset + tokens.shape[1]]) / math.sqrt(2)
        return self.scale * x

    @torch.compiler.disable
    def _embed_uncompiled(self, tokens: torch.Tensor, offset: int) -> torch.Tensor:
        return self._embed(tokens, offset)


class AnswerFeedback(nn.Module):
    """Shows a model that reasons in segments its own confident answers: the next segment reads
    the puzzle with every cell it was sure of (softmax above ``threshold``) filled in, embedded
    like a given cell plus a learned "filled by the model" vector.

    The vector starts at zero, so a filled cell at first looks exactly like a given one: what
    the model learnt in one pass (fill what the givens imply) applies again, to a fuller board,
    in every later segment. Cells are re-read from every segment's answer, so a filled cell the
    model changes its mind about is updated or emptied. This is not in the HRM paper (there the
    state alone carries the answer between segments); it is an option for the ablation."""

    def __init__(self, hidden: int, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.filled = nn.Parameter(torch.zeros(hidden))

    def forward(self, embed: TokenEmbedding, inputs: torch.Tensor,
                board: torch.Tensor) -> torch.Tensor:
        """The embedded puzzle [B, L, D]; ``board`` [B, L] holds filled tokens, 0 elsewhere."""
        filled = board > 0
        x = embed(torch.where(filled, board, inputs))
        return x + filled.unsqueeze(-1).to(x.dtype) * self.filled.to(x.dtype)

    @torch.no_grad()
    def board(self, logits: torch.Tensor) -> torch.Tensor:
        """The cells to fill next segment [B, L]: the answer where confident, 0 elsewhere."""
        confidence, answer = logits.float().softmax(-1).max(-1)
        return torch.where(confidence > self.threshold, answer, 0)


def initial_state_vector(hidden: int, std: float) -> torch.Tensor:
    """A fixed initial state [hidden], broadcast over batch and positions: truncated normal at
    ``std`` (the paper's 1.0), or zeros at 0, when a first segment should start from the
    puzzle alone rather than from a constant as large as the embedded puzzle."""
    vector = torch.zeros(hidden)
    return trunc_normal_(vector, std) if std > 0 else vector


def feedback_for(feedback: bool, hidden: int, threshold: float) -> AnswerFeedback | None:
    """The answer feedback a model needs when it asks for it, else None."""
    return AnswerFeedback(hidden, threshold) if feedback else None


def rotary_for(positions: str, hidden: int, heads: int, max_len: int) -> RotaryEmbedding | None:
    """The rotary tables a model needs when its positions are rotary, else None."""
    return RotaryEmbedding(hidden // heads, max_len) if positions == "rope" else None


@dataclass
class StateNoise:
    """Gaussian noise a model adds to its recurrent state after every update, with a standard
    deviation per example: one way a test-time attempt varies the computation (a deviation of
    0 leaves that example's run exactly as it was). States are normalised (rms 1 per cell),
    so the deviation is relative to the state's own scale."""

    std: torch.Tensor  # [B]
    generator: torch.Generator | None = None  # None: torch's global generator

    def __call__(self, z: torch.Tensor) -> torch.Tensor:  # [B, L, D]
        noise = torch.randn(z.shape, generator=self.generator, device=z.device, dtype=z.dtype)
        return z + self.std.to(z.dtype).view(-1, 1, 1) * noise


def halting_head(hidden: int, bias: float) -> nn.Linear:
    """A Q head giving (halt, continue) values; zero weights, so both start at ``bias`` (a
    negative bias keeps early training from halting at once)."""
    head = nn.Linear(hidden, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(bias)
    return head


def stablemax(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 for x >= 0, 1 / (1 - x) otherwise: softmax's exp without its blow-up."""
    # each branch sees only its own half of the inputs: ``where`` backpropagates through both,
    # and 1 / (1 - x) at x = 1 would turn the unused branch's infinite gradient into NaN
    return torch.where(x < 0, 1 / (1 - x.clamp(max=0)), x + 1)


def stablemax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Per-position loss [...] of stablemax probabilities (computed in float64 as it is tiny
    and values near 1 lose precision in float32)."""
    s = stablemax(logits.double())
    log_probs = torch.log(s / s.sum(-1, keepdim=True))
    valid = labels != ignore_index
    picked = torch.gather(log_probs, -1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, -picked, 0).float()


def softmax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Per-position softmax cross-entropy [...]; 0 where the label is ``ignore_index``."""
    flat = F.cross_entropy(
        logits.float().flatten(0, -2), labels.flatten(), ignore_index=ignore_index, reduction="none"
    )
    return flat.view(labels.shape)
