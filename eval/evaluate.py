"""Solve rates and the other measures of a trained model on a split, for every model kind.

One pass over the split runs the most segments any measure needs and keeps the answer after
each segment, so the answer "with k segments" is read off that pass for every k (a segment's
state does not depend on how many segments follow it). From it:

- solve rate (the family's grader: for mazes, a valid shortest path) with a 95% Wilson interval,
  and the exact-match rate (the answer equals the reference cell for cell);
- cell accuracy, split into copy accuracy (cells whose answer is already in the input: givens,
  walls) and fill accuracy (cells the model has to work out: blanks, the path), since copying
  and filling are different skills;
- solve rate by difficulty tier;
- segments used under learned halting (mean and histogram);
- inference-time scaling: solve rate with 1, 2, 4, ... segments allowed, up to several times
  what training used, for fixed segments and for learned halting.
- learned halting at several confidence thresholds, at the training segments and at the most
  segments measured: a higher threshold stops later and solves more. Read off a set of fresh
  puzzles (``hrm eval --count``), this is how to choose ``--halt-threshold`` without tuning on
  the test set.
- with test-time attempts (``attempts.py``), a second pass: solve rate, attempts and segments
  used and inference FLOPs with 1, 2, 4, ... attempts allowed, by difficulty tier, which rule
  chose each answer, and how much the attempts differ from each other.

Chain-of-thought runs have no segments: they report tokens generated and decoding FLOPs instead.

This module deliberately does not print or plot (``report.py``) or load runs (``runs.py``).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from eval.attempts import RULES, AttemptSettings, run_attempts
from eval.runs import Run, run_cot, run_segments
from hrm.flops import cot_generation_flops, inference_flops
from hrm.inference import SegmentTrace, graded
from puzzles.dataset import PuzzleDataset


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial rate (sound near 0 and 1, unlike p ± 2σ)."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, no rounding
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


def segment_caps(max_segments: int, factor: int = 4) -> list[int]:
    """1, 2, 4, ... up to ``factor`` times the training segments, the training value included."""
    caps = {1, max_segments}
    cap = 1
    while cap < factor * max_segments:
        cap *= 2
        caps.add(min(cap, factor * max_segments))
    return sorted(caps)


def rate(flags: np.ndarray) -> dict:
    low, high = wilson_interval(int(flags.sum()), len(flags))
    return {"rate": float(flags.mean()) if len(flags) else 0.0, "low": low, "high": high,
            "count": int(flags.sum()), "total": len(flags)}


def answer_measures(dataset: PuzzleDataset, predictions: np.ndarray) -> tuple[dict, np.ndarray]:
    """Solve and exact rates, and cell, copy and fill accuracy, of answers [N, L]; and which
    puzzles were solved [N]."""
    solved, exact = graded(dataset, predictions)
    correct = predictions == dataset.labels
    copy = dataset.inputs == dataset.labels  # the answer is in the input (givens, walls)
    return {
        "solved": rate(solved),
        "exact": rate(exact),
        "cell_accuracy": float(correct.mean()),
        "copy_accuracy": float(correct[copy].mean()) if copy.any() else None,
        "fill_accuracy": float(correct[~copy].mean()) if (~copy).any() else None,
    }, solved


def by_tier(dataset: PuzzleDataset, solved: np.ndarray) -> dict[str, dict]:
    family = dataset.family
    tiers = np.array([family.tier_of(family.decode(dataset.inputs[i]), float(d))
                      for i, d in enumerate(dataset.difficulty)])
    return {tier: rate(solved[tiers == tier]) for tier in sorted(set(tiers.tolist()))}


# the halting thresholds ``evaluate`` measures; 0.5 is the paper's rule
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def threshold_curve(dataset: PuzzleDataset, trace: SegmentTrace, caps: list[int]) -> list[dict]:
    """Learned halting at each of ``THRESHOLDS`` with at most each of ``caps`` segments: solve
    rate and mean segments used."""
    points = []
    for threshold in THRESHOLDS:
        for cap in caps:
            used = trace.halted_at(cap, threshold)
            solved, _ = graded(dataset, trace.answers_at(used))
            points.append({"threshold": threshold, "segments": cap,
                           "halting": float(solved.mean()), "mean_segments": float(used.mean())})
    return points


def evaluate(
    run: Run,
    dataset: PuzzleDataset,
    caps: list[int] | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    progress=None,
    beams: int = 1,
    halting_only: bool = False,
    max_segments: int | None = None,
    attempts: AttemptSettings | None = None,
) -> dict:
    """Every measure of ``run`` on ``dataset`` (its first ``limit`` puzzles) as a JSON-ready
    dict. ``caps``: the segment counts of the scaling curve (default: ``segment_caps``).
    ``progress``: a callable given the puzzles done (for a progress bar). ``beams``: beam width
    for chain-of-thought decoding (1: greedy). ``halting_only``: measure learned halting alone,
    each puzzle stopping when its head says so (the fastest; no fixed-segment measures and no
    scaling curve), so the headline is the halting answer; ``max_segments`` caps it (default:
    the training segments). ``attempts``: also measure test-time attempts, each under learned
    halting within ``max_segments`` (the result's ``attempts``)."""
    if limit is not None and limit < len(dataset):
        dataset = dataset.head(limit)
    if dataset.family.name != run.family.name or dataset.family.size != run.family.size:
        raise ValueError(f"the data is {describe(dataset.family)} but the run solves "
                         f"{describe(run.family)}")
    header = {"run": str(run.path), "model": run.kind, "step": run.step,
              "family": run.family.name, "size": run.family.size, "puzzles": len(dataset),
              "parameters": sum(p.numel() for p in run.model.parameters())}
    if run.decodes:
        return {**header, **_evaluate_cot(run, dataset, batch_size, progress, beams)}
    header["halt_threshold"] = run.halt_threshold

    trained = run.max_segments
    cap = max_segments or trained
    if attempts is not None and attempts.count > 1:
        header["attempts"] = attempt_measures(run, dataset, attempts, cap, batch_size, progress)
    if halting_only:
        return {**header, **_evaluate_halting(run, dataset, cap, batch_size, progress)}
    caps = [1] if trained == 1 else sorted(set(caps or segment_caps(trained)))
    trace = run_segments(run, dataset.inputs, max(*caps, trained), batch_size, progress)
    headline, solved = answer_measures(dataset, trace.predictions[:, trained - 1])
    _, _, halting = halting_measures(dataset, trace, trained)
    scaling = []
    for cap in caps:
        fixed, _ = graded(dataset, trace.predictions[:, cap - 1])
        cap_used = trace.halted_at(cap)
        learned, _ = graded(dataset, trace.answers_at(cap_used))
        scaling.append({"segments": cap, "fixed": float(fixed.mean()),
                        "halting": float(learned.mean()),
                        "halting_mean_segments": float(cap_used.mean())})
    return {
        **header,
        "segments": trained,
        "mode": "fixed",
        **headline,
        "by_tier": by_tier(dataset, solved),
        "halting": halting,
        "scaling": scaling,
        "thresholds": threshold_curve(dataset, trace, sorted({trained, max(caps)}))
        if trained > 1 else [],
        "inference_flops": inference_flops(run.model.config, trained),
    }


def halting_measures(dataset: PuzzleDataset, trace: SegmentTrace,
                     cap: int) -> tuple[dict, np.ndarray, dict]:
    """Under learned halting with at most ``cap`` segments: the measures of the answers, which
    puzzles were solved [N], and the summary ``evaluate`` reports (solve and exact rates,
    segments used: mean and histogram)."""
    used = trace.halted_at(cap)
    measures, solved = answer_measures(dataset, trace.answers_at(used))
    histogram = Counter(used.tolist())
    return measures, solved, {
        "solved": measures["solved"], "exact": measures["exact"],
        "mean_segments": float(used.mean()),
        "histogram": {str(k): histogram.get(k, 0) for k in range(1, cap + 1)},
    }


def attempt_measures(run: Run, dataset: PuzzleDataset, settings: AttemptSettings, cap: int,
                     batch_size: int | None = None, progress=None) -> dict:
    """Test-time attempts on ``dataset``, each under learned halting within ``cap`` segments:
    for every attempt count of ``attempt_points``, the solve rate (overall and by tier), the
    share of chosen answers that pass the rule check, attempts and segments used and inference
    FLOPs per puzzle; which rule chose the answers at the most attempts; how the attempts
    differ (different answers per puzzle, attempts that passed); and the speed."""
    trace = run_attempts(run, dataset.inputs, settings, cap, batch_size=batch_size,
                         progress=progress)
    per_segment = inference_flops(run.model.config, 1)
    points = []
    for index, allowed in enumerate(trace.points):
        measures, solved = answer_measures(dataset, trace.answers[:, index])
        points.append({
            "attempts": allowed, "solved": measures["solved"], "exact": measures["exact"],
            "passes_rules": float(trace.passes[:, index].mean()),
            "mean_attempts": float(trace.attempts[:, index].mean()),
            "mean_segments": float(trace.segments[:, index].mean()),
            "inference_flops": per_segment * float(trace.segments[:, index].mean()),
            "by_tier": {tier: measure["rate"] for tier, measure in by_tier(dataset,
                                                                           solved).items()},
        })
    chosen_by = Counter(RULES[r] for r in trace.rule[:, -1].tolist())
    return {
        "settings": settings.record(cap),
        "describe": settings.describe(),
        "points": points,
        "chosen_by": {rule: chosen_by[rule] for rule in RULES if chosen_by[rule]},
        "distinct_answers": float(trace.distinct.mean()),
        "passing_attempts": float(trace.passing.mean()),
        "seconds": trace.seconds,
        "puzzles_per_second": len(dataset) / trace.seconds if trace.seconds else None,
    }


def _evaluate_halting(run: Run, dataset: PuzzleDataset, cap: int, batch_size: int | None,
                      progress) -> dict:
    trace = run_segments(run, dataset.inputs, cap, batch_size, progress, stop_at_halt=True)
    headline, solved, halting = halting_measures(dataset, trace, cap)
    return {
        "segments": cap,  # the most a puzzle may use
        "mode": "halting",
        **headline,
        "by_tier": by_tier(dataset, solved),
        "halting": halting,
        "scaling": [],
        "inference_flops": inference_flops(run.model.config, 1) * halting["mean_segments"],
    }


def _evaluate_cot(run: Run, dataset: PuzzleDataset, batch_size: int | None, progress,
                  beams: int) -> dict:
    answers = run_cot(run, dataset.inputs, batch_size, progress, beams)
    headline, solved = answer_measures(dataset, answers.predictions)
    solved &= answers.parsed
    headline["solved"] = rate(solved)
    headline["exact"] = rate((answers.predictions == dataset.labels).all(-1) & answers.parsed)
    prompt = len(run.codec.prompt_tokens(dataset.inputs[0]))
    flops = [cot_generation_flops(run.model.config, prompt, int(n)) for n in answers.tokens]
    return {
        "segments": None,
        "decoding": "greedy" if beams == 1 else f"beam search, {beams} beams",
        **headline,
        "by_tier": by_tier(dataset, solved),
        "finished": float(answers.finished.mean()),
        "parsed": float(answers.parsed.mean()),
        "mean_tokens": float(answers.tokens.mean()),
        "max_tokens": int(answers.tokens.max()) if len(answers.tokens) else 0,
        "inference_flops": float(np.mean(flops)) if flops else 0.0,
    }


def describe(family) -> str:
    return f"{family.size}×{family.size} {family.name}"
