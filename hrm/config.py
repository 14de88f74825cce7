"""A run's settings: the sections ``data``, ``model``, ``act`` and ``train``, parsed and checked
in one place into typed configs, whatever they came from (a preset, ``--config``, ``--set``, a
run's ``config.json`` or ``hrm compare``), and the model config each kind builds from them.

Unknown keys, values of the wrong type and numbers out of range are refused here with the
setting named, before any data is built. How a kind's model config is made from the model
section (a transformer drops HRM's recurrence settings, for instance) is each kind's own rule
(``hrm.kinds``), written and tested beside its model.

This module deliberately does not train, build data or touch files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from hrm.act import ACTConfig
from hrm.kinds import DEFAULT_KIND, KINDS, ModelKind, kind_of
from hrm.segment_model import setting_names
from puzzles import make_family
from puzzles.dataset import tier_mix


@dataclass
class DataConfig:
    path: str | None = None  # an existing dataset; else one is built from the fields below
    family: str = "sudoku"
    size: int = 4
    difficulty: str = "easy"
    train: int = 1000
    test: int = 200
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # family options, e.g. unique_path


@dataclass
class TrainConfig:
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    schedule: str = "constant"  # or "cosine" (to 10% of lr at max_steps)
    max_steps: int = 1000
    # a wall-time budget for training (evaluations not counted): the run stops when it is spent
    # and the cosine schedule follows the clock instead of the step count. Not reproducible
    # bit for bit, since the step a schedule point falls on depends on the machine's speed
    max_seconds: float | None = None
    # the first shallow_steps run one high- and one low-level cycle and one segment per puzzle:
    # at 9×9, HRM trained at full depth from scratch stays stuck copying its input
    shallow_steps: int = 0
    grad_clip: float = 1.0
    # after training, choose learned halting's threshold on this many fresh validation puzzles
    # (eval/halting.py); 0: keep the paper's 0.5
    calibrate_halting: int = 0
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    # start from the weights of this run's checkpoint (its averaged weights if it kept them):
    # same model settings; a maze model without positions may train at another size
    init: str | None = None
    # what each segment's answer is trained towards: the stored "label", or for mazes the
    # "preferred" shortest path, the one the model's own scores favour (any shortest path
    # is right, so a maze with several is not a contradiction; puzzles/maze_targets.py)
    target: str = "label"
    seed: int = 0
    eval_every: int = 250
    eval_segments: int | None = None  # default: act.max_segments
    eval_limit: int | None = None  # periodic evaluations on N test puzzles spread over it; the last
    # evaluation always uses the whole test split
    checkpoint_every: int = 250
    log_every: int = 10
    dtype: str = "fp32"  # or "bf16" (autocast)
    compile: bool = False  # torch.compile the model: ~1.3× faster steps after ~60 s compiling
    threads: int | None = None  # torch threads; default: the cores this process may use


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    # "kind" (hrm.kinds) and the model's config fields but vocab_size/seq_len; presets hold
    # HRM fields, which a transformer maps to its own (see build_model)
    model: dict[str, Any] = field(default_factory=dict)
    act: ACTConfig = field(default_factory=ACTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        sections = {"data": DataConfig, "act": ACTConfig, "train": TrainConfig}
        unknown = set(raw) - {"data", "model", "act", "train"}
        if unknown:
            raise ValueError(f"unknown config section {sorted(unknown)[0]!r}")
        built = {}
        for name, kind in sections.items():
            values = without_removed(name, raw.get(name, {}))
            known = {f.name for f in dataclasses.fields(kind)}
            for key in values:
                if key not in known:
                    raise ValueError(f"unknown config key '{name}.{key}'")
            check_types(name, kind, values)
            if name == "train" and "betas" in values:
                values["betas"] = tuple(values["betas"])
            built[name] = kind(**values)
        model = without_removed("model", raw.get("model", {}))
        known = {"kind"}.union(*(setting_names(kind.config) for kind in KINDS.values()))
        for key in model:
            if key not in known:
                raise ValueError(f"unknown config key 'model.{key}'")
        for kind in KINDS.values():  # each kind checks the types of the settings it takes
            check_types("model", kind.config,
                        {k: v for k, v in model.items() if k in setting_names(kind.config)})
        build_config(model, vocab_size=2, seq_len=1)  # validates values early
        data = built["data"]
        if not data.path:
            try:
                family = make_family(data.family, data.size, **data.options)
            except TypeError:
                raise ValueError(f"data.options {sorted(data.options)} are not all options of "
                                 f"the {data.family} family") from None
            tier_mix(data.difficulty, family.difficulties)
        check_ranges(built)
        if built["train"].schedule not in ("constant", "cosine"):
            raise ValueError("train.schedule must be 'constant' or 'cosine', "
                             f"not {built['train'].schedule!r}")
        if built["train"].max_seconds is not None and built["train"].max_seconds <= 0:
            raise ValueError("train.max_seconds must be positive")
        if built["train"].calibrate_halting < 0:
            raise ValueError("train.calibrate_halting must be 0 (off) or a number of puzzles")
        if built["train"].target not in ("label", "preferred"):
            raise ValueError("train.target must be 'label' or 'preferred', "
                             f"not {built['train'].target!r}")
        if built["train"].dtype not in ("fp32", "bf16"):
            raise ValueError(f"train.dtype must be 'fp32' or 'bf16', not {built['train'].dtype!r}")
        return cls(model=model, **built)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# settings removed after they measured no gain (docs/experiments.md), with the value that
# meant "off": a run saved before holds them so, which changes nothing; any other value cannot
# be honoured any more
REMOVED = {("act", "stagger"): False, ("model", "relative_bias"): False,
           ("model_config", "relative_bias"): False}


def without_removed(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config section without the removed settings it holds switched off."""
    kept = {}
    for key, value in values.items():
        if (section, key) not in REMOVED:
            kept[key] = value
        elif value != REMOVED[section, key]:
            raise ValueError(f"{section}.{key}={json.dumps(value)} is no longer a setting "
                             "(it measured no gain and was removed)")
    return kept


