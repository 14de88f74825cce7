"""The model kinds a run can train, in one table: what each is called, its config and model
classes, how a run's model section becomes its config, and how it answers.

Everything that differs by kind reads it from here (the command line's choices, training,
loading a run, comparisons), so adding a kind means adding its module and one row below.

This module deliberately holds no model code and no training code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from baselines.cot import CoTConfig, CoTModel, cot_config, cot_drops
from baselines.transformer import (
    Transformer,
    TransformerConfig,
    transformer_config,
    transformer_drops,
)
from hrm.model import HRM, HRMConfig, hrm_config
from hrm.trm import TRM, TRMConfig, trm_config, trm_drops


@dataclass(frozen=True)
class ModelKind:
    name: str  # as the command line and config.json spell it
    title: str  # as progress bars spell it
    config: type  # the model's config dataclass
    model: Callable[[Any], nn.Module]  # the model built from a config
    # the config from a run's model section (without "kind"), the vocabulary and the length
    settings: Callable[[dict, int, int], Any]
    # answers by writing tokens (chain of thought) rather than in segments under halting
    decodes: bool = False
    # whether the settings describe a model that answers in one pass (no segments, no halting)
    one_pass: Callable[[dict], bool] = lambda settings: False
    # the settings of a model section it ignores: presets are written for HRM, so a preset's
    # HRM-only settings pass quietly, but one a user names is refused (hrm.config)
    drops: Callable[[dict], set[str]] = lambda settings: set()


KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    ModelKind("hrm", "HRM", HRMConfig, HRM, hrm_config),
    ModelKind("transformer", "Transformer", TransformerConfig, Transformer, transformer_config,
              one_pass=lambda settings: not settings.get("refine"), drops=transformer_drops),
    ModelKind("trm", "TRM", TRMConfig, TRM, trm_config, drops=trm_drops),
    ModelKind("cot", "CoT", CoTConfig, CoTModel, cot_config, decodes=True, drops=cot_drops),
)}
DEFAULT_KIND = "hrm"


def kind_of(name: str) -> ModelKind:
    """The kind called ``name``, or a one-line error listing the kinds."""
    if name not in KINDS:
        raise ValueError(f"model.kind must be one of {', '.join(KINDS)}, not {name!r}")
    return KINDS[name]
