"""Compute estimates from a model's config: FLOPs per example for a forward segment, a training
step and a solved puzzle, so models can be compared at matched compute as well as matched size.

Counting rule: a multiply-add is 2 FLOPs; only matrix products count (norms, activations,
softmax and embeddings are a few percent at these sizes). A post-norm block over L positions of
width D with SwiGLU inner width I costs

    forward = 2·L·(4·D² + 3·D·I)  [q, k, v, out projections; gate, up, down]
            + 4·L²·D              [scores QKᵀ and the weighted sum of V]

and the output head 2·L·D·V. With ``mixer="mlp"`` the attention terms give way to a SwiGLU
across positions, 2·D·3·L·I_L (I_L: the inner width for width L); with ``mixer="none"`` they
are gone. ``grid_conv`` adds its nine
multiply-adds per channel and cell, 18·L·D, though not a matrix product. A backward pass costs
twice its forward. Each model's config says how many blocks a segment runs and how many of
them are differentiated (``blocks``; HRM: ``h_cycles·(l_cycles·l_layers + h_layers)``, those
inside the gradient window differentiated); the bootstrapped halting
target adds a second forward segment per training step. Chain-of-thought decoding with a KV
cache runs every block once per token, attending over the tokens so far, and the output head
once per generated token. ``tests/hrm/test_flops.py`` checks the forward count against
``torch.utils.flop_counter``.

This module deliberately estimates; it does not time anything (``benchmarks/`` does).
"""

from __future__ import annotations

from baselines.cot import CoTConfig
from hrm.layers import swiglu_inner
from hrm.segment_model import SegmentModelConfig


def block_flops(seq_len: int, hidden: int, expansion: float, mixer: str = "attention",
                mixer_expansion: float = 4.0, grid_conv: bool = False) -> int:
    """Forward FLOPs of one block over one example."""
    inner = swiglu_inner(hidden, expansion)
    channel_mlp = 2 * seq_len * 3 * hidden * inner
    conv = 2 * 9 * seq_len * hidden if grid_conv else 0
    if mixer == "mlp":  # a SwiGLU across the L positions for each of the D channels
        mixing = 2 * hidden * 3 * seq_len * swiglu_inner(seq_len, mixer_expansion)
    elif mixer == "none":
        mixing = 0
    else:
        mixing = 2 * seq_len * 4 * hidden * hidden + 4 * seq_len**2 * hidden
    return channel_mlp + mixing + conv


def model_block_flops(config: SegmentModelConfig) -> int:
    """``block_flops`` for one of the model's blocks."""
    return block_flops(config.seq_len, config.hidden, config.expansion, config.mixer,
                       config.mixer_expansion, config.grid_conv)


def head_flops(seq_len: int, hidden: int, vocab_size: int) -> int:
    return 2 * seq_len * hidden * vocab_size


def segment_flops(config: SegmentModelConfig) -> int:
    """Forward FLOPs of one segment (one pass for a transformer) on one example."""
    block = model_block_flops(config)
    head = head_flops(config.seq_len, config.hidden, config.vocab_size)
    return config.blocks()[0] * block + head


def training_step_flops(config: SegmentModelConfig, bootstrapped_target: bool = True) -> int:
    """FLOPs of one training step on one example: one segment forward and backward through the
    differentiated blocks, plus the bootstrapped target's extra forward when it is used."""
    block = model_block_flops(config)
    head = head_flops(config.seq_len, config.hidden, config.vocab_size)
    flops = segment_flops(config) + 2 * (config.blocks()[1] * block + head)
    if bootstrapped_target:
        flops += segment_flops(config)
    return flops


def inference_flops(config: SegmentModelConfig, segments: int) -> int:
    """FLOPs to answer one puzzle with ``segments`` segments (1 for a one-pass model)."""
    return segments * segment_flops(config)


def cot_generation_flops(config: CoTConfig, prompt: int, generated: int) -> int:
    """FLOPs for a chain-of-thought model to read a ``prompt``-token puzzle and write
    ``generated`` tokens with a KV cache."""
    inner = swiglu_inner(config.hidden, config.expansion)
    total = prompt + generated
    projections = total * 2 * (4 * config.hidden**2 + 3 * config.hidden * inner)
    attention = 4 * config.hidden * total * (total + 1) // 2  # token t attends over t tokens
    head = (generated + 1) * 2 * config.hidden * config.vocab_size
    return config.layers * (projections + attention) + head


def cot_training_flops(config: CoTConfig, tokens: int) -> int:
    """FLOPs of one training step of a chain-of-thought model on one sequence of ``tokens``
    (forward and backward; causal attention counted at full cost, an upper bound)."""
    forward = (config.layers * block_flops(tokens, config.hidden, config.expansion)
               + head_flops(tokens, config.hidden, config.vocab_size))
    return 3 * forward
