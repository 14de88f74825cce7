"""Several models, one budget, one test set, one table: ``hrm compare`` and the engine of
``hrm quickstart``.

Every model trains with the shared trainer on the same dataset under the same budget:
- ``time``: seconds of training (evaluations not counted); the cosine schedule follows the
  clock, so each model anneals by the end of its budget whatever its speed;
- ``examples``: example-segments seen (batch × steps), the same for every model;
- ``flops``: estimated training FLOPs (``hrm/flops.py``); each model gets the steps they buy.
Then every model is evaluated on the same test split. Runs live in ``OUT/runs/MODEL-seedS``
with their evaluation beside them, so an interrupted comparison picks up where it stopped:
finished runs are kept, an unfinished one resumes from its checkpoint.

Models are the model kinds (``hrm``, ``transformer``, ``cot``) and ``transformer-segments``,
the transformer run through HRM's segment loop (``model.refine``). Recipes come from one preset
and ``--set`` overrides: ``section.key=value`` for every model, ``MODEL:section.key=value`` for
one, so that each baseline can have its own tuned recipe in the same command.

With ``attempts`` (``eval/attempts.py``), every model that answers in segments is also given the
same test-time attempts, so that models are compared at equal inference compute as well; chain
of thought decodes once (sampled attempts for it are not built, and its table cell says so).

This module deliberately does not define models or their recipes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.cot import CoTCodec, CoTConfig
from eval.attempts import AttemptSettings
from eval.evaluate import attempt_measures, evaluate
from eval.halting import train_and_calibrate
from eval.runs import load_run
from hrm.checkpoint import has_checkpoint
from hrm.config import (
    RunConfig,
    apply_override,
    build_config,
    check_named_settings,
    model_kind,
)
from hrm.flops import cot_training_flops, training_step_flops
from hrm.kinds import KINDS
from hrm.presets import preset
from puzzles.dataset import BuildSpec, PuzzleDataset, build_dataset, read_meta
from puzzles.files import read_json_object, write_json_atomic

BUDGET_KINDS = ("time", "examples", "flops")
# what each model of a comparison is: its kind and the settings that make it that model;
# every kind as it is, and the transformer run in HRM's segment loop
MODELS: dict[str, tuple[str, list[str]]] = {name: (name, []) for name in KINDS} | {
    "transformer-segments": ("transformer", ["model.refine=true"]),
}
UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str, kind: str) -> float:
    """'30m', '90s', '1.5h' or plain seconds for time; a number such as 2e5 otherwise."""
    if kind not in BUDGET_KINDS:
        raise ValueError(f"budget kind must be one of {', '.join(BUDGET_KINDS)}, not {kind!r}")
    match = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*([smh]?)\s*", text.lower())
    if not match or (match.group(2) and kind != "time"):
        example = "30m, 90s or 1.5h" if kind == "time" else "a number such as 2e5"
        raise ValueError(f"cannot read budget {text!r}: give {example}")
    value = float(match.group(1)) * UNITS.get(match.group(2) or "s", 1)
    if value <= 0:
        raise ValueError("the budget must be positive")
    return value


@dataclass
class Comparison:
    family: str
    size: int
    difficulty: str
    models: list[str]
    budget: float
    budget_kind: str = "time"
    seeds: int = 1
    train: int = 1000
    test: int = 1000
    preset: str = "cpu-small"
    # section.key=value for every model, MODEL:section.key=value for one
    overrides: list[str] = field(default_factory=list)
    data_path: str | None = None  # an existing dataset instead of building one
    attempts: AttemptSettings = field(default_factory=AttemptSettings)

    def __post_init__(self) -> None:
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODELS)}")
        for assignment in self.overrides:
            name, _ = model_override(assignment)
            if name is not None and name not in self.models:
                raise ValueError(f"--set {assignment}: {name!r} is not one of the models "
                                 f"compared ({', '.join(self.models)})")
        if not self.models:
            raise ValueError("give at least one model")
        for name in self.models:
            model = model_settings(self, name)["model"]
            try:  # before any data is built: a preset written for another kind may not fit
                build_config(model, vocab_size=2, seq_len=1)
            except (TypeError, ValueError) as error:
                raise ValueError(f"preset {self.preset!r} as {name}: {error}") from None
        if self.seeds < 1:
            raise ValueError("--seeds must be at least 1")
        parse_budget(str(self.budget), self.budget_kind)


def prepare_data(spec: Comparison, out: Path) -> Path:
    if spec.data_path:
        return Path(spec.data_path)
    path = out / "data"
    if not (path / "meta.json").is_file():
        options = (("unique_path", True),) if spec.family == "maze" else ()
        build_dataset(BuildSpec(spec.family, spec.size, spec.difficulty, spec.train, spec.test,
                                options=options), path, workers=2, force=path.exists())
    return path


def metric_records(path: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``, or an error naming the file and line."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}:{err.colno}: invalid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        records.append(record)
    return records


SPEC_FILE = "spec.json"  # what the runs in a comparison folder were trained under


def runs_spec(spec: Comparison, data: Path) -> dict[str, Any]:
    """The settings that decide what a comparison's runs are: two comparisons that agree on
    these can share runs (more models, more seeds or other attempts add to them)."""
    meta = read_meta(data)
    return {"family": meta["family"], "size": meta["size"],
            "difficulty": meta.get("difficulty"), "data": meta.get("sha256"),
            "budget": spec.budget, "budget_kind": spec.budget_kind, "preset": spec.preset,
            "overrides": list(spec.overrides)}


def claim_folder(spec: Comparison, out: Path, data: Path) -> None:
    """Record the spec in ``out``, or refuse when ``out`` already holds runs made under
    another: reusing them would put another spec's results under this one's title."""
    wanted = runs_spec(spec, data)
    path = out / SPEC_FILE
    if not path.is_file():
        if (out / "runs").is_dir() and any((out / "runs").iterdir()):
            raise ValueError(f"{out} holds runs from an earlier version of hrm compare whose "
                             "settings were not recorded; use another --out")
        write_json_atomic(path, wanted)
        return
    found = read_json_object(path)
    for key, value in wanted.items():
        if found.get(key) != value:
            shown = "other data" if key == "data" else f"{found.get(key)!r}"
            now = "this data" if key == "data" else f"{value!r}"
            raise ValueError(f"{out} holds runs made with {key} {shown}, not {now}: "
                             "use another --out, or the settings it was made with")


def step_flops(config: RunConfig, data: Path) -> float:
    """Estimated training FLOPs of one step on one example at full depth."""
    dataset = PuzzleDataset(data, "train")
    family = dataset.family
    if not model_kind(config).decodes:
        model_config = build_config(config.model, family.vocab_size, family.seq_len)
        return training_step_flops(model_config, bootstrapped_target=not config.act.halt_only)
    # a sequence: puzzle, trace (and answer); its mean length on a sample
    codec = CoTCodec(family, config.model.get("answer", CoTConfig.answer))
    lengths = [len(codec.encode(family.decode(dataset.inputs[i]), family.decode(dataset.labels[i])))
               for i in range(min(32, len(dataset)))]
    tokens = int(np.mean(lengths))
    model_config = build_config(config.model, codec.vocab_size, tokens)
    return cot_training_flops(model_config, tokens)


def model_override(assignment: str) -> tuple[str | None, str]:
    """``MODEL:section.key=value`` as (MODEL, the rest); (None, it) for every model."""
    head, equals, _ = assignment.partition("=")
    if equals and ":" in head:
        name, rest = assignment.split(":", 1)
        return name.strip(), rest
    return None, assignment


def model_settings(spec: Comparison, name: str) -> dict:
    """The preset with this model's settings and the overrides that apply to it. Settings
    named for this model alone (``trm:model.h_cycles=3``) must be ones it reads; those for
    every model may be ones some model ignores."""
    kind, settings = MODELS[name]
    raw = preset(spec.preset)
    raw["model"]["kind"] = kind
    named = set()
    for assignment in settings + spec.overrides:
        target, rest = model_override(assignment)
        if target in (None, name):
            section, key = apply_override(raw, rest)
            if target == name and section == "model":
                named.add(key)
    check_named_settings(raw["model"], named)
    return raw


def run_config(spec: Comparison, name: str, seed: int, data: Path) -> RunConfig:
    """The preset with this model's settings and the overrides that apply to it, this seed
    and the budget."""
    raw = model_settings(spec, name)
    raw["data"] = {"path": str(data)}
    raw["train"]["seed"] = seed
    batch = raw["train"].get("batch_size", 64)
    if spec.budget_kind == "time":
        raw["train"]["max_seconds"] = spec.budget
        raw["train"]["max_steps"] = 10**9
    elif spec.budget_kind == "examples":
        raw["train"]["max_steps"] = max(1, math.ceil(spec.budget / batch))
    else:
        per_step = step_flops(RunConfig.from_dict(raw), data) * batch
        raw["train"]["max_steps"] = max(1, math.ceil(spec.budget / per_step))
    return RunConfig.from_dict(raw)


def run_one(spec: Comparison, name: str, seed: int, data: Path, folder: Path,
            progress: bool) -> dict:
    """Train (or resume, or reuse) one run and evaluate it; returns its evaluation, with the
    spec's attempts measured (once per set of attempt settings)."""
    result_file = folder / "evaluation.json"
    if result_file.is_file():
        result = read_json_object(result_file)
    else:
        result = train_and_evaluate(spec, name, seed, data, folder, progress)
    wanted, segments = spec.attempts, result["segments"]  # the run's training segments
    if wanted.count > 1 and segments is not None:
        measured = result.get("attempts")
        if not measured or measured["settings"] != wanted.record(segments):
            result["attempts"] = attempt_measures(load_run(folder), PuzzleDataset(data, "test"),
                                                  wanted, segments)
            write_json_atomic(result_file, result)
    return result


