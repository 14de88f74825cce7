"""Load a trained run and run its model on puzzles: the answer after every segment, and what the
halting head says after each.

A run directory (written by ``hrm train``) holds ``config.json`` and a safetensors checkpoint.
``load_run`` rebuilds the model from the config alone (nothing is unpickled) and loads the
averaged (EMA) weights when the run kept them, since those are the weights it was evaluated
with. ``run_segments`` is the one place that turns token batches into answers, for evaluation and
for ``hrm solve`` alike; chain-of-thought runs decode with ``run_cot`` instead.

This module deliberately does not score answers (``evaluate.py``) or read puzzle text
(``solve.py``).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from baselines.cot import CoTCodec, CoTConfig
from baselines.transformer import TransformerConfig
from hrm.act import halt_confidence, wants_halt
from hrm.checkpoint import CHECKPOINT, has_checkpoint, load_checkpoint
from hrm.model import HRMConfig
from hrm.train import RunConfig, build_model, check_types, one_pass
from puzzles.base import PuzzleFamily
from puzzles.dataset import BuildSpec, DatasetError, changed_array, family_of, read_meta
from puzzles.files import read_json_object

CONFIGS = {"hrm": HRMConfig, "transformer": TransformerConfig, "cot": CoTConfig}


HALTING_FILE = "halting.json"  # the run's chosen halting threshold (eval/halting.py)


class RunError(ValueError):
    """A run directory that cannot be loaded; ``str()`` is one line naming the problem."""


@dataclass
class Run:
    path: Path
    kind: str  # "hrm", "transformer" or "cot"
    config: RunConfig
    model: torch.nn.Module
    family: PuzzleFamily
    step: int  # optimiser steps the checkpoint holds
    data: dict  # the training dataset's meta.json: family options, difficulty, seed
    # the training dataset (its test split is there), found wherever the run is evaluated
    # from; None when no copy with the recorded hashes was found, and ``data_note`` says why
    data_path: Path | None = None
    codec: CoTCodec | None = None  # chain of thought only
    # learned halting stops where the head's sigmoid passes this: the threshold chosen for
    # this checkpoint on validation puzzles (eval/halting.py), else the paper's 0.5
    halt_threshold: float = 0.5

    data_note: str = ""

    def own_data(self) -> Path:
        """The run's own dataset, or a RunError saying where it was looked for."""
        if self.data_path is None:
            raise RunError(self.data_note)
        return self.data_path

    @property
    def max_segments(self) -> int:
        """Segments per puzzle in training (1 for a model that answers in one pass)."""
        if self.kind == "cot" or one_pass(self.config):
            return 1
        return self.config.act.max_segments

    @property
    def halt_only(self) -> bool:
        return self.config.act.halt_only

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_run(path: str | Path, device: str | torch.device = "cpu", dtype: str | None = None) -> Run:
    """The model of the run in ``path``, in evaluation mode, with its family and config.

    ``dtype`` ("fp32" or "bf16"): the weights' type for inference; default: the training dtype.
    A run trained under bf16 autocast runs with bf16 weights: 1.3–1.5× faster on CPU than
    autocast, which converts every weight at every call, and the same solve rate within noise
    (docs/experiments.md)."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise RunError(f"{path} is not a training run (no config.json)")
    if not has_checkpoint(path):
        raise RunError(f"{path} has no checkpoint yet (train it first)")
    raw = read_json_object(config_file, RunError)
    try:  # everything the model is built from is checked before it is built
        kind = raw.get("model_kind", "hrm")
        if kind not in CONFIGS:
            raise ValueError(f"unknown model kind {kind!r}")
        config = RunConfig.from_dict({k: raw[k] for k in ("data", "model", "act", "train")})
        if not isinstance(raw["model_config"], dict) or not isinstance(raw["family"], dict):
            raise ValueError("model_config and family must be objects")
        if kind == "cot":  # runs from before the answer form was a setting wrote the grid
            raw["model_config"].setdefault("answer", "grid")
        check_types("model_config", CONFIGS[kind], raw["model_config"])
        model_config = CONFIGS[kind](**raw["model_config"])
        family = family_of(raw["family"])
        model = build_model(model_config)
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{config_file}: not a config this version can read ({error})") from None
    dtype = dtype or config.train.dtype
    if dtype not in DTYPES:
        raise RunError(f"dtype must be fp32 or bf16, not {dtype!r}")
    weights, trainer, info = load_checkpoint(path)
    average = {k.split("/", 1)[1]: v for k, v in trainer.items() if k.startswith("ema/")}
    if average:  # the EMA holds parameters only; buffers come from the model's own weights
        weights.update(average)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise RunError(f"{path / CHECKPOINT}: weights do not fit the config ({first})") from None
    model.to(device=device, dtype=DTYPES[dtype]).eval()
    codec = CoTCodec(family, model_config.answer) if kind == "cot" else None
    data_path, data_note = locate_data(path, raw)
    step = info["step"]
    threshold = chosen_threshold(path, step)
    return Run(path, kind, config, model, family, step, raw["family"], data_path, codec,
               0.5 if threshold is None else threshold, data_note)


def locate_data(run_dir: Path, raw: dict) -> tuple[Path | None, str]:
    """Where the run's training dataset is now, and, when it is nowhere, why.

    A run records its dataset's path absolute and relative to the run directory, and the
    dataset's hashes; runs from before record the path as given on the command line, relative
    to wherever training ran. Every place it could be is tried, and the first dataset whose
    hashes are the recorded ones is the run's, so a moved run, or one evaluated from another
    directory, finds it, and a dataset changed since is never taken for it."""
    recorded = raw.get("data_path")
    if not recorded:
        return None, f"{run_dir} records no dataset; pass --data"
    candidates = []
    if raw.get("data_path_from_run"):
        candidates.append(run_dir / raw["data_path_from_run"])
    candidates.append(Path(recorded))
    candidates.append(run_dir / "data")
    if not Path(recorded).is_absolute():
        candidates += [folder / recorded for folder in run_dir.resolve().parents]
    hashes = raw["family"].get("sha256")
    changed = None
    for candidate in candidates:
        if not (candidate / "meta.json").is_file():
            continue
        try:
            found = read_meta(candidate).get("sha256")
        except DatasetError:
            continue
        if hashes is None or found == hashes:
            return candidate, ""
        changed = changed or (candidate, found)
    if changed:
        where, found = changed
        return None, (f"the dataset at {where} is not the one {run_dir} was trained on "
                      f"({changed_array(hashes, found or {})} differs); give --data to use "
                      "another")
    return None, (f"{run_dir}'s dataset is not at {recorded} (nor beside the run); pass "
                  "--data DIR")


def fresh_split(data: dict, count: int, seed: int, difficulty: str | None = None) -> BuildSpec:
    """A test split of ``count`` new puzzles like the training data that ``data`` (a run's
    dataset meta.json) describes, drawn with ``seed`` (and from ``difficulty`` if given)."""
    options = tuple(sorted(data.get("options", {}).items()))
    return BuildSpec(data["family"], data["size"], difficulty or data["difficulty"], 0, count,
                     seed=seed, options=options)


def chosen_threshold(run_dir: Path, step: int) -> float | None:
    """The halting threshold ``halting.json`` holds for the checkpoint at ``step``; None when
    there is none, or when it was chosen for another checkpoint (training went on after)."""
    path = run_dir / HALTING_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        threshold = float(record["threshold"])
    except (ValueError, KeyError, TypeError):
        raise RunError(f"{path}: not a halting choice this version can read") from None
    if not 0 < threshold < 1:
        raise RunError(f"{path}: threshold {threshold} is not between 0 and 1")
    return threshold if record.get("step") == step else None


@dataclass
class SegmentTrace:
    """What a model did on N puzzles over S segments."""

    predictions: np.ndarray  # [N, S, L] uint8: the answer after each segment
    halts: np.ndarray  # [N, S] bool: the halting head says stop after this segment
    confidence: np.ndarray  # [N, S] float32: ``halt_confidence``, what the threshold compares

    def halted_at(self, cap: int, threshold: float | None = None) -> np.ndarray:
        """Segments each puzzle uses [N] under learned halting with at most ``cap``: the first
        segment whose head says stop, else ``cap``. ``threshold``: stop where the confidence
        passes it instead of where the run's own threshold said stop."""
        halts = (self.halts if threshold is None else self.confidence > threshold)[:, :cap].copy()
        halts[:, cap - 1] = True
        return halts.argmax(1) + 1

    def answers_at(self, used: np.ndarray) -> np.ndarray:
        """Each puzzle's answer after the segment ``used`` [N] gives it (1-based) [N, L]."""
        return self.predictions[np.arange(len(used)), used - 1]


