"""Running a model on puzzles and grading its answers: the one path from token rows to solve
rates, used by training's periodic evaluation and by ``hrm eval``, ``hrm solve`` and attempts
alike, so that a metric means the same wherever it is reported.

``run_segments`` runs a model that answers in segments and keeps the answer and the halting
head's verdict after every segment; ``run_cot`` decodes a chain-of-thought model; ``graded``
says which answers are solutions (exact, or valid for the family's rules: a maze may have
several shortest paths) and ``answer_metrics`` gives the rates training logs.

This module deliberately does not load runs (``eval/runs.py``), choose among attempts
(``eval/attempts.py``) or report (``eval/``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from baselines.cot import CoTCodec
from hrm.act import halt_confidence, wants_halt
from puzzles.base import PuzzleFamily
from puzzles.dataset import PuzzleDataset


@dataclass(frozen=True)
class Halting:
    """When a model's halting head says stop: ``halt_only``, the rule of a model trained
    without the continue target; ``threshold``, the confidence to pass (the paper's 0.5)."""

    halt_only: bool = False
    threshold: float = 0.5


@dataclass
class SegmentTrace:
    """What a model did on N puzzles over S segments."""

    predictions: np.ndarray  # [N, S, L] uint8: the answer after each segment
    halts: np.ndarray  # [N, S] bool: the halting head says stop after this segment
    confidence: np.ndarray  # [N, S] float32: ``halt_confidence``, what the threshold compares

    @classmethod
    def empty(cls, count: int, segments: int, length: int) -> SegmentTrace:
        return cls(np.zeros((count, segments, length), dtype=np.uint8),
                   np.zeros((count, segments), dtype=bool),
                   np.zeros((count, segments), dtype=np.float32))

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


def default_batch_size(device: torch.device) -> int:
    """Puzzles per batch when none is given. On a CPU each stream runs on one core, and batches
    of 16-32 ran 1.3-1.5× faster there than 64, whose activations outgrow the core's cache
    (docs/experiments.md); a GPU wants large batches."""
    return 32 if device.type == "cpu" else 256


def run_segments(
    model: torch.nn.Module,
    inputs: np.ndarray,
    segments: int,
    halting: Halting = Halting(),
    batch_size: int | None = None,
    progress=None,
    stop_at_halt: bool = False,
    streams: int | None = None,
    cycles: tuple[int, int] | None = None,
) -> SegmentTrace:
    """Run ``segments`` segments of ``model`` on token rows ``inputs`` [N, L]. ``progress``: a
    callable given the rows done. ``cycles``: the (h_cycles, l_cycles) each segment runs, if
    not the model's own (training's shallow phase).

    ``stop_at_halt``: a puzzle stops after the first segment whose halting head says stop, and
    its place in the batch goes to the next puzzle, so the batch stays full and the time spent
    follows the segments halting uses, not ``segments``. After a puzzle stops, its trace repeats
    its last answer and confidence; ``halted_at(segments)`` is then exact, fixed-segment answers
    are not.

    ``streams``: on a CPU, this many streams (default: one per thread) take puzzles from one
    queue, each running its own batches on one thread, since the ops of a segment are too small
    to share well between threads (docs/experiments.md). Threads do not inherit autocast: under
    it, run one stream. ``batch_size``: default ``default_batch_size``."""
    count, length = inputs.shape
    trace = SegmentTrace.empty(count, segments, length)
    if count == 0:  # no streams to start
        return trace
    device = next(model.parameters()).device
    batch_size = batch_size or default_batch_size(device)
    queue = PuzzleQueue(count)
    threads = torch.get_num_threads()
    streams = min(streams or threads, -(-count // batch_size))

    def one_stream() -> None:
        if stop_at_halt:
            _segments_until_halt(model, halting, inputs, queue, segments, batch_size, progress,
                                 trace)
        else:
            _fixed_segments(model, halting, inputs, queue, segments, batch_size, progress,
                            trace, cycles)

    if device.type != "cpu" or streams == 1:
        one_stream()
        return trace
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(streams) as pool:
            for job in [pool.submit(one_stream) for _ in range(streams)]:
                job.result()
    finally:
        torch.set_num_threads(threads)
    return trace


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
def _fixed_segments(model, halting: Halting, inputs: np.ndarray, queue: PuzzleQueue,
                    segments: int, batch_size: int, progress, trace: SegmentTrace,
                    cycles: tuple[int, int] | None) -> None:
    device = next(model.parameters()).device
    while len(rows := queue.take(batch_size)):
        tokens = torch.from_numpy(inputs[rows].astype(np.int64)).to(device)
        state = model.initial_state(len(rows), device)
        for segment in range(segments):
            # without cycles, the call every other path makes (the one a compiled graph has)
            extra = () if cycles is None else (cycles,)
            state, logits, q_values = model(state, tokens, *extra)
            _record(trace, rows, segment, logits, q_values, halting)
        if progress:
            progress(len(rows))


def _record(trace: SegmentTrace, rows: np.ndarray, segment: np.ndarray | int,
            logits: torch.Tensor, q_values: torch.Tensor, halting: Halting) -> np.ndarray:
    """Store one segment's answers for puzzles ``rows``; returns where the head says halt."""
    q_values = q_values.float()
    halts = wants_halt(q_values, halting.halt_only, halting.threshold).cpu().numpy()
    trace.predictions[rows, segment] = logits.argmax(-1).cpu().numpy()
    trace.halts[rows, segment] = halts
    trace.confidence[rows, segment] = halt_confidence(q_values, halting.halt_only).cpu().numpy()
    return halts


@torch.inference_mode()
def _segments_until_halt(model, halting: Halting, inputs: np.ndarray, queue: PuzzleQueue,
                         segments: int, batch_size: int, progress, trace: SegmentTrace) -> None:
    device = next(model.parameters()).device
    rows = np.zeros(0, dtype=np.int64)  # the puzzle in each place of the batch
    done = np.zeros(0, dtype=np.int64)  # segments each has run
    tokens = torch.zeros(0, inputs.shape[1], dtype=torch.long, device=device)
    state = model.initial_state(0, device)
    while True:
        new = queue.take(batch_size - len(rows))
        if not len(new) and not len(rows):
            return
        if len(new):
            rows, done = np.concatenate([rows, new]), np.concatenate([done, np.zeros_like(new)])
            tokens = torch.cat([tokens, torch.from_numpy(inputs[new].astype(np.int64)).to(device)])
            state = state.extend(model.initial_state(len(new), device))
        state, logits, q_values = model(state, tokens)
        halts = _record(trace, rows, done, logits, q_values, halting)
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
def run_cot(model: torch.nn.Module, codec: CoTCodec, family: PuzzleFamily, inputs: np.ndarray,
            batch_size: int | None = None, progress=None, beams: int = 1) -> CoTAnswers:
    """Greedy (or ``beams``-wide beam) decoding of a chain-of-thought model on token rows
    ``inputs`` [N, L], 128 puzzles a batch unless ``batch_size`` says otherwise."""
    batch_size = batch_size or 128
    count, length = inputs.shape
    out = CoTAnswers(np.zeros((count, length), dtype=np.uint8), np.zeros(count, dtype=bool),
                     np.zeros(count, dtype=bool), np.zeros(count, dtype=np.int64))
    device = next(model.parameters()).device
    for start in range(0, count, batch_size):
        rows = range(start, min(count, start + batch_size))
        prompts = torch.tensor([codec.prompt_tokens(inputs[r]) for r in rows], device=device)
        decoded = model.decode(prompts, codec.token["EOS"], beams)
        for row, result in zip(rows, decoded, strict=True):
            out.finished[row], out.tokens[row] = result.finished, len(result.tokens)
            answer = codec.answer(inputs[row], result.tokens)
            if answer is not None:
                out.parsed[row] = True
                out.predictions[row] = family.encode(answer)
        if progress:
            progress(len(rows))
    return out


def graded(dataset: PuzzleDataset, predictions: np.ndarray, rows: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(solved, exact) per puzzle [N] bool for answers [N, L] to the puzzles ``rows`` of
    ``dataset`` (default: its first N). An exact answer is solved; any other is graded by the
    family's rules, since a maze may have several shortest paths."""
    if rows is None:
        rows = np.arange(len(predictions))
    labels = dataset.labels[rows]
    exact = (predictions == labels).all(-1)
    solved = exact.copy()
    family = dataset.family
    for at in np.flatnonzero(~exact):
        puzzle = family.decode(dataset.inputs[rows[at]])
        solved[at] = family.grade(puzzle, family.decode(predictions[at])).solved
    return solved, exact


def answer_metrics(dataset: PuzzleDataset, predictions: np.ndarray, rows: np.ndarray
                   ) -> dict[str, float]:
    """The rates training logs for answers [N, L] to the puzzles ``rows`` of ``dataset``:
    solved and exact (as ``hrm eval`` counts them) and cell accuracy."""
    solved, exact = graded(dataset, predictions, rows)
    cells = (predictions == dataset.labels[rows]).mean(-1)
    return {"test_solved": float(solved.mean()), "test_exact": float(exact.mean()),
            "test_cell_accuracy": float(cells.mean())}
