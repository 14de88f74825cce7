"""The chain-of-thought baseline: a causal transformer that reads a puzzle, writes our solver's
trace (``baselines/traces.py``), then its answer, one token at a time.

Sequence: ``puzzle cells, SEP, trace, EOS``. The cells use the family's own tokens; the trace has
tokens of its own (Sudoku: a reason, a row, a column and a digit per placement, BACKTRACK alone;
maze: one move per step). The trace is the answer: replayed on the puzzle, it fills every blank
(Sudoku) or draws the route (maze), so the answer is read from it rather than written out again,
which would spend most of a sequence, and most of the training signal, on copying the puzzle.
``answer="grid"`` (the ablation) writes ``ANSWER`` and the answer's cells after the trace, and
reads the answer from those. Training is next-token prediction on everything after the puzzle.
Decoding runs from ``puzzle, SEP`` with a KV cache, greedily or by sampling, up to a hard token
budget; an output without a well-formed answer counts as unsolved, as does one that ran out of
budget.

This module deliberately does not grade: the family's grader does, on the decoded answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.traces import (
    BACKTRACK,
    GUESS,
    HIDDEN,
    MOVES,
    NAKED,
    Placement,
    apply_maze_route,
    apply_sudoku_trace,
    maze_route,
    sudoku_trace,
)
from baselines.transformer import HRM_DEPTH, matched_layers
from hrm.layers import Block, KVCache, Linear, TokenEmbedding, rotary_for
from hrm.segment_model import setting_names
from puzzles.base import Grid, PuzzleFamily, Symmetry
from puzzles.maze import GOAL, PATH, START

SPECIAL = ("SEP", "ANSWER", "EOS")
_MOVE_NAMES = {step: name for name, step in MOVES.items()}
REASONS = (NAKED, HIDDEN, GUESS, BACKTRACK)
ANSWER_FORMS = ("trace", "grid")  # the answer read from the trace, or written after it
BUCKET_WINDOW = 8  # batches sorted by length together (CoTBatches)


class CoTCodec:
    """Token sequences for one puzzle family (Sudoku or maze), with the answer read from the
    trace (``answer="trace"``) or written as a grid after it (``"grid"``)."""

    def __init__(self, family: PuzzleFamily, answer: str = "trace") -> None:
        if answer not in ANSWER_FORMS:
            raise ValueError(f"answer must be 'trace' or 'grid', not {answer!r}")
        self.family, self.answer_form = family, answer
        self.cell_tokens = family.vocab_size  # 0 .. vocab_size - 1: the family's (0 = padding)
        names = list(SPECIAL)
        if family.name == "sudoku":
            n = family.size
            rows, cols = [f"R{i}" for i in range(n)], [f"C{i}" for i in range(n)]
            digits = [f"D{d}" for d in range(1, n + 1)]
            names += list(REASONS) + rows + cols + digits
            self._rows, self._cols, self._digits = set(rows), set(cols), set(digits)
        elif family.name == "maze":
            names += list(MOVES)
        else:
            raise ValueError(f"no chain-of-thought traces for the {family.name} family")
        self.token = {name: self.cell_tokens + i for i, name in enumerate(names)}
        self.name = {token: name for name, token in self.token.items()}
        self.vocab_size = self.cell_tokens + len(names)

    # A trace is kept as events on flat cells, so a symmetry of the puzzle maps it cheaply:
    # Sudoku (reason, cell, digit token), cell -1 for BACKTRACK; maze the cells walked, S first.
    def events(self, puzzle: Grid, solution: Grid) -> list[tuple[str, int, int]] | list[int]:
        n = self.family.size
        if self.family.name == "maze":
            return _walk(np.asarray(solution)) if solution is not None else _route_cells(puzzle)
        trace = sudoku_trace(puzzle, self.family.box_rows, self.family.box_cols)
        return [(s.reason, s.row * n + s.col if s.reason != BACKTRACK else -1, s.digit + 1)
                for s in trace]

    def map_events(self, events: list, symmetry: Symmetry) -> list:
        """The events of the puzzle ``symmetry`` maps this one to."""
        destination = np.argsort(symmetry.cell_perm)  # source cell -> output cell
        if self.family.name == "maze":
            return [int(destination[cell]) for cell in events]
        return [(reason, int(destination[cell]) if cell >= 0 else -1,
                 int(symmetry.value_map[token])) for reason, cell, token in events]

    def trace_tokens(self, events: list) -> list[int]:
        n = self.family.size
        if self.family.name == "maze":
            steps = zip(events, events[1:], strict=False)
            return [self.token[_MOVE_NAMES[(b // n - a // n, b % n - a % n)]] for a, b in steps]
        tokens = []
        for reason, cell, token in events:
            tokens.append(self.token[reason])
            if reason != BACKTRACK:
                tokens += [self.token[f"R{cell // n}"], self.token[f"C{cell % n}"],
                           self.token[f"D{token - 1}"]]
        return tokens

    def prompt_tokens(self, puzzle_tokens: np.ndarray) -> list[int]:
        return [int(t) for t in puzzle_tokens] + [self.token["SEP"]]

    def prompt(self, puzzle: Grid) -> list[int]:
        return self.prompt_tokens(self.family.encode(puzzle))

    def sequence(self, puzzle_tokens: np.ndarray, answer_tokens: np.ndarray, events: list
                 ) -> list[int]:
        """The whole training sequence: prompt, trace, (ANSWER, answer cells,) EOS."""
        written = []
        if self.answer_form == "grid":
            written = [self.token["ANSWER"]] + [int(t) for t in answer_tokens]
        return (self.prompt_tokens(puzzle_tokens) + self.trace_tokens(events) + written
                + [self.token["EOS"]])

    def encode(self, puzzle: Grid, solution: Grid) -> list[int]:
        encode = self.family.encode
        return self.sequence(encode(puzzle), encode(solution), self.events(puzzle, solution))

    def answer(self, puzzle_tokens: np.ndarray, generated: list[int]) -> Grid | None:
        """The answer in a continuation ``generated`` of the prompt of ``puzzle_tokens``, or
        None when the output is not well formed: it must end at its first EOS, and hold a trace
        of whole steps (and, for ``answer="grid"``, ANSWER and exactly one grid of cells)."""
        eos = self.token["EOS"]
        if eos not in generated or generated.index(eos) != len(generated) - 1:
            return None
        if self.answer_form == "grid":
            return self._written_answer(generated[:-1])
        steps = self._parse_trace(generated[:-1])
        if steps is None:
            return None
        puzzle = self.family.decode(np.asarray(puzzle_tokens))
        replay = apply_maze_route if self.family.name == "maze" else apply_sudoku_trace
        try:
            return replay(puzzle, steps)
        except ValueError:  # a route through a wall, a BACKTRACK with no guess to undo
            return None

    def _parse_trace(self, tokens: list[int]) -> list | None:
        """Maze: the move names; Sudoku: the placements. None if a step is malformed."""
        names = [self.name.get(t) for t in tokens]
        if self.family.name == "maze":
            return names if all(name in MOVES for name in names) else None
        steps, i = [], 0
        while i < len(names):
            if names[i] == BACKTRACK:
                steps.append(Placement(BACKTRACK))
                i += 1
                continue
            reason, row, col, digit = (names[i : i + 4] + [""] * 4)[:4]
            well_formed = (reason in (NAKED, HIDDEN, GUESS) and row in self._rows
                           and col in self._cols and digit in self._digits)
            if not well_formed:
                return None
            steps.append(Placement(reason, int(row[1:]), int(col[1:]), int(digit[1:])))
            i += 4
        return steps

    def _written_answer(self, tokens: list[int]) -> Grid | None:
        """The grid written after ANSWER (the ``grid`` form), or None."""
        if self.token["ANSWER"] not in tokens:
            return None
        body = tokens[tokens.index(self.token["ANSWER"]) + 1 :]
        if len(body) != self.family.seq_len or any(not 0 < t < self.cell_tokens for t in body):
            return None
        return self.family.decode(np.array(body))


def _route_cells(puzzle: Grid) -> list[int]:
    """Flat cells of the solver's route from S to G."""
    n = puzzle.shape[1]
    r, c = (int(v) for v in np.argwhere(np.asarray(puzzle) == START)[0])
    cells = [r * n + c]
    for move in maze_route(puzzle):
        r, c = r + MOVES[move][0], c + MOVES[move][1]
        cells.append(r * n + c)
    return cells


