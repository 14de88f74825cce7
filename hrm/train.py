"""The trainer: data, optimiser, schedule, deep-supervision steps, evaluation, checkpoints.

A run is described by a ``RunConfig`` (sections ``data``, ``model``, ``act``, ``train``), built
from a preset, a JSON file and ``key=value`` overrides. Training is deterministic on CPU for a
given seed, and ``resume`` continues from the last checkpoint exactly as if the run had not
stopped: the checkpoint holds the weights, the optimiser moments, the ACT carry (every slot's
example and recurrent state), the RNG state and the position in the data.

Multi-GPU and multi-node: ``torchrun --nproc-per-node N -m hrm.cli train ...`` runs the same
code with DistributedDataParallel (NCCL on GPUs, gloo on CPUs). With ``train.ema`` set, evaluation
uses an exponential moving average of the weights, saved with the checkpoint; with
``train.compile`` the training steps run through ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from baselines.cot import CoTBatches, CoTCodec, CoTConfig, CoTModel, cot_step, evaluate_cot
from baselines.transformer import Transformer, TransformerConfig, matched_layers
from hrm.act import ACTConfig, Carry, act_step, new_carry, predict
from hrm.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from hrm.model import HRM, HRMConfig, State, count_parameters
from hrm.progress import progress_bar
from puzzles import make_family
from puzzles.dataset import (
    BatchLoader,
    BuildSpec,
    PuzzleDataset,
    build_dataset,
    changed_array,
    read_meta,
)
from puzzles.files import read_json_object, write_json_atomic


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss, a run directory in the way): a problem with
    what it was given, reported as one line like any bad input."""


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
    seed: int = 0
    eval_every: int = 250
    eval_segments: int | None = None  # default: act.max_segments
    eval_limit: int | None = None  # periodic evaluations on the first N test puzzles; the last
    # evaluation always uses the whole test split
    checkpoint_every: int = 250
    log_every: int = 10
    dtype: str = "fp32"  # or "bf16" (autocast)
    compile: bool = False  # torch.compile the model: ~1.3× faster steps after ~60 s compiling
    threads: int | None = None  # torch threads; default: the cores this process may use


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    # "kind" (MODEL_KINDS) and the model's config fields but vocab_size/seq_len; presets hold
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
            values = dict(raw.get(name, {}))
            known = {f.name for f in dataclasses.fields(kind)}
            for key in values:
                if key not in known:
                    raise ValueError(f"unknown config key '{name}.{key}'")
            check_types(name, kind, values)
            if name == "train" and "betas" in values:
                values["betas"] = tuple(values["betas"])
            built[name] = kind(**values)
        model = dict(raw.get("model", {}))
        known = {"kind"} | _config_keys(HRMConfig) | _config_keys(TransformerConfig)
        known |= _config_keys(CoTConfig)
        for key in model:
            if key not in known:
                raise ValueError(f"unknown config key 'model.{key}'")
        for kind in (CoTConfig, TransformerConfig, HRMConfig):  # HRM's types win when shared
            check_types("model", kind, {k: v for k, v in model.items() if k in _config_keys(kind)})
        build_config(model, vocab_size=2, seq_len=1)  # validates values early
        data = built["data"]
        if data.options and not data.path:
            try:
                make_family(data.family, data.size, **data.options)
            except TypeError:
                raise ValueError(f"data.options {sorted(data.options)} are not all options of "
                                 f"the {data.family} family") from None
        check_ranges(built)
        if built["train"].schedule not in ("constant", "cosine"):
            raise ValueError("train.schedule must be 'constant' or 'cosine', "
                             f"not {built['train'].schedule!r}")
        if built["train"].max_seconds is not None and built["train"].max_seconds <= 0:
            raise ValueError("train.max_seconds must be positive")
        if built["train"].calibrate_halting < 0:
            raise ValueError("train.calibrate_halting must be 0 (off) or a number of puzzles")
        if built["train"].dtype not in ("fp32", "bf16"):
            raise ValueError(f"train.dtype must be 'fp32' or 'bf16', not {built['train'].dtype!r}")
        return cls(model=model, **built)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as JSON when it can be) to a nested dict."""
    if "=" not in assignment or "." not in assignment.split("=", 1)[0]:
        raise ValueError(f"--set expects section.key=value, got {assignment!r}")
    dotted, text = assignment.split("=", 1)
    section, key = dotted.split(".", 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    raw.setdefault(section, {})[key] = value


MODEL_KINDS = ("hrm", "transformer", "cot")
# settings of the segment loop, which a model that answers in one pass does not run
SEGMENT_LOOP_KEYS = ("feedback", "feedback_threshold", "carry_state", "init_state_std")


def _config_keys(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind)} - {"vocab_size", "seq_len"}


def build_config(model: dict[str, Any], vocab_size: int, seq_len: int):
    """The model config that ``model`` (the run config's model section) describes.

    A transformer takes the shared fields (hidden, heads, positions, ...) and, unless ``layers``
    is given, as many layers as the HRM described would have blocks, so that the parameter
    counts match; HRM's recurrence fields do not apply to it and are dropped, and neither do
    the segment loop's (feedback, carry_state) when it answers in one pass, so that every
    preset also describes a one-pass transformer."""
    kind = model.get("kind", "hrm")
    fields = {k: v for k, v in model.items() if k != "kind"}
    if kind == "hrm":
        extra = set(fields) - _config_keys(HRMConfig)
        if extra:
            raise ValueError(f"model.{sorted(extra)[0]} is not an HRM setting")
        return HRMConfig(vocab_size=vocab_size, seq_len=seq_len, **fields)
    if kind == "transformer":
        fields.setdefault("layers", matched_layers(fields))
        fields = {k: v for k, v in fields.items() if k in _config_keys(TransformerConfig)}
        if not fields.get("refine"):
            fields = {k: v for k, v in fields.items() if k not in SEGMENT_LOOP_KEYS}
        return TransformerConfig(vocab_size=vocab_size, seq_len=seq_len, **fields)
    if kind == "cot":  # vocab_size: the codec's; seq_len: the decoding budget unless max_len
        fields.setdefault("layers", matched_layers(fields))
        if fields.get("positions") in ("grid", "sudoku"):  # a trace is a sequence, not a grid
            fields["positions"] = "learned"
        fields = {k: v for k, v in fields.items() if k in _config_keys(CoTConfig)}
        fields.setdefault("max_len", seq_len)
        return CoTConfig(vocab_size=vocab_size, **fields)
    raise ValueError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, not {kind!r}")


def build_model(config) -> torch.nn.Module:
    if isinstance(config, CoTConfig):
        return CoTModel(config)
    return HRM(config) if isinstance(config, HRMConfig) else Transformer(config)


def one_pass(config: RunConfig) -> bool:
    """Whether the model answers in a single pass (no segments, no halting)."""
    return config.model.get("kind", "hrm") == "transformer" and not config.model.get("refine")


# --- the run ----------------------------------------------------------------------------------


def prepare_data(config: DataConfig, run: Path) -> Path:
    if config.path:
        read_meta(config.path)  # a clear error now rather than deep in training
        return Path(config.path)
    path = run / "data"
    if not (path / "meta.json").is_file():
        options = tuple(sorted(config.options.items()))
        spec = BuildSpec(config.family, config.size, config.difficulty, config.train,
                         config.test, seed=config.seed, options=options)
        build_dataset(spec, path, force=path.exists())
    return path


def described_data(config: DataConfig, meta: dict[str, Any]) -> DataConfig:
    """``config`` with the fields of the dataset whose ``meta.json`` is ``meta``, for
    ``config.json``: with ``data.path`` set, the section's other fields are the preset's, which
    need not describe that dataset."""
    return DataConfig(path=config.path, family=meta["family"], size=meta["size"],
                      difficulty=meta.get("difficulty", DataConfig.difficulty),
                      train=meta["counts"].get("train", 0), test=meta["counts"].get("test", 0),
                      seed=meta.get("seed", 0), options=dict(meta.get("options", {})))


def saved_config(run: Path) -> dict[str, Any] | None:
    """The ``config.json`` a run in ``run`` wrote, or None where it has none."""
    path = Path(run) / "config.json"
    if not path.is_file():
        return None
    return read_json_object(path, TrainingError)


def saved_sections(run: Path) -> dict[str, Any] | None:
    """The config sections (data, model, act, train) a run in ``run`` was started with, or
    None where it has no ``config.json``."""
    saved = saved_config(run)
    if saved is None:
        return None
    return {name: saved[name] for name in ("data", "model", "act", "train") if name in saved}


def check_same_run(run: Path, kind: str, model_config: dict[str, Any],
                   meta: dict[str, Any]) -> None:
    """Refuse to resume ``run`` with another model or other data than it was trained with: the
    weights would not fit, or would silently go on learning something else."""
    saved = saved_config(run)
    if saved is None:
        return
    trained_kind = saved.get("model_kind", "hrm")
    if trained_kind != kind:
        raise TrainingError(f"{run} holds a {trained_kind} run, not a {kind} one; resume it "
                            f"as one (hrm train --out {run} --resume --model {trained_kind})")
    before = saved.get("model_config", {})
    model_config = json.loads(json.dumps(model_config))  # tuples as JSON keeps them: lists
    for key in sorted(set(before) | set(model_config)):
        if before.get(key) != model_config.get(key):
            raise TrainingError(
                f"{run / 'config.json'}: the run was trained with model {key}="
                f"{before.get(key)!r}, not "
                f"{model_config.get(key)!r}; resume it with its own settings "
                f"(hrm train --out {run} --resume)")
    before = saved.get("family", {}).get("sha256")
    now = meta.get("sha256") or {}
    if before not in (None, now):
        raise TrainingError(f"{run} was trained on other data than the dataset given now "
                            f"({changed_array(before, now)} differs); resume it with the "
                            "dataset it started with")


def drop_metrics_after(path: Path, step: int) -> None:
    """Remove the records a killed run logged after its last checkpoint: the resumed run logs
    those steps again, and each step must appear once."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by the kill
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def phase(config: RunConfig, step: int) -> tuple[ACTConfig, tuple[int, int] | None, int]:
    """What the step after ``step`` runs: (ACT settings, cycles override, eval segments)."""
    if one_pass(config) or step < config.train.shallow_steps:
        return dataclasses.replace(config.act, max_segments=1), (1, 1), 1
    return config.act, None, config.train.eval_segments or config.act.max_segments


def learning_rate(config: TrainConfig, step: int, seconds: float = 0.0) -> float:
    """The rate for the step after ``step``, ``seconds`` of training into the run."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        span = max(1, config.max_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        if config.max_seconds:
            progress = max(progress, min(1.0, seconds / config.max_seconds))
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return config.lr


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: PuzzleDataset,
    segments: int,
    device: torch.device | None = None,
    batch_size: int = 64,
    cycles: tuple[int, int] | None = None,
    limit: int | None = None,
) -> dict:
    """Exact solve rate and cell accuracy on a split (its first ``limit`` puzzles), running a
    fixed number of segments."""
    model.eval()
    exact = cells = 0.0
    count = min(len(dataset), limit or len(dataset))
    for start in range(0, count, batch_size):
        rows = slice(start, min(count, start + batch_size))
        inputs = torch.from_numpy(dataset.inputs[rows].astype(np.int64)).to(device)
        labels = torch.from_numpy(dataset.labels[rows].astype(np.int64)).to(device)
        predictions, _ = predict(model, inputs, segments, cycles=cycles)
        exact += (predictions == labels).all(-1).sum().item()
        cells += (predictions == labels).float().mean(-1).sum().item()
    model.train()
    count = max(1, count)
    return {"test_exact": exact / count, "test_cell_accuracy": cells / count}


def average_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def update_average(average: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    for name, p in model.named_parameters():
        average[name].lerp_(p.detach(), 1.0 - decay)


@contextlib.contextmanager
def averaged_weights(model: torch.nn.Module, average: dict[str, torch.Tensor]):
    """Temporarily load the averaged weights into ``model`` (a no-op without an average)."""
    if not average:
        yield
        return
    saved = average_of(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(average[name])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(saved[name])


def _carry_tensors(carry: Carry | None) -> dict[str, torch.Tensor]:
    if carry is None:
        return {}
    tensors = {
        "carry.z_high": carry.state.z_high, "carry.z_low": carry.state.z_low,
        "carry.inputs": carry.inputs, "carry.labels": carry.labels,
        "carry.segments": carry.segments, "carry.halted": carry.halted,
    }
    if carry.state.board is not None:
        tensors["carry.board"] = carry.state.board
    return tensors


def _carry_from(tensors: dict[str, torch.Tensor]) -> Carry | None:
    if "carry.inputs" not in tensors:
        return None
    return Carry(
        State(tensors["carry.z_high"], tensors["carry.z_low"], tensors.get("carry.board")),
        tensors["carry.inputs"], tensors["carry.labels"],
        tensors["carry.segments"], tensors["carry.halted"],
    )


@dataclass
class Distributed:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # whether this run joined the process group, so must leave it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` from every rank, in rank order (on every rank)."""
        if self.world_size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        """Leave the process group once every rank is done. A process that exits still in it
        can abort (SIGABRT) while the interpreter shuts down, with gloo's threads holding
        tensors."""
        self.barrier()
        if self.owns_group:
            # gloo's worker thread may still be releasing the last collectives, whose tensors
            # need the GIL to free; the group's destructor joins that thread while holding the
            # GIL, which deadlocked a 2-process run at exit. Sleeping lets the thread finish
            time.sleep(0.1)
            dist.destroy_process_group()


def setup_distributed() -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment, if any: NCCL on
    GPUs, gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size == 1:
        return Distributed(device=torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    gpus = torch.cuda.device_count() if cuda else 0
    if cuda and local > gpus:  # NCCL cannot put two ranks on one GPU
        raise TrainingError(f"torchrun started {local} processes on a node with {gpus} GPU(s); "
                            f"use --nproc-per-node {gpus} or fewer, or hide the GPUs "
                            "(CUDA_VISIBLE_DEVICES=) to train on CPUs with gloo")
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), world_size, local, device, owns_group)