def train_and_evaluate(spec: Comparison, name: str, seed: int, data: Path, folder: Path,
                       progress: bool) -> dict:
    config = run_config(spec, name, seed, data)
    train_and_calibrate(config, folder, resume=has_checkpoint(folder), progress=progress)
    run = load_run(folder)
    result = evaluate(run, PuzzleDataset(data, "test"))
    metrics = metric_records(folder / "metrics.jsonl")
    result["train_seconds"] = max(m.get("train_seconds", 0.0) for m in metrics)
    result["train_steps"] = run.step
    result["training_flops"] = step_flops(config, data) * config.train.batch_size * run.step
    # runs from before training logged test_solved logged exact matches only
    result["curve"] = [(m["train_seconds"], m.get("test_solved", m.get("test_exact")))
                       for m in metrics if "test_exact" in m]
    result["seed"] = seed
    write_json_atomic(folder / "evaluation.json", result)
    return result


def summarise(name: str, results: list[dict]) -> dict[str, Any]:
    """One table row from a model's runs (one per seed)."""
    rates = [r["solved"]["rate"] for r in results]
    row = {
        "model": name, "seeds": len(results), "parameters": results[0]["parameters"],
        "training_flops": float(np.mean([r["training_flops"] for r in results])),
        "train_seconds": float(np.mean([r["train_seconds"] for r in results])),
        "steps": float(np.mean([r["train_steps"] for r in results])),
        "solved_mean": float(np.mean(rates)), "solved_min": min(rates), "solved_max": max(rates),
        "copy_accuracy": float(np.mean([r["copy_accuracy"] for r in results])),
        "fill_accuracy": float(np.mean([r["fill_accuracy"] for r in results])),
        "inference_flops": float(np.mean([r["inference_flops"] for r in results])),
    }
    if len(results) == 1:
        row["interval"] = (results[0]["solved"]["low"], results[0]["solved"]["high"])
    if results[0]["segments"] and results[0]["segments"] > 1 and results[0].get("halting"):
        halted = [r["halting"]["solved"] for r in results]
        row["halting_mean"] = float(np.mean([h["rate"] for h in halted]))
        row["halting_interval"] = ((halted[0]["low"], halted[0]["high"]) if len(results) == 1
                                   else (min(h["rate"] for h in halted),
                                         max(h["rate"] for h in halted)))
    with_attempts = [r["attempts"]["points"][-1] for r in results if r.get("attempts")]
    if len(with_attempts) == len(results):
        rates = [point["solved"]["rate"] for point in with_attempts]
        row["attempts_mean"] = float(np.mean(rates))
        row["attempts_interval"] = (
            (with_attempts[0]["solved"]["low"], with_attempts[0]["solved"]["high"])
            if len(results) == 1 else (min(rates), max(rates)))
        row["attempts_used"] = float(np.mean([p["mean_attempts"] for p in with_attempts]))
        row["attempts_flops"] = float(np.mean([p["inference_flops"] for p in with_attempts]))
    if results[0]["segments"] is None:
        row["used"] = f"{np.mean([r['mean_tokens'] for r in results]):.0f} tokens"
    else:
        row["used"] = f"{np.mean([r['halting']['mean_segments'] for r in results]):.1f} " \
                      f"of {results[0]['segments']} segments"
    return row


