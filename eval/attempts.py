"""Test-time attempts: run a model several times on each puzzle, each run varied, and choose one
answer by the family's rules, never by the solution.

An *attempt* is one run of a model on a puzzle, under learned halting (or a fixed number of
segments). Attempt 0 is the plain run; every later attempt is varied by
- a random symmetry of the family (``symmetry``): the puzzle is transformed before the model
  sees it and the answer transformed back (Sudoku: digit relabelling, band, stack, row and
  column permutations, transpose; mazes: the 8 rotations and reflections);
- Gaussian noise in the recurrent state after every update (``noise``, its standard
  deviation; ``layers.StateNoise``).
The two combine. Attempt ``a`` of puzzle ``p`` draws its symmetry from a generator seeded by
(seed, p, a), so it is the same attempt whatever runs beside it.

Selection (``choose``), in order: the family's rule check (``PuzzleFamily.check_answer``: a
Sudoku solution; one simple start-to-goal maze path), then the lower cost among answers that
pass (the shorter maze path), then the halting head's confidence, then the number of attempts
that gave the same answer, then the earlier attempt. Each choice records which of these set the
chosen answer apart from the best other answer (``RULES``).

Anytime: a puzzle's attempts run in waves of 1, 1, 2, 4, 8, ... attempts, so that after each
wave it has had 1, 2, 4, 8, ... of them, and it stops as soon as an attempt gives an answer
nothing can beat (``RuleCheck.best``), dropping the attempts of that wave still running. The
choice with at most k = 1, 2, 4, ... attempts is then read off one run: the choice among the
attempts numbered below k, and what they cost. ``run_all`` runs every attempt, to measure what
attempts would give beyond the first good answer (and how much they differ from each other).

All attempts run batched: the places of a batch hold (puzzle, attempt) pairs, and a place whose
attempt stops takes the next pair at once. A puzzle's next wave comes before a new puzzle, so
only about a batch of puzzles is open at a time and memory stays bounded however many puzzles
and attempts there are. On a CPU each thread runs one stream of batches over a fixed share of
the puzzles (every k-th), so the answers do not depend on thread timing.

This module deliberately does not score answers against solutions (``evaluate.py``) or read
puzzle text (``solve.py``).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from eval.runs import Run, default_batch_size
from hrm.act import halt_confidence, wants_halt
from hrm.layers import StateNoise
from puzzles.base import Grid, RuleCheck, Symmetry

MAX_ATTEMPTS = 1024  # beyond this, memory (every open puzzle keeps its answers) and time grow
# what set a chosen answer apart from the best other answer, in the order selection applies
RULES = ("single", "agreement", "rules", "shortest", "confidence", "vote", "order")


@dataclass(frozen=True)
class AttemptSettings:
    """How many attempts a puzzle may get and how they differ from the plain run."""

    count: int = 1
    symmetry: bool = True  # a random symmetry of the family per attempt after the first
    noise: float = 0.0  # standard deviation of the state noise of attempts after the first
    run_all: bool = False  # run every attempt, even after one gave an answer nothing beats
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ValueError(f"attempts must be a whole number, not {self.count!r}")
        if not 1 <= self.count <= MAX_ATTEMPTS:
            raise ValueError(f"attempts must be between 1 and {MAX_ATTEMPTS}, not {self.count}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"attempt noise must be a finite number at least 0, not "
                             f"{self.noise}")
        if self.count > 1 and not self.symmetry and self.noise == 0:
            raise ValueError("attempts after the first need something to vary them: random "
                             "symmetries or state noise (each would repeat the first attempt)")

    def record(self, max_segments: int) -> dict:
        """These settings and the segments each attempt may run, as results store them."""
        return {"count": self.count, "symmetry": self.symmetry, "noise": self.noise,
                "run_all": self.run_all, "seed": self.seed, "max_segments": max_segments}

    def describe(self) -> str:
        """``64 attempts (random symmetries, state noise 0.1; anytime)``."""
        if self.count == 1:
            return "1 attempt"
        kinds = (["random symmetries"] if self.symmetry else []) + (
            [f"state noise {self.noise:g}"] if self.noise else [])
        mode = "every attempt run" if self.run_all else "anytime"
        return f"{self.count} attempts ({', '.join(kinds)}; {mode})"


def attempt_points(count: int) -> list[int]:
    """The attempt counts read off one run: 1, 2, 4, ... and ``count``."""
    points = [1]
    while points[-1] < count:
        points.append(min(2 * points[-1], count))
    return points


@dataclass
class Finished:
    """One attempt's answer, in the puzzle's own frame (any symmetry undone)."""

    attempt: int
    answer: np.ndarray  # [L] uint8 tokens
    confidence: float  # ``halt_confidence`` where it stopped
    segments: int
    check: RuleCheck


def choose(finished: list[Finished]) -> tuple[int, str]:
    """The position in ``finished`` (sorted by attempt) of the chosen answer, and the rule
    (one of ``RULES``) that set it apart from the best different answer."""
    votes = Counter(item.answer.tobytes() for item in finished)

    def key(item: Finished) -> tuple:
        passes = item.check.passes
        return passes, -item.check.cost if passes else 0, item.confidence, \
            votes[item.answer.tobytes()]

    best = max(range(len(finished)), key=lambda i: key(finished[i]))  # the first of equals
    if len(finished) == 1:
        return best, "single"
    chosen = finished[best].answer.tobytes()
    others = [item for item in finished if item.answer.tobytes() != chosen]
    if not others:
        return best, "agreement"
    mine, rival = key(finished[best]), key(max(others, key=key))
    for rule, (a, b) in zip(("rules", "shortest", "confidence", "vote"), zip(mine, rival,
                                                                               strict=True),
                            strict=True):
        if a != b:
            return best, rule
    return best, "order"


@dataclass
class AttemptTrace:
    """What attempts gave on N puzzles, at each of P attempt counts (``points``)."""

    points: list[int]  # attempts allowed: 1, 2, 4, ..., K
    answers: np.ndarray  # [N, P, L] uint8: the answer chosen among the attempts allowed
    chosen: np.ndarray  # [N, P] int: the attempt it came from
    rule: np.ndarray  # [N, P] int8: what chose it (an index into RULES)
    passes: np.ndarray  # [N, P] bool: it passes the family's rule check
    attempts: np.ndarray  # [N, P] int: attempts started (the anytime stop saves the rest)
    segments: np.ndarray  # [N, P] int: segments those attempts ran
    distinct: np.ndarray  # [N] int: different answers among the attempts that finished
    passing: np.ndarray  # [N] int: attempts whose answer passed the rule check
    seconds: float = 0.0  # wall time of the whole run

    @classmethod
    def empty(cls, count: int, points: list[int], length: int) -> AttemptTrace:
        shape = (count, len(points))
        return cls(points, np.zeros((*shape, length), np.uint8), np.zeros(shape, np.int64),
                   np.zeros(shape, np.int8), np.zeros(shape, bool), np.zeros(shape, np.int64),
                   np.zeros(shape, np.int64), np.zeros(count, np.int64),
                   np.zeros(count, np.int64))


@dataclass(eq=False)  # compared by identity
class _Puzzle:
    """A puzzle whose attempts are under way."""

    row: int
    grid: Grid  # the puzzle, for the rule check
    next: int = 0  # the next attempt to start
    wave_end: int = 1  # this wave starts attempts up to (not including) this one
    running: int = 0
    spent: dict[int, int] = field(default_factory=dict)  # segments of every attempt started
    finished: list[Finished] = field(default_factory=list)
    done: bool = False  # start no more attempts


def run_attempts(
    run: Run,
    inputs: np.ndarray,
    settings: AttemptSettings,
    segments: int,
    halting: bool = True,
    batch_size: int | None = None,
    progress=None,
    streams: int | None = None,
) -> AttemptTrace:
    """Up to ``settings.count`` attempts on every puzzle of token rows ``inputs`` [N, L], each
    stopping where its halting head says so within ``segments`` (``halting``), or after exactly
    ``segments``. ``progress``: a callable given the puzzles finished. ``streams`` and
    ``batch_size`` as in ``runs.run_segments``."""
    if run.decodes:
        raise ValueError("attempts run models that answer in segments, not chain of thought")
    segments = 1 if run.max_segments == 1 else segments
    count, length = inputs.shape
    trace = AttemptTrace.empty(count, attempt_points(settings.count), length)
    device = next(run.model.parameters()).device
    batch_size = batch_size or default_batch_size(device)
    threads = torch.get_num_threads()
    streams = min(streams or threads, max(1, count))
    if device.type != "cpu":
        streams = 1
    started = time.perf_counter()

    def stream(index: int) -> None:
        rows = range(index, count, streams)
        _Stream(run, inputs, rows, settings, segments, halting, batch_size, progress, trace,
                index).loop()

    if streams == 1:
        stream(0)
    else:
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(streams) as pool:
                for job in [pool.submit(stream, i) for i in range(streams)]:
                    job.result()
        finally:
            torch.set_num_threads(threads)
    trace.seconds = time.perf_counter() - started
    return trace


class _Stream:
    """One stream of batches over its share of the puzzles (see the module docstring)."""

    def __init__(self, run: Run, inputs: np.ndarray, rows: range, settings: AttemptSettings,
                 segments: int, halting: bool, batch_size: int, progress, trace: AttemptTrace,
                 index: int) -> None:
        self.run, self.inputs, self.settings = run, inputs, settings
        self.segments, self.halting, self.batch_size = segments, halting, batch_size
        self.progress, self.trace = progress, trace
        self.new_rows = iter(rows)
        self.pending: deque[_Puzzle] = deque()  # puzzles with attempts of their wave to start
        self.device = next(run.model.parameters()).device
        self.generator = torch.Generator(self.device).manual_seed(settings.seed * 1009 + index)
        # the batch: one place per running attempt, with the symmetry that undoes its own
        self.places: list[tuple[_Puzzle, int, Symmetry | None]] = []
        self.done = np.zeros(0, dtype=np.int64)  # segments each place has run
        self.tokens = torch.zeros(0, inputs.shape[1], dtype=torch.long, device=self.device)
        self.std = torch.zeros(0, device=self.device)
        self.state = run.model.initial_state(0, self.device)

    @torch.inference_mode()
    def loop(self) -> None:
        while True:
            self.fill()
            if not self.places:
                return
            # without noise, the call training makes (the one a compiled graph was made for)
            extra = {"noise": StateNoise(self.std, self.generator)} if self.settings.noise else {}
            self.state, logits, q_values = self.run.model(self.state, self.tokens, **extra)
            self.done += 1
            stop = self.done >= self.segments
            if self.halting:
                threshold = self.run.halt_threshold
                stop |= wants_halt(q_values, self.run.halt_only, threshold).cpu().numpy()
            if stop.any():
                self.finish(np.flatnonzero(stop), logits, q_values)

    def fill(self) -> None:
        """Start attempts in the free places: the next of a puzzle's wave, else a new puzzle."""
        new: list[tuple[_Puzzle, int, Symmetry | None]] = []
        while len(self.places) + len(new) < self.batch_size:
            if not self.pending:
                row = next(self.new_rows, None)
                if row is None:
                    break
                grid = self.run.family.decode(self.inputs[row])
                self.pending.append(_Puzzle(row, grid))
            puzzle = self.pending[0]
            attempt = puzzle.next
            puzzle.next += 1
            puzzle.running += 1
            puzzle.spent[attempt] = 0
            if puzzle.next == puzzle.wave_end:
                self.pending.popleft()
            new.append((puzzle, attempt, self.symmetry(puzzle.row, attempt)))
        if not new:
            return
        tokens = np.stack([self.inputs[p.row] if s is None else s.apply(self.inputs[p.row])
                           for p, _, s in new])
        new = [(p, a, None if s is None else s.inverse()) for p, a, s in new]  # for answers
        std = [self.settings.noise if attempt > 0 else 0.0 for _, attempt, _ in new]
        self.places += new
        self.done = np.concatenate([self.done, np.zeros(len(new), dtype=np.int64)])
        self.tokens = torch.cat([self.tokens, torch.from_numpy(tokens.astype(np.int64))
                                 .to(self.device)])
        self.std = torch.cat([self.std, torch.tensor(std, device=self.device)])
        self.state = self.state.extend(self.run.model.initial_state(len(new), self.device))

    def symmetry(self, row: int, attempt: int) -> Symmetry | None:
        if attempt == 0 or not self.settings.symmetry:
            return None
        rng = np.random.default_rng([self.settings.seed, row, attempt])
        return self.run.family.random_symmetry(rng)

    def finish(self, places: np.ndarray, logits: torch.Tensor, q_values: torch.Tensor) -> None:
        """Record the attempts in ``places`` that stopped, and drop them from the batch with
        any other attempt of a puzzle that is now done."""
        family = self.run.family
        answers = logits[torch.from_numpy(places).to(self.device)].argmax(-1).cpu().numpy()
        confidence = halt_confidence(q_values.float(), self.run.halt_only).cpu().numpy()
        leaving = set(places.tolist())
        for place, answer in zip(places, answers.astype(np.uint8), strict=True):
            puzzle, attempt, undo = self.places[place]
            if undo is not None:
                answer = undo.apply(answer)
            check = family.check_answer(puzzle.grid, family.decode(answer))
            puzzle.spent[attempt] = int(self.done[place])
            puzzle.running -= 1
            puzzle.finished.append(Finished(attempt, answer, float(confidence[place]),
                                            int(self.done[place]), check))
            if puzzle.done:
                pass  # an attempt of this batch already ended it; this answer is kept too
            elif check.best and not self.settings.run_all:
                self.stop_puzzle(puzzle, leaving)
            elif puzzle.running == 0 and puzzle.next == puzzle.wave_end:
                if puzzle.next < self.settings.count:  # the next wave: as many again
                    puzzle.wave_end = min(2 * puzzle.next, self.settings.count)
                    self.pending.append(puzzle)
                else:
                    puzzle.done = True
            if puzzle.done and puzzle.running == 0:
                self.record(puzzle)
        keep = np.array([i not in leaving for i in range(len(self.places))], dtype=bool)
        self.places = [p for p, k in zip(self.places, keep, strict=True) if k]
        self.done = self.done[keep]
        index = torch.from_numpy(keep).to(self.device)
        self.tokens, self.std, self.state = self.tokens[index], self.std[index], \
            self.state.rows(index)

    def stop_puzzle(self, puzzle: _Puzzle, leaving: set[int]) -> None:
        """End ``puzzle``: no more attempts start, and its attempts still running leave the
        batch (their segments still count). Those stopping in this same segment are recorded
        by ``finish``."""
        puzzle.done = True
        if puzzle in self.pending:
            self.pending.remove(puzzle)
        for place, (other, attempt, _) in enumerate(self.places):
            if other is puzzle and place not in leaving:
                puzzle.spent[attempt] = int(self.done[place])
                puzzle.running -= 1
                leaving.add(place)

    def record(self, puzzle: _Puzzle) -> None:
        """The choice at every attempt count, from a puzzle whose attempts are over."""
        trace, row = self.trace, puzzle.row
        finished = sorted(puzzle.finished, key=lambda item: item.attempt)
        for index, allowed in enumerate(trace.points):
            among = [item for item in finished if item.attempt < allowed]
            best, rule = choose(among)
            trace.answers[row, index] = among[best].answer
            trace.chosen[row, index] = among[best].attempt
            trace.rule[row, index] = RULES.index(rule)
            trace.passes[row, index] = among[best].check.passes
            trace.attempts[row, index] = sum(1 for a in puzzle.spent if a < allowed)
            trace.segments[row, index] = sum(s for a, s in puzzle.spent.items() if a < allowed)
        trace.distinct[row] = len({item.answer.tobytes() for item in finished})
        trace.passing[row] = sum(item.check.passes for item in finished)
        if self.progress:
            self.progress(1)
