"""Deep supervision and adaptive computation time (Q-learning halting), for any model that
reasons in segments (``initial_state``, ``reset``, and a forward pass that runs one segment, as in
``hrm.model.HRM``).

Training keeps a *carry*: each slot of the batch holds one example and its recurrent state
across optimiser steps. A step runs one segment for every slot, takes a loss on it (deep
supervision: every segment is supervised) and decides per slot whether to halt. Halted slots
take a fresh example from the next batch; the others continue from their detached state. So
one optimiser step costs one segment per example, whatever the segments an example uses.

Halting: the Q head gives (halt, continue) values. The halt value learns whether the current
answer is exactly right; the continue value learns the bootstrapped value of going on (the
better of the next segment's two values, or its halt value at the last segment). That target
needs a second forward pass; ``halt_only`` drops it and halts when the halt value is positive.
Exploration forces a random minimum number of segments on a fraction of examples.

This module deliberately does not own an optimiser or data loading: ``train.py`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hrm.layers import softmax_cross_entropy, stablemax_cross_entropy

LOSSES = {"softmax": softmax_cross_entropy, "stablemax": stablemax_cross_entropy}


@dataclass
class ACTConfig:
    max_segments: int = 8
    explore_prob: float = 0.1
    halt_only: bool = False
    q_loss_weight: float = 0.5
    loss: str = "softmax"  # or "stablemax"

    def __post_init__(self) -> None:
        if self.max_segments < 1:
            raise ValueError("max_segments must be at least 1")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")


@dataclass
class Carry:
    state: object  # the model's State
    inputs: torch.Tensor  # [B, L]
    labels: torch.Tensor  # [B, L]
    segments: torch.Tensor  # [B] segments run so far
    halted: torch.Tensor  # [B] bool: take a new example at the next step


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def new_carry(model, inputs: torch.Tensor, labels: torch.Tensor) -> Carry:
    """A carry for the first step, which runs ``inputs`` and ``labels`` [B, L]: every slot
    starts a fresh example, so all slots run segment 1 together, then segment 2, and so on
    until the model halts some early (starting the slots at staggered segments measured no
    gain: docs/experiments.md)."""
    batch = inputs.shape[0]
    return Carry(
        unwrap(model).initial_state(batch, inputs.device),
        inputs,
        labels,
        torch.zeros(batch, dtype=torch.long, device=inputs.device),
        torch.ones(batch, dtype=torch.bool, device=inputs.device),  # so reset, counted from 0
    )


def act_step(
    model,
    carry: Carry,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: ACTConfig,
    cycles: tuple[int, int] | None = None,
    target: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[Carry, torch.Tensor, dict[str, torch.Tensor]]:
    """One training segment for every slot: (new carry, loss, metrics). ``cycles`` overrides
    the model's (h_cycles, l_cycles). ``target(inputs, logits)``, when given, replaces the
    stored labels as this segment's target [B, L] (a puzzle with several right answers is
    trained towards the one nearest the model's answer)."""
    fresh = carry.halted
    state = unwrap(model).reset(carry.state, fresh)
    inputs = torch.where(fresh[:, None], inputs, carry.inputs)
    labels = torch.where(fresh[:, None], labels, carry.labels)
    segments = torch.where(fresh, 0, carry.segments) + 1

    new_state, logits, q_values = model(state, inputs, cycles)
    wanted = labels if target is None else target(inputs, logits.detach())
    token_loss = LOSSES[config.loss](logits, wanted)  # [B, L]
    answer_loss = token_loss.mean()
    predictions = logits.argmax(-1)
    exact = (predictions == wanted).all(-1)  # [B]
    q_halt, q_continue = q_values[:, 0], q_values[:, 1]
    q_loss = F.binary_cross_entropy_with_logits(q_halt, exact.float())

    # with one segment per puzzle there is nothing to continue to: no continue target
    bootstrap = not config.halt_only and config.max_segments > 1
    with torch.no_grad():
        last = segments >= config.max_segments
        halt = last | wants_halt(q_values, config.halt_only)
        if config.max_segments > 1:
            explore = torch.rand_like(q_halt) < config.explore_prob
            min_segments = torch.randint_like(segments, 2, config.max_segments + 1)
            halt = (halt & ~(explore & (segments < min_segments))) | last
        if bootstrap:
            _, _, next_q = model(new_state, inputs, cycles)
            best_next = torch.where(last, next_q[:, 0], next_q.max(dim=-1).values)
            continue_target = torch.sigmoid(best_next)
    if bootstrap:
        q_loss = q_loss + F.binary_cross_entropy_with_logits(q_continue, continue_target)
    loss = answer_loss + config.q_loss_weight * q_loss

    metrics = {
        "loss": loss.detach(),
        "answer_loss": answer_loss.detach(),
        "cell_accuracy": (predictions == wanted).float().mean(),
        "exact": exact.float().mean(),
        "halted_segments": segments[halt].float().mean() if halt.any() else segments.float().mean(),
        "halt_rate": halt.float().mean(),
    }
    return Carry(new_state, inputs, labels, segments, halt), loss, metrics


def halt_confidence(q_values: torch.Tensor, halt_only: bool) -> torch.Tensor:
    """The Q head's probability that stopping now is right [B]: sigmoid(halt value) in
    halt-only mode (its continue value is never trained), else sigmoid(halt − continue)."""
    return torch.sigmoid(_halt_logit(q_values, halt_only))


def wants_halt(q_values: torch.Tensor, halt_only: bool, threshold: float = 0.5) -> torch.Tensor:
    """Whether the Q head says stop [B]: when ``halt_confidence`` passes ``threshold`` (compared
    as logits, which is exact). At 0.5, the paper's rule: a positive halt value, or halt above
    continue."""
    return _halt_logit(q_values, halt_only) > math.log(threshold / (1 - threshold))


def _halt_logit(q_values: torch.Tensor, halt_only: bool) -> torch.Tensor:
    q_halt, q_continue = q_values[..., 0], q_values[..., 1]
    return q_halt if halt_only else q_halt - q_continue