def comparison_markdown(spec: Comparison, rows: list[dict]) -> str:
    unit = {"examples": "example-segments", "flops": "training FLOPs"}
    budget = (f"{spec.budget / 60:g} minutes of training" if spec.budget_kind == "time"
              else f"{spec.budget:g} {unit[spec.budget_kind]}")
    lines = [
        f"# {spec.size}×{spec.size} {spec.family} `{spec.difficulty}`: {', '.join(spec.models)}",
        "",
        f"Budget: {budget} per model; preset `{spec.preset}`"
        + (f" with {' '.join(spec.overrides)}" if spec.overrides else "")
        + f"; {spec.seeds} seed{'s' if spec.seeds > 1 else ''} each; solve rates on the same "
        "test split (mean, and range over seeds or the 95% Wilson interval of one seed).",
        "",
        "\"solved\" runs the training segments (or decodes once); \"learned halting\" lets each "
        "puzzle stop when the model's halting head says so, within the training segments, at "
        "the threshold the run chose on validation puzzles (models that answer in segments).",
        "",
    ]
    attempts = spec.attempts
    header = ("| model | parameters | training FLOPs | steps | solved | learned halting | "
              "copy acc. | fill acc. | used per puzzle | inference FLOPs |")
    if attempts.count > 1:
        lines[-1:-1] = [
            f"\"with attempts\": {attempts.describe()}, each under learned halting within the "
            "training segments, the answer chosen by the family's rules (never the solution); "
            "attempts used and inference FLOPs are means per puzzle. Chain of thought decodes "
            "once: attempts for it are not built.", ""]
        header += " with attempts | attempts used | inference FLOPs with attempts |"
    lines += [header, "|---" * header.count(" |") + "|"]
    for row in rows:
        solved_bounds = row.get("interval", (row["solved_min"], row["solved_max"]))
        line = (
            f"| {row['model']} | {row['parameters'] / 1e6:.2f}M | {row['training_flops']:.2e} | "
            f"{row['steps']:.0f} | {rate_cell(row['solved_mean'], solved_bounds)}"
            f" | {rate_cell(row.get('halting_mean'), row.get('halting_interval'))} | "
            f"{100 * row['copy_accuracy']:.1f}% | {100 * row['fill_accuracy']:.1f}% | "
            f"{row['used']} | {row['inference_flops']:.2e} |")
        if attempts.count > 1:
            line += (f" {rate_cell(row.get('attempts_mean'), row.get('attempts_interval'))} | "
                     + (f"{row['attempts_used']:.2f} | {row['attempts_flops']:.2e} |"
                        if "attempts_used" in row else "— | — |"))
        lines.append(line)
    return "\n".join(lines) + "\n"


