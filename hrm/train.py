"""The trainer: data, optimiser, schedule, deep-supervision steps, evaluation, checkpoints.

A run is described by a ``RunConfig`` (``hrm/config.py``). ``train`` is the loop; a ``Trainer``
holds what the loop changes (model, optimiser, carry, position in the data) and has one method
per thing the loop does. Training is deterministic on CPU for a
given seed, and ``resume`` continues from the last checkpoint exactly as if the run had not
stopped: the checkpoint holds the weights, the optimiser moments, the ACT carry (every slot's
example and recurrent state), the RNG state and the position in the data.

Multi-GPU and multi-node: ``torchrun --nproc-per-node N -m hrm.cli train ...`` runs the same
code with DistributedDataParallel (NCCL on GPUs, gloo on CPUs). With ``train.ema`` set, evaluation
uses an exponential moving average of the weights, saved with the checkpoint; with
``train.compile`` the training steps run through ``torch.compile``. The periodic evaluation
runs ``hrm/inference.py``, the code ``hrm eval`` runs.

This module deliberately does not parse settings (``hrm/config.py``) or choose a halting
threshold after training (``eval/halting.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from baselines.cot import CoTBatches, CoTCodec, CoTConfig, cot_step
from hrm.act import ACTConfig, Carry, act_step, new_carry
from hrm.checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from hrm.config import (
    DataConfig,
    RunConfig,
    TrainConfig,
    build_config,
    build_model,
    model_kind,
    one_pass,
)
from hrm.inference import answer_metrics, run_cot, run_segments
from hrm.kinds import DEFAULT_KIND, ModelKind
from hrm.model import count_parameters
from hrm.progress import progress_bar
from hrm.segment_model import State
from puzzles.dataset import (
    BatchLoader,
    BuildSpec,
    PuzzleDataset,
    build_dataset,
    changed_array,
    read_meta,
)
from puzzles.files import read_json_object, write_json_atomic
from puzzles.maze import OPEN, PATH
from puzzles.maze_targets import preferred_paths


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss, a run directory in the way): a problem with
    what it was given, reported as one line like any bad input."""


def prepare_data(config: DataConfig, run: Path, workers: int = 1) -> Path:
    """The run's dataset: ``config.path``, or one built into the run from the other fields
    (``workers`` processes; the bytes are the same whatever their number)."""
    if config.path:
        read_meta(config.path)  # a clear error now rather than deep in training
        return Path(config.path)
    path = run / "data"
    if not (path / "meta.json").is_file():
        options = tuple(sorted(config.options.items()))
        spec = BuildSpec(config.family, config.size, config.difficulty, config.train,
                         config.test, seed=config.seed, options=options)
        build_dataset(spec, path, workers=workers, force=path.exists())
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
    trained_kind = saved.get("model_kind", DEFAULT_KIND)
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