def run_segments(
    run: Run,
    inputs: np.ndarray,
    segments: int,
    batch_size: int | None = None,
    progress=None,
    stop_at_halt: bool = False,
    streams: int | None = None,
) -> SegmentTrace:
    """Run ``segments`` segments on token rows ``inputs`` [N, L] (one pass for a one-pass
    model, whatever ``segments`` says). ``progress``: a callable given the rows done.

    ``stop_at_halt``: a puzzle stops after the first segment whose halting head says stop, and
    its place in the batch goes to the next puzzle, so the batch stays full and the time spent
    follows the segments halting uses, not ``segments``. After a puzzle stops, its trace repeats
    its last answer and confidence; ``halted_at(segments)`` is then exact, fixed-segment answers
    are not.

    ``streams``: on a CPU, this many streams (default: one per thread) take puzzles from one
    queue, each running its own batches on one thread, since the ops of a segment are too small
    to share well between threads (docs/experiments.md). A model compiled by ``torch.compile``
    runs in streams only if ``compile_run`` compiled it. ``batch_size``: default
    ``default_batch_size``."""
    if run.kind == "cot":
        raise ValueError("a chain-of-thought run decodes tokens: use run_cot")
    segments = 1 if run.max_segments == 1 else segments
    count, length = inputs.shape
    if count == 0:  # no streams to start
        return SegmentTrace(np.zeros((0, segments, length), dtype=np.uint8),
                            np.zeros((0, segments), dtype=bool),
                            np.zeros((0, segments), dtype=np.float32))
    trace = SegmentTrace(np.zeros((count, segments, length), dtype=np.uint8),
                         np.zeros((count, segments), dtype=bool),
                         np.zeros((count, segments), dtype=np.float32))
    one_stream = _segments_until_halt if stop_at_halt else _fixed_segments
    device = next(run.model.parameters()).device
    batch_size = batch_size or default_batch_size(device)
    queue = PuzzleQueue(count)
    threads = torch.get_num_threads()
    streams = min(streams or threads, -(-count // batch_size))
    if device.type != "cpu" or streams == 1:
        one_stream(run, inputs, queue, segments, batch_size, progress, trace)
        return trace
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(streams) as pool:
            jobs = [pool.submit(one_stream, run, inputs, queue, segments, batch_size, progress,
                                trace) for _ in range(streams)]
            for job in jobs:
                job.result()
    finally:
        torch.set_num_threads(threads)
    return trace


def compile_run(run: Run, streams: int | None = None, batch_size: int | None = None) -> Run:
    """A copy of ``run`` whose model runs under ``torch.compile`` (weights frozen into the
    graph, any batch size), compiled here rather than at its first batch. Compiling took 26-40 s
    for a ``cpu-small`` model on two CPU cores, so it pays only for long evaluations
    (BENCHMARKS.md).

    Inductor fixes a kernel's thread count when it writes it, and dynamo must not compile from
    two threads at once, so on a CPU the kernels are compiled here for the threads of one
    stream (``streams`` as in ``run_segments``: default one per thread)."""
    import torch._inductor.config as inductor

    if run.kind == "cot":
        raise ValueError("compiling is for models that answer in segments, not for decoding")
    inductor.freezing = True  # constants, prepacked for the CPU: right for a model not trained
    compiled = replace(run, model=torch.compile(run.model, dynamic=True))
    device = next(run.model.parameters()).device
    threads = torch.get_num_threads()
    streams = streams or threads
    batch_size = batch_size or default_batch_size(device)
    inputs = np.zeros((batch_size + 1, run.model.config.seq_len), dtype=np.uint8)
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads // streams))
    try:  # a full batch, then a batch of one, which dynamo compiles apart
        run_segments(compiled, inputs, 1, batch_size, streams=1)
    finally:
        torch.set_num_threads(threads)
    return compiled


def default_batch_size(device: torch.device) -> int:
    """Puzzles per batch when none is given. On a CPU each stream runs on one core, and batches
    of 16-32 ran 1.3-1.5× faster there than 64, whose activations outgrow the core's cache
    (docs/experiments.md); a GPU wants large batches."""
    return 32 if device.type == "cpu" else 256


class PuzzleQueue:
    """The puzzles not started yet, shared by the streams, so that a stream whose puzzles halt
    early takes more instead of idling while another finishes."""

    def __init__(self, count: int) -> None:
        self.count, self.next, self.lock = count, 0, threading.Lock()

    def take(self, most: int) -> np.ndarray:
        with self.lock:
            start = self.next
            self.next = min(self.count, start + most)
            return np.arange(start, self.next)


@torch.inference_mode()  # per thread: each stream enters it itself
def _fixed_segments(run: Run, inputs: np.ndarray, queue: PuzzleQueue, segments: int,
                    batch_size: int, progress, trace: SegmentTrace) -> None:
    device = next(run.model.parameters()).device
    while len(rows := queue.take(batch_size)):
        tokens = torch.from_numpy(inputs[rows].astype(np.int64)).to(device)
        state = run.model.initial_state(len(rows), device)
        for segment in range(segments):
            state, logits, q_values = run.model(state, tokens)
            _record(trace, rows, segment, logits, q_values, run)
        if progress:
            progress(len(rows))


def _record(trace: SegmentTrace, rows: np.ndarray, segment: np.ndarray | int,
            logits: torch.Tensor, q_values: torch.Tensor, run: Run) -> np.ndarray:
    """Store one segment's answers for puzzles ``rows``; returns where the head says halt."""
    q_values = q_values.float()
    halts = wants_halt(q_values, run.halt_only, run.halt_threshold).cpu().numpy()
    trace.predictions[rows, segment] = logits.argmax(-1).cpu().numpy()
    trace.halts[rows, segment] = halts
    trace.confidence[rows, segment] = halt_confidence(q_values, run.halt_only).cpu().numpy()
    return halts


@torch.inference_mode()
def _segments_until_halt(run: Run, inputs: np.ndarray, queue: PuzzleQueue, segments: int,
                         batch_size: int, progress, trace: SegmentTrace) -> None:
    device = next(run.model.parameters()).device
    rows = np.zeros(0, dtype=np.int64)  # the puzzle in each place of the batch
    done = np.zeros(0, dtype=np.int64)  # segments each has run
    tokens = torch.zeros(0, inputs.shape[1], dtype=torch.long, device=device)
    state = run.model.initial_state(0, device)
    while True:
        new = queue.take(batch_size - len(rows))
        if not len(new) and not len(rows):
            return
        if len(new):
            rows, done = np.concatenate([rows, new]), np.concatenate([done, np.zeros_like(new)])
            tokens = torch.cat([tokens, torch.from_numpy(inputs[new].astype(np.int64)).to(device)])
            state = state.extend(run.model.initial_state(len(new), device))
        state, logits, q_values = run.model(state, tokens)
        halts = _record(trace, rows, done, logits, q_values, run)
        done += 1
        stop = halts | (done == segments)
        for row, last in zip(rows[stop], done[stop], strict=True):
            trace.predictions[row, last:] = trace.predictions[row, last - 1]
            trace.confidence[row, last:] = trace.confidence[row, last - 1]
        if stop.any():
            keep = torch.from_numpy(~stop).to(device)
            rows, done, tokens, state = rows[~stop], done[~stop], tokens[keep], state.rows(keep)
            if progress:
                progress(int(stop.sum()))


@dataclass
class CoTAnswers:
    predictions: np.ndarray  # [N, L] uint8: the parsed answers (all zeros where none parsed)
    parsed: np.ndarray  # [N] bool: an answer could be read from the output
    finished: np.ndarray  # [N] bool: the model wrote its end token within the budget
    tokens: np.ndarray  # [N] int: tokens generated


@torch.inference_mode()
def run_cot(run: Run, inputs: np.ndarray, batch_size: int | None = None, progress=None,
            beams: int = 1) -> CoTAnswers:
    """Greedy (or ``beams``-wide beam) decoding of a chain-of-thought run on token rows
    ``inputs`` [N, L], 128 puzzles a batch unless ``batch_size`` says otherwise."""
    codec, family = run.codec, run.family
    batch_size = batch_size or 128
    count, length = inputs.shape
    out = CoTAnswers(np.zeros((count, length), dtype=np.uint8), np.zeros(count, dtype=bool),
                     np.zeros(count, dtype=bool), np.zeros(count, dtype=np.int64))
    device = next(run.model.parameters()).device
    for start in range(0, count, batch_size):
        rows = range(start, min(count, start + batch_size))
        prompts = torch.tensor([codec.prompt_tokens(inputs[r]) for r in rows], device=device)
        decoded = run.model.decode(prompts, codec.token["EOS"], beams)
        for row, result in zip(rows, decoded, strict=True):
            out.finished[row], out.tokens[row] = result.finished, len(result.tokens)
            answer = codec.answer(inputs[row], result.tokens)
            if answer is not None:
                out.parsed[row] = True
                out.predictions[row] = family.encode(answer)
        if progress:
            progress(len(rows))
    return out