def _at_least(low: float):
    return lambda v: v is None or (math.isfinite(v) and v >= low), f"at least {low}"


# the numeric settings' ranges; None passes where a field allows it (a default applies)
RANGES = {
    "data": {"size": _at_least(1), "train": _at_least(0), "test": _at_least(0)},
    "act": {"max_segments": _at_least(1), "q_loss_weight": _at_least(0),
            "explore_prob": (lambda v: 0 <= v <= 1, "from 0 to 1")},
    "train": {
        "batch_size": _at_least(1), "max_steps": _at_least(1), "warmup_steps": _at_least(0),
        "shallow_steps": _at_least(0), "grad_clip": _at_least(0),
        "lr": (lambda v: math.isfinite(v) and v > 0, "positive"),
        "weight_decay": _at_least(0), "ema": (lambda v: 0 <= v < 1, "from 0 up to 1"),
        "eval_every": _at_least(1), "eval_segments": _at_least(1), "eval_limit": _at_least(1),
        "checkpoint_every": _at_least(1), "log_every": _at_least(1), "threads": _at_least(1),
        "betas": (lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    },
}


def check_ranges(sections: dict[str, Any]) -> None:
    """Refuse a number outside its setting's range: ``train.max_steps=-5`` would otherwise
    "train" no step and write no checkpoint, and exit as if it had."""
    for section, checks in RANGES.items():
        for key, (ok, wanted) in checks.items():
            value = getattr(sections[section], key)
            try:
                fine = ok(value)
            except TypeError:
                fine = False
            if not fine:
                raise ValueError(f"{section}.{key} must be {wanted}, not {value!r}")


SIMPLE_TYPES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_types(section: str, kind: type, values: dict[str, Any]) -> None:
    """Refuse a value of the wrong type for a bool, int, float or str field of the dataclass
    ``kind`` (None where the field allows it): ``--set act.halt_only=maybe`` would otherwise
    pass as a truthy string. Fields of other types are left to the config's own checks."""
    hints = typing.get_type_hints(kind)
    for key, value in values.items():
        hint = hints.get(key)
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        simple = [t for t in allowed if t in SIMPLE_TYPES]
        if not simple or (value is None and type(None) in allowed):
            continue
        if not any(_is_a(value, t) for t in simple):
            wanted = " or ".join(SIMPLE_TYPES[t] for t in simple)
            raise ValueError(f"{section}.{key} must be {wanted}, not {value!r}")


def _is_a(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # bool is an int to Python, never here
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def apply_override(raw: dict[str, Any], assignment: str) -> tuple[str, str]:
    """Apply ``section.key=value`` (value parsed as JSON when it can be) to a nested dict, and
    say which setting it was: ``(section, key)``."""
    if "=" not in assignment or "." not in assignment.split("=", 1)[0]:
        raise ValueError(f"--set expects section.key=value, got {assignment!r}")
    dotted, text = assignment.split("=", 1)
    section, key = dotted.split(".", 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    raw.setdefault(section, {})[key] = value
    return section, key


def model_kind(config: RunConfig) -> ModelKind:
    return kind_of(config.model.get("kind", DEFAULT_KIND))


def build_config(model: dict[str, Any], vocab_size: int, seq_len: int):
    """The model config that ``model`` (the run config's model section) describes, by its kind's
    own rule (``hrm.kinds``)."""
    kind = kind_of(model.get("kind", DEFAULT_KIND))
    return kind.settings({k: v for k, v in model.items() if k != "kind"}, vocab_size, seq_len)


def check_named_settings(model: dict[str, Any], named: set[str]) -> None:
    """Refuse model settings a user named (``--set``, ``--config``) that the model's kind would
    drop: ``--model trm --set model.h_cycles=3`` would otherwise train an unchanged TRM."""
    kind = kind_of(model.get("kind", DEFAULT_KIND))
    settings = {k: v for k, v in model.items() if k != "kind"}
    ignored = sorted(named & kind.drops(settings))
    if ignored:
        raise ValueError(f"model.{ignored[0]} is not a {kind.title} setting (a {kind.title} "
                         f"ignores it); {kind.title} settings: "
                         f"{', '.join(sorted(setting_names(kind.config)))}")


def build_model(config) -> torch.nn.Module:
    """The model of a config of any kind."""
    return next(kind for kind in KINDS.values() if type(config) is kind.config).model(config)


def one_pass(config: RunConfig) -> bool:
    """Whether the model answers in a single pass (no segments, no halting)."""
    return model_kind(config).one_pass(config.model)