def rate_cell(rate: float | None, bounds: tuple[float, float] | None) -> str:
    """``87.5% (85.3–89.4)``, or a dash for a model without that measure."""
    if rate is None:
        return "—"
    return f"{100 * rate:.1f}% ({100 * bounds[0]:.1f}–{100 * bounds[1]:.1f})"


def plot_curves(results: dict[str, list[dict]], path: Path) -> None:
    """Test solve rate against training time, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for index, (name, runs) in enumerate(results.items()):
        for number, result in enumerate(runs):
            seconds, rates = zip(*result["curve"], strict=True) if result["curve"] else ((), ())
            axes.plot(np.array(seconds) / 60, rates, "o-", color=f"C{index}", alpha=0.8,
                      label=name if number == 0 else None)
    axes.set(xlabel="training minutes", ylabel="test solve rate (exact)", ylim=(0, 1))
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def compare(spec: Comparison, out: str | Path, progress: bool = True, echo=print) -> list[dict]:
    """Train and evaluate every model and seed; write comparison.md, comparison.json and
    comparison.png in ``out``; returns the table rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(spec, out)
    for split in ("train", "test"):  # a damaged dataset is refused before any run starts
        PuzzleDataset(data, split)
    claim_folder(spec, out, data)
    results: dict[str, list[dict]] = {}
    for name in spec.models:
        for seed in range(spec.seeds):
            folder = out / "runs" / f"{name}-seed{seed}"
            echo(f"{name}, seed {seed}: {folder}")
            results.setdefault(name, []).append(run_one(spec, name, seed, data, folder, progress))
    rows = [summarise(name, runs) for name, runs in results.items()]
    (out / "comparison.md").write_text(comparison_markdown(spec, rows))
    write_json_atomic(out / "comparison.json", {"spec": asdict(spec), "rows": rows})
    plot_curves(results, out / "comparison.png")
    return rows