def _walk(solution: np.ndarray) -> list[int]:
    """Flat cells of the path an answer grid draws, from S to G. With several shortest paths
    the answer picks one, and the trace must walk that one."""
    n = solution.shape[1]
    r, c = (int(v) for v in np.argwhere(solution == START)[0])
    cells, seen = [r * n + c], {(r, c)}
    while solution[r, c] != GOAL:
        for dr, dc in MOVES.values():
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < solution.shape[0] and 0 <= nc < n
            if inside and (nr, nc) not in seen and solution[nr, nc] in (PATH, GOAL):
                r, c = nr, nc
                break
        else:
            raise ValueError("the answer grid draws no path from S to G")
        seen.add((r, c))
        cells.append(r * n + c)
    return cells


@dataclass
class CoTConfig:
    vocab_size: int
    max_len: int  # longest sequence, prompt included: the decoding budget
    hidden: int = 128
    heads: int = 4
    expansion: float = 4.0
    layers: int = 4
    positions: str = "learned"  # "learned" or "rope"
    answer: str = "trace"  # read from the trace, or written as a grid after it ("grid")

    def __post_init__(self) -> None:
        if self.positions not in ("learned", "rope"):
            raise ValueError(f"positions must be 'learned' or 'rope', not {self.positions!r}")
        if self.answer not in ANSWER_FORMS:
            raise ValueError(f"answer must be 'trace' or 'grid', not {self.answer!r}")
        for name in ("hidden", "heads", "layers", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def cot_drops(settings: dict) -> set[str]:
    """The settings of a run's model section that a chain-of-thought model ignores: all but its
    own, except HRM's layer counts, which set its depth while ``layers`` is not given."""
    dropped = set(settings) - setting_names(CoTConfig)
    return dropped - set(HRM_DEPTH) if "layers" not in settings else dropped


def cot_config(settings: dict, vocab_size: int, seq_len: int) -> CoTConfig:
    """The config a run's model section (``settings``, without ``kind``) describes:
    ``vocab_size`` is the codec's and ``seq_len`` the decoding budget unless ``max_len`` is
    given. As for the transformer, the depth matches the HRM a preset describes and its other
    settings are dropped; grid positions, and none (which leans on the grid convolution a CoT
    model lacks), become learned ones, since a trace is a sequence, not a grid."""
    dropped = cot_drops(settings) | set(HRM_DEPTH)
    kept = {k: v for k, v in settings.items() if k not in dropped}
    kept.setdefault("layers", matched_layers(settings))
    if kept.get("positions") in ("grid", "none"):
        kept["positions"] = "learned"
    kept.setdefault("max_len", seq_len)
    return CoTConfig(vocab_size=vocab_size, **kept)


@dataclass
class Decoded:
    tokens: list[int]  # generated after the prompt
    finished: bool  # wrote EOS within the budget


class CoTModel(nn.Module):
    def __init__(self, config: CoTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.hidden, config.max_len,
                                    config.positions)
        self.rotary = rotary_for(config.positions, config.hidden, config.heads, config.max_len)
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.expansion, causal=True)
            for _ in range(config.layers)
        )
        self.output_head = Linear(config.hidden, config.vocab_size)

    def forward(
        self, tokens: torch.Tensor, caches: list[KVCache] | None = None
    ) -> torch.Tensor:
        """Next-token logits [B, L, V] for ``tokens`` [B, L] (after what ``caches`` hold)."""
        offset = caches[0].length if caches else 0
        x = self.embed(tokens, offset)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rotary, caches[i] if caches else None)
        return self.output_head(x)

    @torch.no_grad()
    def generate(
        self,
        prompts: torch.Tensor,
        eos: int,
    ) -> list[Decoded]:
        """Greedy continuation of each prompt [B, P] (equal lengths) until EOS or the
        ``max_len`` budget."""
        batch, length = prompts.shape
        caches = [KVCache() for _ in self.blocks]
        logits = self(prompts, caches)[:, -1]
        out = [[] for _ in range(batch)]
        done = torch.zeros(batch, dtype=torch.bool, device=prompts.device)
        for _ in range(self.config.max_len - length):
            token = logits.argmax(-1)
            for b, (t, d) in enumerate(zip(token.tolist(), done.tolist(), strict=True)):
                if not d:
                    out[b].append(t)
            done |= token == eos
            if bool(done.all()):
                break
            logits = self(token[:, None], caches)[:, -1]
        return [Decoded(tokens, bool(d)) for tokens, d in zip(out, done, strict=True)]

    def decode(self, prompts: torch.Tensor, eos: int, beams: int = 1) -> list[Decoded]:
        """Greedy decoding, or beam search with ``beams`` > 1."""
        if beams > 1:
            return self.beam_search(prompts, eos, beams)
        return self.generate(prompts, eos)

    @torch.no_grad()
    def beam_search(self, prompts: torch.Tensor, eos: int, beams: int) -> list[Decoded]:
        """The most likely continuation of each prompt [B, P] that ``beams`` hypotheses per
        prompt find, within the ``max_len`` budget. A hypothesis that wrote EOS keeps its score
        and stops growing; scores are summed log-probabilities (no length normalisation: a
        trace is as long as its puzzle needs)."""
        batch, length = prompts.shape
        caches = [KVCache() for _ in self.blocks]
        logits = self(prompts.repeat_interleave(beams, 0), caches)[:, -1]  # [B*K, V]
        vocab = logits.shape[-1]
        device = prompts.device
        scores = torch.full((batch, beams), float("-inf"), device=device)
        scores[:, 0] = 0.0  # all hypotheses start identical: grow only the first at step one
        history = torch.zeros(batch * beams, 0, dtype=torch.long, device=device)
        done = torch.zeros(batch * beams, dtype=torch.bool, device=device)
        for _ in range(self.config.max_len - length):
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            if bool(done.any()):  # a finished hypothesis only pads, at no cost
                log_probs[done] = float("-inf")
                log_probs[done, eos] = 0.0
            total = (scores.view(-1, 1) + log_probs).view(batch, beams * vocab)
            scores, index = total.topk(beams, dim=-1)  # [B, K]
            source = (torch.arange(batch, device=device)[:, None] * beams + index // vocab).view(-1)
            token = (index % vocab).view(-1)
            for cache in caches:
                cache.keys, cache.values = cache.keys[source], cache.values[source]
            history = torch.cat([history[source], token[:, None]], dim=1)
            done = done[source] | (token == eos)
            if bool(done.all()):
                break
            logits = self(token[:, None], caches)[:, -1]
        best = scores.argmax(-1) + torch.arange(batch, device=device) * beams
        decoded = []
        for row in best.tolist():
            tokens = history[row].tolist()
            finished = eos in tokens
            decoded.append(Decoded(tokens[:tokens.index(eos) + 1] if finished else tokens,
                                   finished))
        return decoded


# --- training data and steps ------------------------------------------------------------------


class CoTBatches:
    """Shuffled, augmented training sequences for the chain-of-thought model, seeded like
    ``puzzles.dataset.BatchLoader`` (by seed, epoch and rank).

    Traces are solved once per training puzzle (our solver is plain Python); each batch draws
    a random symmetry per puzzle and maps puzzle, trace and answer through it. Batches are
    ``(inputs [B, T], targets [B, T])``: the sequence without its last token, and the next
    token wherever it belongs to the trace or answer (-100 on the prompt and padding).

    A batch is padded to its longest sequence, and traces that guess run to 4× the median
    (9×9 `medium`: 348 tokens at the median, 1,280 at most), so batches are cut from windows of
    ``BUCKET_WINDOW`` batches' worth of shuffled puzzles sorted by length, and then shuffled.
    On `medium` that makes 80% of the tokens computed real, against 48% for plain batches."""

    def __init__(
        self,
        dataset,
        codec: CoTCodec,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment: bool = True,
    ) -> None:
        family = dataset.family
        self.dataset, self.codec, self.batch_size = dataset, codec, batch_size
        self.seed, self.rank, self.world_size, self.augment = seed, rank, world_size, augment
        self.events = [
            codec.events(family.decode(dataset.inputs[i]), family.decode(dataset.labels[i]))
            for i in range(len(dataset))
        ]
        self.prompt_len = family.seq_len + 1
        # a symmetry maps a trace step for step, so a sequence's length is its puzzle's
        self.lengths = np.array([len(self._sequence(i, None)) for i in range(len(dataset))])
        self.max_len = int(self.lengths.max())

    def _sequence(self, row: int, symmetry: Symmetry | None) -> list[int]:
        puzzle, answer = self.dataset.inputs[row], self.dataset.labels[row]
        events = self.events[row]
        if symmetry is not None:
            puzzle, answer = symmetry.apply(puzzle), symmetry.apply(answer)
            events = self.codec.map_events(events, symmetry)
        return self.codec.sequence(puzzle, answer, events)

    def batches_per_epoch(self) -> int:
        return len(self.dataset) // self.world_size // self.batch_size

    def _length_buckets(self, order: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """The epoch's batches of rows: ``order`` cut into windows, each sorted by length and
        cut into batches, all batches then in random order."""
        size = self.batch_size
        order = order[: self.batches_per_epoch() * size]
        batches = []
        for start in range(0, len(order), size * BUCKET_WINDOW):
            window = order[start : start + size * BUCKET_WINDOW]
            window = window[np.argsort(self.lengths[window], kind="stable")]
            batches += [window[i : i + size] for i in range(0, len(window), size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def epoch(self, epoch: int):
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, self.rank]))
        order_rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        count = len(self.dataset)
        order = order_rng.permutation(count)
        order = order[: count - count % self.world_size][self.rank :: self.world_size]
        family = self.dataset.family
        for rows in self._length_buckets(order, order_rng):
            sequences = [
                self._sequence(int(row), family.random_symmetry(rng) if self.augment else None)
                for row in rows
            ]
            width = max(len(s) for s in sequences)
            tokens = torch.zeros(len(rows), width, dtype=torch.long)
            for i, sequence in enumerate(sequences):
                tokens[i, : len(sequence)] = torch.tensor(sequence)
            targets = tokens[:, 1:].clone()
            targets[:, : self.prompt_len - 1] = -100
            targets[targets == 0] = -100
            yield tokens[:, :-1], targets


def cot_step(model: CoTModel, inputs: torch.Tensor, targets: torch.Tensor):
    """Next-token loss on the trace and answer: (loss, metrics)."""
    logits = model(inputs)
    valid = targets != -100
    loss = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100
    )
    correct = (logits.argmax(-1) == targets) & valid
    metrics = {
        "loss": loss.detach(),
        "answer_loss": loss.detach(),
        "cell_accuracy": correct.sum() / valid.sum(),  # next-token accuracy
        "exact": (correct | ~valid).all(-1).float().mean(),  # whole sequence right
        "halted_segments": torch.tensor(1.0),
    }
    return loss, metrics