def train(
    config: RunConfig, run: str | Path, *, resume: bool = False, progress: bool = True
) -> dict:
    """Train (or resume) the run in directory ``run``; returns the last evaluation.

    Under ``torchrun`` every process trains on its own slice of each batch order with its own
    carry (``train.batch_size`` is per process); gradients are averaged by
    DistributedDataParallel, and rank 0 alone writes files and evaluates.
    """
    run = Path(run)
    tc = config.train
    ddp = setup_distributed()
    if has_checkpoint(run) and not resume:
        raise TrainingError(f"{run} already holds a run; pass --resume to continue it")
    torch.manual_seed(tc.seed + ddp.rank)
    cores = max(1, len(_available_cores()) // ddp.local_world_size)
    torch.set_num_threads(tc.threads or cores)

    if ddp.is_main:  # one process builds the data; the others find it after the barrier
        prepare_data(config.data, run)
    ddp.barrier()
    data_path = prepare_data(config.data, run)
    # both splits are checked before the run directory is made: a damaged dataset leaves none
    train_set, test_set = PuzzleDataset(data_path, "train"), PuzzleDataset(data_path, "test")
    if not len(test_set):
        raise TrainingError(f"{data_path}: the test split holds no puzzles to evaluate on")
    if len(train_set) < tc.batch_size * ddp.world_size:
        raise TrainingError(f"the training split has {len(train_set)} puzzles, fewer than "
                            f"one batch of {tc.batch_size} per process")
    if config.model.get("positions") == "sudoku" and train_set.family.name != "sudoku":
        raise ValueError(f"model.positions=sudoku needs Sudoku data, not {train_set.family.name}")
    kind = config.model.get("kind", "hrm")
    if kind == "cot":  # sequences of puzzle, trace and answer; room for longer test traces
        codec = CoTCodec(train_set.family, config.model.get("answer", CoTConfig.answer))
        loader = CoTBatches(train_set, codec, tc.batch_size, seed=tc.seed, rank=ddp.rank,
                            world_size=ddp.world_size)
        model_config = build_config(config.model, codec.vocab_size, loader.max_len * 5 // 4)
    else:
        loader = BatchLoader(train_set, tc.batch_size, seed=tc.seed, rank=ddp.rank,
                             world_size=ddp.world_size)
        model_config = build_config(config.model, train_set.family.vocab_size,
                                    train_set.family.seq_len)
    model = build_model(model_config).to(ddp.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                                  betas=tc.betas)
    step, epoch, position, carry = 0, 0, 0, None
    trained_before = 0.0  # training seconds of earlier sessions of this run (time budgets)
    ema = average_of(model) if tc.ema else {}
    meta = train_set.meta
    if resume and has_checkpoint(run):
        check_same_run(run, kind, asdict(model_config), meta)
        weights, tensors, info = load_checkpoint(run)
        if info.get("world_size", 1) != ddp.world_size:
            raise TrainingError(f"{run} was trained with {info.get('world_size', 1)} processes; "
                                "resume it with as many")
        try:
            model.load_state_dict(weights)
            optimizer_from_tensors(optimizer, tensors, info["optimizer"])
            ema = {k.split("/", 1)[1]: v.to(ddp.device) for k, v in tensors.items()
                   if k.startswith("ema/")} or ema
            mine = {k.split("/", 1)[1]: v.to(ddp.device) for k, v in tensors.items()
                    if k.startswith(f"rank{ddp.rank}/")}
            carry = _carry_from(mine)
            torch.set_rng_state(mine["rng.torch"].cpu())
            if "rng.cuda" in mine and ddp.device.type == "cuda":  # exploration draws on the GPU
                torch.cuda.set_rng_state(mine["rng.cuda"].cpu(), ddp.device)
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "incomplete"
            raise TrainingError(f"{run / 'checkpoint'}: cannot resume from it ({reason})") from None
        step, epoch, position = info["step"], info["epoch"], info["position"]
        trained_before = float(info.get("train_seconds", 0.0))
        if ddp.is_main:
            drop_metrics_after(run / "metrics.jsonl", step)
    if ddp.is_main:
        run.mkdir(parents=True, exist_ok=True)
        described = dataclasses.replace(config, data=described_data(config.data, meta))
        write_json_atomic(run / "config.json", {
            **described.to_dict(), "data_path": str(data_path.resolve()),
            "data_path_from_run": os.path.relpath(data_path.resolve(), run.resolve()),
            "model_kind": kind, "model_config": asdict(model_config), "family": meta,
        })
    trained = model
    if ddp.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None
        )
    if tc.compile:
        trained = torch.compile(trained)

    def checkpoint() -> None:
        mine = _carry_tensors(carry)
        mine["rng.torch"] = torch.get_rng_state()
        if ddp.device.type == "cuda":
            mine["rng.cuda"] = torch.cuda.get_rng_state(ddp.device)
        every_rank = ddp.gather({k: v.cpu() for k, v in mine.items()})
        if not ddp.is_main:
            return
        tensors, settings = optimizer_to_tensors(optimizer)
        tensors.update({f"ema/{k}": v for k, v in ema.items()})
        for rank, part in enumerate(every_rank):
            tensors.update({f"rank{rank}/{k}": v for k, v in part.items()})
        info = {"step": step, "epoch": epoch, "position": position, "optimizer": settings,
                "world_size": ddp.world_size, "train_seconds": training_seconds()}
        save_checkpoint(run, model.state_dict(), tensors, info)

    autocast = torch.autocast(ddp.device.type, dtype=torch.bfloat16, enabled=tc.dtype == "bf16")
    last_eval: dict = {}
    metrics_file = (run / "metrics.jsonl").open("a") if ddp.is_main else None
    bar = progress_bar(total=None if tc.max_seconds else tc.max_steps, initial=step,
                       unit="step", disable=not (progress and ddp.is_main))
    name = {"hrm": "HRM", "transformer": "Transformer", "cot": "CoT"}[kind]
    bar.set_description(f"{name} {count_parameters(model) / 1e6:.2f}M")
    started, eval_seconds = time.perf_counter(), 0.0  # since this process started the run
    logged_at = started

    def training_seconds() -> float:
        return trained_before + time.perf_counter() - started - eval_seconds

    def finished() -> bool:
        if step >= tc.max_steps:
            return True
        if not tc.max_seconds:
            return False
        # every rank must stop at the same step: rank 0's clock decides
        out_of_time = torch.tensor(float(training_seconds() >= tc.max_seconds), device=ddp.device)
        if ddp.world_size > 1:  # in place: a copy moved to the GPU would drop rank 0's answer
            dist.broadcast(out_of_time, 0)
        return bool(out_of_time)

    done = finished()
    while not done:
        for index, (inputs, labels) in enumerate(loader.epoch(epoch)):
            if index < position:
                continue  # replaying the epoch's augmentation RNG up to where we stopped
            inputs, labels = inputs.to(ddp.device), labels.to(ddp.device)
            rate_now = learning_rate(tc, step, training_seconds())
            for group in optimizer.param_groups:
                group["lr"] = rate_now
            act_config, cycles, segments = phase(config, step)
            with autocast:
                if kind == "cot":
                    loss, metrics = cot_step(trained, inputs, labels)
                else:
                    if carry is None or step == tc.shallow_steps:
                        # each phase starts its own carry (the shallow phase's slots all end
                        # halted), staggered if asked so that segments are not in lockstep
                        stagger = act_config.max_segments if act_config.stagger else 1
                        carry = new_carry(model, inputs, labels, stagger)
                    carry, loss, metrics = act_step(trained, carry, inputs, labels, act_config,
                                                    cycles)
            if not torch.isfinite(loss):
                bar.close()
                raise TrainingError(f"loss is {loss.item()} at step {step + 1}; stopping "
                                    "(the last checkpoint is kept)")
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            if ema:
                update_average(ema, model, tc.ema)
            optimizer.zero_grad(set_to_none=True)
            step, position = step + 1, index + 1
            done = finished()
            bar.update(1)
            record = None
            if step % tc.log_every == 0:
                record = {k: round(float(v), 5) for k, v in metrics.items()}
                now = time.perf_counter()
                # example-segments per second over the last log_every steps, all processes
                rate = tc.log_every * tc.batch_size * ddp.world_size / (now - logged_at)
                logged_at = now
                record["example_segments_per_s"] = round(rate, 1)
                bar.set_postfix(loss=record["loss"], acc=record["cell_accuracy"],
                                seg=record["halted_segments"], ex_seg_s=round(rate))
            if (step % tc.eval_every == 0 or done) and ddp.is_main:
                eval_started = time.perf_counter()
                with averaged_weights(model, ema), autocast:  # evaluate in the training dtype
                    limit = None if done else tc.eval_limit
                    if kind == "cot":
                        last_eval = evaluate_cot(model, codec, test_set, limit=limit)
                    else:
                        last_eval = evaluate(model, test_set, segments, ddp.device,
                                             cycles=cycles, limit=limit)
                eval_seconds += time.perf_counter() - eval_started
                logged_at += time.perf_counter() - eval_started  # rates count training only
                record = {**(record or {}), **last_eval}
            if record and metrics_file:
                elapsed = time.perf_counter() - started
                metrics_file.write(json.dumps({"step": step, "seconds": round(elapsed, 2),
                                               "train_seconds": round(training_seconds(), 2),
                                               "lr": rate_now, **record}) + "\n")
                metrics_file.flush()
            if step % tc.checkpoint_every == 0 or done:
                checkpoint()
            if done:
                break
        else:
            epoch, position = epoch + 1, 0
    bar.close()
    if ddp.world_size > 1:
        checksums = ddp.gather(sum(float(p.detach().double().sum()) for p in model.parameters()))
        if metrics_file:
            metrics_file.write(json.dumps({"step": step, "ranks_in_sync":
                                           len(set(checksums)) == 1}) + "\n")
    if metrics_file:
        metrics_file.close()
    ddp.close()
    if ddp.is_main and tc.calibrate_halting and kind != "cot" and not one_pass(config):
        last_eval["halt_threshold"] = _calibrate(run, tc.calibrate_halting, progress)
    return last_eval


def _calibrate(run: Path, count: int, progress: bool) -> float:
    """Choose the finished run's halting threshold on ``count`` fresh puzzles."""
    from eval.halting import calibrate_halting  # eval builds on this module, so not at the top

    with progress_bar(total=count, desc="choosing the halting threshold", unit="puzzle",
              disable=not progress) as bar:
        return calibrate_halting(run, count, progress=bar.update)["threshold"]


def _available_cores() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))