def preferred_maze_paths(inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``train.target=preferred``: the shortest path each maze's logits favour most, as the
    labels [B, L] of this segment (``puzzles.maze_targets``). A cell's score is its logit for
    being on the path against its logit for staying open."""
    batch, cells = inputs.shape
    side = math.isqrt(cells)
    scores = (logits[..., PATH] - logits[..., OPEN]).float()
    answers = preferred_paths(inputs.view(batch, side, side).cpu().numpy(),
                              scores.view(batch, side, side).cpu().numpy())
    return torch.from_numpy(answers.reshape(batch, cells)).to(inputs.device, inputs.dtype)


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


def spread_rows(count: int, limit: int | None) -> np.ndarray:
    """``limit`` of ``count`` rows spread evenly (all of them without a limit): a split built
    from a mix of tiers stores them tier by tier, so its first rows would be its easiest."""
    if limit is None or limit >= count:
        return np.arange(count)
    return np.arange(limit) * count // limit


def evaluate(model: torch.nn.Module, kind: ModelKind, dataset: PuzzleDataset, segments: int,
             cycles: tuple[int, int] | None = None, limit: int | None = None,
             codec: CoTCodec | None = None) -> dict[str, float]:
    """The rates training logs on a split (``limit`` puzzles spread evenly over it), by the
    code ``hrm eval`` runs (``hrm/inference.py``): every puzzle runs ``segments`` segments (a
    chain of thought decodes greedily). One stream, in this thread, so that autocast applies."""
    rows = spread_rows(len(dataset), limit)
    inputs = dataset.inputs[rows]
    model.eval()
    try:
        if kind.decodes:
            answers = run_cot(model, codec, dataset.family, inputs)
            return {**answer_metrics(dataset, answers.predictions, rows),
                    "test_finished": float(answers.finished.mean()),
                    "test_tokens": float(answers.tokens.mean())}
        trace = run_segments(model, inputs, segments, batch_size=64, streams=1, cycles=cycles)
        return answer_metrics(dataset, trace.predictions[:, -1], rows)
    finally:
        model.train()


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
        "carry.inputs": carry.inputs, "carry.labels": carry.labels,
        "carry.segments": carry.segments, "carry.halted": carry.halted,
    }
    tensors.update({f"carry.z{i}": z for i, z in enumerate(carry.state.z)})
    if carry.state.board is not None:
        tensors["carry.board"] = carry.state.board
    return tensors


def _carry_from(tensors: dict[str, torch.Tensor], count: int) -> Carry | None:
    """The carry a checkpoint holds, for a model of ``count`` latents."""
    if "carry.inputs" not in tensors:
        return None
    latents = []
    while f"carry.z{len(latents)}" in tensors:
        latents.append(tensors[f"carry.z{len(latents)}"])
    if not latents:  # written before latents were numbered, by HRM's names (a transformer
        # kept its one latent as z_H and zeros as z_L)
        latents = [tensors["carry.z_high"], tensors["carry.z_low"]][:count]
    return Carry(
        State(tuple(latents), tensors.get("carry.board")),
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
    run, ddp = Path(run), setup_distributed()
    if has_checkpoint(run) and not resume:
        raise TrainingError(f"{run} already holds a run; pass --resume to continue it")
    trainer = Trainer(config, run, ddp)
    if resume and has_checkpoint(run):
        trainer.load_checkpoint()
    trainer.write_config()
    trainer.wrap_model()
    trainer.open_log(progress)
    try:
        done = trainer.finished()
        while not done:
            for inputs, labels in trainer.rest_of_epoch():
                metrics = trainer.step(inputs, labels)
                done = trainer.finished()
                trainer.report(metrics, done)
                if trainer.position.step % config.train.checkpoint_every == 0 or done:
                    trainer.save_checkpoint()
                if done:
                    break
            else:
                trainer.next_epoch()
    finally:
        trainer.close_log()
    trainer.check_ranks_in_sync()
    ddp.close()
    return trainer.last_eval


@dataclass
class Position:
    """Where a run stands, saved with every checkpoint."""

    step: int = 0  # optimiser steps taken
    epoch: int = 0
    batch: int = 0  # batches of this epoch already trained
    seconds_before: float = 0.0  # training seconds of earlier sessions (time budgets)


class Trainer:
    """One run's training: its data, model, optimiser and where it stands, with one method per
    thing the loop in ``train`` does. Built in a fixed order (seed, data, model, optimiser) so
    that a seed gives the same run on a CPU."""

    def __init__(self, config: RunConfig, run: Path, ddp: Distributed) -> None:
        self.config, self.run, self.ddp = config, run, ddp
        tc = config.train
        torch.manual_seed(tc.seed + ddp.rank)
        cores = max(1, len(_available_cores()) // ddp.local_world_size)
        torch.set_num_threads(tc.threads or cores)
        self.data_path = self._prepare_data()
        self.train_set = PuzzleDataset(self.data_path, "train")
        self.test_set = PuzzleDataset(self.data_path, "test")
        self.kind = model_kind(config)
        self.target = self._answer_target()
        self.loader, self.model_config, self.codec = self._loader_and_model_config()
        self.model = build_model(self.model_config).to(ddp.device)
        if tc.init:
            self._start_from(Path(tc.init))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr,
                                           weight_decay=tc.weight_decay, betas=tc.betas)
        self.ema = average_of(self.model) if tc.ema else {}
        self.position, self.carry = Position(), None
        self.last_eval: dict = {}
        self.autocast = torch.autocast(ddp.device.type, dtype=torch.bfloat16,
                                       enabled=tc.dtype == "bf16")

    def _prepare_data(self) -> Path:
        """The dataset, built by one process (the others find it after the barrier), with both
        splits checked before the run directory is made: a damaged dataset leaves none."""
        if self.ddp.is_main:  # the hard tiers take minutes to generate: use every core
            prepare_data(self.config.data, self.run, workers=torch.get_num_threads())
        self.ddp.barrier()
        path = prepare_data(self.config.data, self.run)
        train_set, test_set = PuzzleDataset(path, "train"), PuzzleDataset(path, "test")
        if not len(test_set):
            raise TrainingError(f"{path}: the test split holds no puzzles to evaluate on")
        batch = self.config.train.batch_size
        if len(train_set) < batch * self.ddp.world_size:
            raise TrainingError(f"the training split has {len(train_set)} puzzles, fewer than "
                                f"one batch of {batch} per process")
        return path

    def _start_from(self, other: Path) -> None:
        """``train.init``: another run's weights (averaged ones where it kept them), for a model
        whose every tensor has the same name and shape."""
        try:
            weights, tensors, _ = load_checkpoint(other)
        except CheckpointError as error:
            raise TrainingError(f"train.init: {error}") from None
        averaged = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("ema/")}
        weights = {**weights, **averaged}  # the average covers parameters, not buffers
        mine = self.model.state_dict()
        for name in sorted(set(mine) | set(weights)):
            if name not in mine or name not in weights or mine[name].shape != weights[name].shape:
                raise TrainingError(f"train.init: {other} holds another model ({name} differs); "
                                    "it must have this run's model settings")
        self.model.load_state_dict(weights)

    def _answer_target(self):
        """What a segment's answer is trained towards: None for the stored labels."""
        if self.config.train.target == "label":
            return None
        if self.train_set.family.name != "maze" or self.kind.decodes:
            raise TrainingError("train.target=preferred is for mazes answered in segments "
                                f"(any shortest path is right), not {self.train_set.family.name} "
                                f"with a {self.kind.name} model")
        return preferred_maze_paths

    def _loader_and_model_config(self):
        """The batches, the model config, and the codec of a model that writes traces."""
        tc, ddp, family = self.config.train, self.ddp, self.train_set.family
        if self.kind.decodes:  # sequences of puzzle, trace and answer; room for longer traces
            codec = CoTCodec(family, self.config.model.get("answer", CoTConfig.answer))
            loader = CoTBatches(self.train_set, codec, tc.batch_size, seed=tc.seed,
                                rank=ddp.rank, world_size=ddp.world_size)
            return loader, build_config(self.config.model, codec.vocab_size,
                                        loader.max_len * 5 // 4), codec
        loader = BatchLoader(self.train_set, tc.batch_size, seed=tc.seed, rank=ddp.rank,
                             world_size=ddp.world_size)
        return loader, build_config(self.config.model, family.vocab_size, family.seq_len), None

    # --- checkpoints and files -----------------------------------------------------------

    def load_checkpoint(self) -> None:
        """Continue from the run's checkpoint: weights, optimiser, EMA, this rank's carry and
        RNG, and the position in the data."""
        run, ddp, model = self.run, self.ddp, self.model
        check_same_run(run, self.kind.name, asdict(self.model_config), self.train_set.meta)
        weights, tensors, info = load_checkpoint(run)
        if info.get("world_size", 1) != ddp.world_size:
            raise TrainingError(f"{run} was trained with {info.get('world_size', 1)} processes; "
                                "resume it with as many")
        try:
            model.load_state_dict(weights)
            optimizer_from_tensors(self.optimizer, tensors, info["optimizer"])
            self.ema = {k.split("/", 1)[1]: v.to(ddp.device) for k, v in tensors.items()
                        if k.startswith("ema/")} or self.ema
            mine = {k.split("/", 1)[1]: v.to(ddp.device) for k, v in tensors.items()
                    if k.startswith(f"rank{ddp.rank}/")}
            self.carry = _carry_from(mine, len(getattr(model, "LATENTS", ())))
            torch.set_rng_state(mine["rng.torch"].cpu())
            if "rng.cuda" in mine and ddp.device.type == "cuda":  # exploration draws on the GPU
                torch.cuda.set_rng_state(mine["rng.cuda"].cpu(), ddp.device)
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "incomplete"
            raise TrainingError(f"{run / 'checkpoint'}: cannot resume from it ({reason})") from None
        self.position = Position(info["step"], info["epoch"], info["position"],
                                 float(info.get("train_seconds", 0.0)))
        if ddp.is_main:
            drop_metrics_after(run / "metrics.jsonl", self.position.step)

    def write_config(self) -> None:
        """``config.json``: the settings, the model config and the dataset (where it is and its
        hashes), everything ``eval`` needs to rebuild the model."""
        if not self.ddp.is_main:
            return
        run, data_path, meta = self.run, self.data_path.resolve(), self.train_set.meta
        run.mkdir(parents=True, exist_ok=True)
        described = dataclasses.replace(self.config, data=described_data(self.config.data, meta))
        write_json_atomic(run / "config.json", {
            **described.to_dict(), "data_path": str(data_path),
            "data_path_from_run": os.path.relpath(data_path, run.resolve()),
            "model_kind": self.kind.name, "model_config": asdict(self.model_config),
            "family": meta,
        })

    def save_checkpoint(self) -> None:
        ddp, position = self.ddp, self.position
        mine = _carry_tensors(self.carry)
        mine["rng.torch"] = torch.get_rng_state()
        if ddp.device.type == "cuda":
            mine["rng.cuda"] = torch.cuda.get_rng_state(ddp.device)
        every_rank = ddp.gather({k: v.cpu() for k, v in mine.items()})
        if not ddp.is_main:
            return
        tensors, settings = optimizer_to_tensors(self.optimizer)
        tensors.update({f"ema/{k}": v for k, v in self.ema.items()})
        for rank, part in enumerate(every_rank):
            tensors.update({f"rank{rank}/{k}": v for k, v in part.items()})
        info = {"step": position.step, "epoch": position.epoch, "position": position.batch,
                "optimizer": settings, "world_size": ddp.world_size,
                "train_seconds": self.training_seconds()}
        save_checkpoint(self.run, self.model.state_dict(), tensors, info)

    # --- the loop ----------------------------------------------------------------------------

    def wrap_model(self) -> None:
        """``trained``: the model the steps run, under DistributedDataParallel across
        processes and ``torch.compile`` when asked; ``model`` stays the plain module that
        checkpoints and evaluation use."""
        self.trained = self.model
        if self.ddp.world_size > 1:
            device = self.ddp.device
            self.trained = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if self.config.train.compile:
            self.trained = torch.compile(self.trained)

    def open_log(self, progress: bool) -> None:
        """The metrics file, the progress bar and the clocks, as the loop starts."""
        tc, main = self.config.train, self.ddp.is_main
        self.metrics_file = (self.run / "metrics.jsonl").open("a") if main else None
        self.bar = progress_bar(total=None if tc.max_seconds else tc.max_steps,
                                initial=self.position.step, unit="step",
                                disable=not (progress and main))
        self.bar.set_description(f"{self.kind.title} "
                                 f"{count_parameters(self.model) / 1e6:.2f}M")
        self.started = self.logged_at = time.perf_counter()  # since this process started
        self.eval_seconds = 0.0

    def close_log(self) -> None:
        self.bar.close()
        if self.metrics_file:
            self.metrics_file.close()

    def training_seconds(self) -> float:
        return (self.position.seconds_before + time.perf_counter() - self.started
                - self.eval_seconds)

    def finished(self) -> bool:
        tc = self.config.train
        if self.position.step >= tc.max_steps:
            return True
        if not tc.max_seconds:
            return False
        # every rank must stop at the same step: rank 0's clock decides
        out_of_time = torch.tensor(float(self.training_seconds() >= tc.max_seconds),
                                   device=self.ddp.device)
        if self.ddp.world_size > 1:  # in place: a copy moved to the GPU would drop rank 0's
            dist.broadcast(out_of_time, 0)
        return bool(out_of_time)

    def rest_of_epoch(self):
        """The batches of the current epoch not trained yet, on the device. The ones before
        are drawn and dropped, replaying the epoch's augmentation RNG up to where it stood."""
        for index, (inputs, labels) in enumerate(self.loader.epoch(self.position.epoch)):
            if index >= self.position.batch:
                yield inputs.to(self.ddp.device), labels.to(self.ddp.device)

    def next_epoch(self) -> None:
        self.position.epoch, self.position.batch = self.position.epoch + 1, 0

    def step(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        """One optimiser step on one batch: (deep-supervision) loss, backward, update, EMA.
        Returns the step's metrics, with the learning rate it ran at."""
        tc, step = self.config.train, self.position.step
        rate_now = learning_rate(tc, step, self.training_seconds())
        for group in self.optimizer.param_groups:
            group["lr"] = rate_now
        act_config, cycles, _ = phase(self.config, step)
        with self.autocast:
            if self.kind.decodes:
                loss, metrics = cot_step(self.trained, inputs, labels)
            else:
                if self.carry is None or step == tc.shallow_steps:
                    # each phase starts its own carry (the shallow phase's slots all end halted)
                    self.carry = new_carry(self.model, inputs, labels)
                self.carry, loss, metrics = act_step(self.trained, self.carry, inputs, labels,
                                                     act_config, cycles, self.target)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss is {loss.item()} at step {step + 1}; stopping "
                                "(the last checkpoint is kept)")
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.optimizer.step()
        if self.ema:
            update_average(self.ema, self.model, tc.ema)
        self.optimizer.zero_grad(set_to_none=True)
        self.position.step, self.position.batch = step + 1, self.position.batch + 1
        return {**metrics, "lr": rate_now}

    def report(self, metrics: dict, done: bool) -> None:
        """The progress bar; every ``log_every`` steps the metrics, every ``eval_every`` (and
        at the end) an evaluation on the test split, in ``metrics.jsonl``."""
        tc, step = self.config.train, self.position.step
        self.bar.update(1)
        record = None
        if step % tc.log_every == 0:
            record = {k: round(float(v), 5) for k, v in metrics.items() if k != "lr"}
            now = time.perf_counter()
            # example-segments per second over the last log_every steps, all processes
            rate = tc.log_every * tc.batch_size * self.ddp.world_size / (now - self.logged_at)
            self.logged_at = now
            record["example_segments_per_s"] = round(rate, 1)
            self.bar.set_postfix(loss=record["loss"], acc=record["cell_accuracy"],
                                 seg=record["halted_segments"], ex_seg_s=round(rate))
        if (step % tc.eval_every == 0 or done) and self.ddp.is_main:
            record = {**(record or {}), **self.evaluate(final=done)}
        if record and self.metrics_file:
            elapsed = time.perf_counter() - self.started
            self.metrics_file.write(json.dumps({
                "step": step, "seconds": round(elapsed, 2),
                "train_seconds": round(self.training_seconds(), 2), "lr": metrics["lr"],
                **record}) + "\n")
            self.metrics_file.flush()

    def evaluate(self, final: bool) -> dict:
        """The test split's rates (``eval_limit`` puzzles spread over it until the end) under the
        averaged weights, in the training dtype; its time does not count as training."""
        started = time.perf_counter()
        _, cycles, segments = phase(self.config, self.position.step - 1)
        limit = None if final else self.config.train.eval_limit
        with averaged_weights(self.model, self.ema), self.autocast:
            self.last_eval = evaluate(self.model, self.kind, self.test_set, segments, cycles,
                                      limit, self.codec)
        self.eval_seconds += time.perf_counter() - started
        self.logged_at += time.perf_counter() - started  # rates count training only
        return self.last_eval

    def check_ranks_in_sync(self) -> None:
        """Under torchrun, a last record of whether every rank holds the same weights."""
        if self.ddp.world_size == 1:
            return
        checksums = self.ddp.gather(sum(float(p.detach().double().sum())
                                        for p in self.model.parameters()))
        if self.ddp.is_main:
            with (self.run / "metrics.jsonl").open("a") as file:
                file.write(json.dumps({"step": self.position.step,
                                       "ranks_in_sync": len(set(checksums)) == 1}) + "\n")


def _available_cores() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))
