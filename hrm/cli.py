"""The ``hrm`` command.

Every user error (a bad puzzle, a missing dataset, an unknown option) ends as one line on stderr
and exit code 2; ``main`` is the only place that turns exceptions into exit codes.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from hrm.allocator import keep_freed_memory
from hrm.progress import progress_bar
from puzzles import FAMILIES, PuzzleError
from puzzles.dataset import (
    BuildSpec,
    DatasetError,
    PuzzleDataset,
    build_dataset,
    read_meta,
    tier_mix,
)
from puzzles.inputs import read_puzzles

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
SIZE = click.IntRange(min=1)
# size and tier when a command is not told them: the sizes and tiers of the laptop presets
FAMILY_DEFAULTS = {"sudoku": (9, "easy"), "maze": (15, "hard")}
# the most segments any option runs a puzzle for: training uses 4-16, and inference gains
# nothing measurable past 4× training (BENCHMARKS.md), so more is a typo, not a plan
SEGMENTS_CAP = 1024


class ModelKindChoice(click.Choice):
    """A choice among the model kinds of ``hrm.kinds``, read when a command needs them: the
    registry brings in torch, which every command would otherwise pay for at start."""

    def __init__(self) -> None:
        super().__init__([])

    @property
    def choices(self) -> list[str]:
        from hrm.kinds import KINDS

        return list(KINDS)

    @choices.setter
    def choices(self, value) -> None:
        pass  # the registry's, always


# ``hrm solve``'s attempts: a puzzle stops at its first answer that passes the rules, so most
# use one; the others get up to this many (BENCHMARKS.md: test-time attempts)
SOLVE_ATTEMPTS = 64


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hrm-puzzles")
@click.option("--debug", is_flag=True,
              help="Show the Python traceback of an unexpected error (to report it).")
def cli(debug: bool) -> None:
    """Train small reasoning models to solve puzzles, and check, build and inspect puzzles."""


# --- hrm check --------------------------------------------------------------------------------


@cli.command()
@click.argument("puzzle")
@click.option("--family", type=click.Choice(FAMILIES), help="Puzzle family (default: detect).")
@click.option("--size", type=SIZE, help="Grid size n for n×n puzzles (default: detect).")
@click.option("--quiet", "-q", is_flag=True, help="Verdicts only, no solution grids.")
def check(puzzle: str, family: str | None, size: int | None, quiet: bool) -> None:
    """Check PUZZLE (a puzzle string, a FILE of puzzles, or - for stdin).

    Reports whether each puzzle has exactly one solution, its difficulty, and the solution
    (mazes: a shortest path and its length). Exit 0 when every puzzle has one solution, 1 when
    some have none or several, 2 when the input cannot be parsed.
    """
    fam, parsed, _ = read_puzzles(puzzle, family, size)
    all_unique = True
    for number, item in enumerate(parsed, start=1):
        solved = fam.solve(item.grid)
        label = f"#{number} (line {item.line})"
        if solved.count == 0:
            click.echo(f"{label}: no solution")
            all_unique = False
            continue
        tier = fam.tier_of(item.grid, solved.difficulty)
        if fam.name == "maze":
            paths = "one shortest path" if solved.count == 1 else "several shortest paths"
            verdict = f"valid, {paths} of {solved.difficulty:.0f} steps, {tier}"
        elif solved.count == 1:
            verdict = f"valid, one solution, {tier} (rating {solved.difficulty:.2f})"
        else:
            verdict = "several solutions"
            all_unique = False
        click.echo(f"{label}: {verdict}")
        if not quiet and solved.count >= 1 and (fam.name == "maze" or solved.count == 1):
            click.echo(fam.format(solved.grid).rstrip("\n") + "\n")
    sys.exit(EXIT_OK if all_unique else EXIT_SOME_FAILED)


# --- hrm data ---------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Build and inspect puzzle datasets."""


@data.command("build")
@click.argument("family", type=click.Choice(FAMILIES))
@click.option("--size", type=SIZE, help="Grid size n (default: 9 for Sudoku, 15 for mazes).")
@click.option("--difficulty", help="Tier: easy, medium, hard; Sudoku also extreme. A mix "
              "of tiers with weights: medium:1,hard:2.")
@click.option("--train", "n_train", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset directory.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--group-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most puzzles one search chain may give (Sudoku extreme).")
@click.option("--generator", type=click.Choice(["walls", "carved", "mixed"]),
              help="Maze generator (mixed: walls or carved, at even odds per maze).")
@click.option("--wall-prob", type=click.FloatRange(0.0, 1.0, max_open=True),
              help="Maze wall probability (walls generator).")
@click.option("--unique-path", is_flag=True, help="Mazes: wall off all but one shortest path.")
def data_build(
    family: str,
    size: int | None,
    difficulty: str | None,
    n_train: int,
    n_test: int,
    seed: int,
    out: Path,
    workers: int,
    force: bool,
    group_size: int,
    generator: str | None,
    wall_prob: float | None,
    unique_path: bool,
) -> None:
    """Generate a FAMILY dataset (train and test splits) into --out."""
    options: dict = {}
    if family == "maze":
        options = {"generator": generator, "wall_prob": wall_prob, "unique_path": unique_path}
        options = {k: v for k, v in options.items() if v not in (None, False)}
    elif generator or wall_prob is not None or unique_path:
        raise click.UsageError("--generator, --wall-prob and --unique-path are maze options")
    spec = BuildSpec(
        family=family,
        size=size if size is not None else FAMILY_DEFAULTS[family][0],
        difficulty=difficulty or FAMILY_DEFAULTS[family][1],
        train=n_train,
        test=n_test,
        seed=seed,
        options=tuple(sorted(options.items())),
        group_size=group_size,
    )
    if out.exists() and not force:
        raise DatasetError(f"{out} already exists (use --force to replace it)")
    # bad sizes, options and tiers fail here, before the progress bar has drawn anything
    try:
        tier_mix(spec.difficulty, spec.make_family().difficulties)
    except DatasetError as err:
        raise click.BadParameter(str(err), param_hint="'--difficulty'") from None
    label = f"{spec.family} {spec.size}×{spec.size} {spec.difficulty}"
    bar = progress_bar(total=n_train + n_test, desc=label, unit="puzzle")
    with bar:
        build_dataset(spec, out, workers=workers, force=force, progress=bar.update)
    meta = read_meta(out)
    click.echo(f"wrote {out}: {meta['counts']['train']} train, {meta['counts']['test']} test")


@data.command("show")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--index", type=int, default=0, show_default=True, help="First puzzle shown.")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
def data_show(path: Path, split: str, index: int, count: int) -> None:
    """Print puzzles of a dataset with their solutions."""
    ds = PuzzleDataset(path, split)
    if not 0 <= index < len(ds):
        raise DatasetError(f"--index {index} is out of range: {split} has {len(ds)} puzzles")
    fam = ds.family
    for i in range(index, min(index + count, len(ds))):
        puzzle, solution = fam.decode(ds.inputs[i]), fam.decode(ds.labels[i])
        rating = float(ds.difficulty[i])
        click.echo(f"{split} #{i}: difficulty {rating:.2f}, group {int(ds.group[i])}")
        click.echo(_side_by_side(fam.format(puzzle), fam.format(solution)) + "\n")


def _side_by_side(left: str, right: str, gap: str = "   ") -> str:
    left_lines, right_lines = left.splitlines(), right.splitlines()
    width = max(map(len, left_lines))
    return "\n".join(f"{a:<{width}}{gap}{b}" for a, b in zip(left_lines, right_lines, strict=True))


@data.command("stats")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def data_stats(path: Path, as_json: bool) -> None:
    """Print counts and the difficulty distribution of a dataset."""
    meta = read_meta(path)
    report = {"family": meta["family"], "size": meta["size"], "difficulty": meta.get("difficulty")}
    for split in ("train", "test"):
        ds = PuzzleDataset(path, split)
        report[split] = _split_stats(ds)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    size = f"{meta['size']}×{meta['size']}"
    click.echo(f"{meta['family']} {size}, difficulty {meta.get('difficulty')}")
    for split in ("train", "test"):
        s = report[split]
        givens = f", givens {s['givens']:.1%}" if s.get("givens") is not None else ""
        click.echo(f"\n{split}: {s['count']} puzzles, {s['groups']} groups{givens}")
        if s["count"]:
            q = s["difficulty_quantiles"]
            click.echo(
                f"  difficulty: mean {s['difficulty_mean']:.2f}, min {q['0%']:.2f}, "
                f"median {q['50%']:.2f}, 90% {q['90%']:.2f}, max {q['100%']:.2f}"
            )
            for tier, n in s["tiers"].items():
                click.echo(f"  {tier:<8} {n:>6}  {n / s['count']:.1%}")


def _split_stats(ds: PuzzleDataset) -> dict:
    count = len(ds)
    stats: dict = {"count": count, "groups": int(len(np.unique(ds.group)))}
    if count == 0:
        return stats
    if ds.family.name == "sudoku":
        stats["givens"] = float((ds.inputs > 1).mean())  # token 1 is a blank
    d = ds.difficulty.astype(np.float64)
    stats["difficulty_mean"] = float(d.mean())
    stats["difficulty_quantiles"] = {
        f"{int(q * 100)}%": float(np.quantile(d, q)) for q in (0, 0.5, 0.9, 1.0)
    }
    tiers: dict[str, int] = {}
    for i in range(count):
        grid = ds.family.decode(ds.inputs[i])
        tier = ds.family.tier_of(grid, float(d[i]))
        tiers[tier] = tiers.get(tier, 0) + 1
    stats["tiers"] = dict(sorted(tiers.items(), key=lambda kv: ds.family.difficulties.index(kv[0])))
    return stats


# --- hrm train --------------------------------------------------------------------------------


@cli.command("train")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="A dataset directory (else one is built from the preset's data section).")
@click.option("--preset", default="tiny", show_default=True, help="Named configuration.")
@click.option("--model", "model_kind", type=ModelKindChoice(),
              help="Model to train (default: the preset's, HRM). A transformer or chain-of-"
              "thought model gets the preset's width and as many layers as the HRM has blocks; "
              "TRM the preset's width and its own two layers.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="A JSON file whose sections override the preset.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one setting, e.g. --set train.lr=3e-4 (repeatable).")
@click.option("--family", type=click.Choice(FAMILIES), help="Build data of this family.")
@click.option("--size", type=SIZE, help="Build data of this size.")
@click.option("--difficulty", help="Build data of this tier.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
def train_command(
    data_path: Path | None,
    preset: str,
    model_kind: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    family: str | None,
    size: int | None,
    difficulty: str | None,
    out: Path,
    resume: bool,
) -> None:
    """Train a model (HRM by default); progress on stderr, metrics in OUT/metrics.jsonl."""
    from eval.halting import train_and_calibrate
    from hrm.config import RunConfig, apply_override, check_named_settings
    from hrm.presets import preset as load_preset
    from hrm.train import saved_sections

    saved = saved_sections(out) if resume else None
    preset_given = click.get_current_context().get_parameter_source("preset")
    if saved is not None and preset_given == click.core.ParameterSource.DEFAULT:
        raw = saved  # a resumed run keeps its settings; --set may still change some (max_steps)
    else:
        raw = load_preset(preset)
    if config_file is not None:
        try:
            extra = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise click.UsageError(f"{config_file}:{err.lineno}:{err.colno}: {err.msg}") from None
        if not isinstance(extra, dict):
            raise click.UsageError(f"{config_file}: expected a JSON object of sections")
        for section, values in extra.items():
            if not isinstance(values, dict):
                raise click.UsageError(f"{config_file}: section {section!r} must be an object")
            raw.setdefault(section, {}).update(values)
    for name, value in (("family", family), ("size", size), ("difficulty", difficulty)):
        if value is not None:
            raw.setdefault("data", {})[name] = value
    if data_path is not None:
        raw.setdefault("data", {})["path"] = str(data_path)
    if model_kind is not None:
        raw.setdefault("model", {})["kind"] = model_kind
    named = set(extra.get("model", {})) if config_file is not None else set()
    for assignment in overrides:
        section, key = apply_override(raw, assignment)
        if section == "model":
            named.add(key)
    check_named_settings(raw.get("model", {}), named)
    if saved is not None and data_path is None and raw.get("data", {}).get("path"):
        # the path the run was started with may be relative to another directory
        from eval.runs import locate_data
        from hrm.train import saved_config

        found, why = locate_data(out, saved_config(out))
        if found is None:
            raise click.UsageError(why)
        raw["data"]["path"] = str(found)
    result = train_and_calibrate(RunConfig.from_dict(raw), out, resume=resume)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    summary = ", ".join(f"{k} {v:.3f}" for k, v in result.items())
    click.echo(f"trained {out}: {summary}")


# --- hrm eval ---------------------------------------------------------------------------------


def _segment_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {text!r}",
                                 param_hint="--segments") from None
    if any(not 1 <= v <= SEGMENTS_CAP for v in values):
        raise click.BadParameter(f"segments must be from 1 to {SEGMENTS_CAP}",
                                 param_hint="--segments")
    return values


def _check_output(path: Path | None, option: str, folder: bool = False) -> None:
    """Refuse an output path that cannot be written, before a long computation, not after."""
    if path is None:
        return
    if folder:
        if path.exists() and not path.is_dir():
            raise click.BadParameter(f"{path} exists and is not a folder", param_hint=option)
        return
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    parent = path.parent  # Path("r.json").parent is Path(".")
    if parent.exists() and not parent.is_dir():
        raise click.BadParameter(f"{parent} is not a folder", param_hint=option)
    if parent.is_dir() and not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write in {parent}", param_hint=option)


def _probability(ctx, param, value: float | None) -> float | None:
    """A number strictly between 0 and 1 (click's FloatRange lets nan through)."""
    if value is not None and not 0 < value < 1:
        raise click.BadParameter(f"{value} is not between 0 and 1 (exclusive)")
    return value


def _fresh_test_set(run, difficulty: str | None, count: int, seed: int, folder: Path) -> Path:
    """A new test split of the run's family, built in ``folder``."""
    from eval.runs import fresh_split

    data = run.data
    difficulty = difficulty or data["difficulty"]
    if seed == data["seed"] and difficulty == data["difficulty"]:
        raise click.UsageError(f"--seed {seed} would rebuild the run's own training puzzles; "
                               "choose another seed")
    return build_dataset(fresh_split(data, count, seed, difficulty), folder / "data")


HALT_THRESHOLD = click.option(
    "--halt-threshold", type=float, callback=_probability,
    help="Learned halting stops a puzzle once the halt head's confidence passes this; higher "
    "stops later and solves more. Default: the run's own, chosen on validation puzzles after "
    "training (RUN/halting.json), else 0.5.")


MAX_SEGMENTS = click.option(
    "--max-segments", type=click.IntRange(1, SEGMENTS_CAP),
    help="Learned halting: at most N segments a puzzle (default: the training segments); a "
    "model trained with 8 often solves more within 16 at little more cost on average.")


def attempt_options(default: int = 1):
    """The options of test-time attempts, shared by eval, solve and compare."""
    def add(command):
        options = [
            click.option("--attempts", type=click.IntRange(min=1), default=default,
                         show_default=True,
                         help="Run each puzzle up to K times, each attempt after the first under "
                         "a random symmetry of the puzzle (undone on the answer) and/or state "
                         "noise, and keep the answer that passes the rules (never looking at "
                         "the solution); a puzzle stops at its first passing answer."),
            click.option("--attempt-noise", type=float, default=0.0, show_default=True,
                         metavar="STD", help="Attempts after the first add Gaussian noise of "
                         "this standard deviation to the recurrent state after every update."),
            click.option("--no-symmetry", is_flag=True,
                         help="Attempts after the first see the puzzle as given (vary them by "
                         "--attempt-noise alone)."),
            click.option("--attempts-all", is_flag=True,
                         help="Run all K attempts even after one passes (to measure them)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return add


def _attempt_settings(attempts: int, attempt_noise: float, no_symmetry: bool,
                      attempts_all: bool):
    from eval.attempts import AttemptSettings

    return AttemptSettings(attempts, symmetry=not no_symmetry, noise=attempt_noise,
                           run_all=attempts_all)


def _with_threshold(run, threshold: float | None):
    return run if threshold is None else replace(run, halt_threshold=threshold)


@cli.command("eval")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="A dataset directory (default: the run's own dataset).")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--family", type=click.Choice(FAMILIES), help="Check the run solves this family.")
@click.option("--size", type=SIZE, help="Run at this grid size: the run's own, or another where "
              "its model allows (positions=none with the grid convolution, mazes).")
@click.option("--difficulty", help="Tier of a fresh test set (with --count).")
@click.option("--count", type=click.IntRange(min=1), help="Build a fresh test set of N puzzles.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the fresh set.")
@click.option("--segments", "segments_text", metavar="N,N,...",
              help="Segment counts of the scaling curve (default: 1, 2, 4, … up to 4× training).")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N puzzles only.")
@click.option("--halting", "halting_only", is_flag=True,
              help="Learned halting only: each puzzle stops when its head says so (fastest; "
                   "no fixed-segment measures or scaling curve).")
@click.option("--beams", type=click.IntRange(min=1), default=1, show_default=True,
              help="Chain-of-thought runs: beam width (1: greedy decoding).")
@MAX_SEGMENTS
@HALT_THRESHOLD
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Puzzles per batch (default: 32 on a CPU, 256 on a GPU; CoT: 128).")
@click.option("--compile", "compiled", is_flag=True,
              help="torch.compile the model first (under a minute for a cpu-small model on two "
                   "CPU cores), then run faster: for long evaluations (not for chain-of-thought "
                   "runs).")
@attempt_options()
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Write results here.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path), help="Write PNG plots here.")
def eval_command(
    run_dir: Path,
    data_path: Path | None,
    split: str,
    family: str | None,
    size: int | None,
    difficulty: str | None,
    count: int | None,
    seed: int,
    segments_text: str | None,
    limit: int | None,
    halting_only: bool,
    beams: int,
    halt_threshold: float | None,
    max_segments: int | None,
    batch_size: int | None,
    compiled: bool,
    attempts: int,
    attempt_noise: float,
    no_symmetry: bool,
    attempts_all: bool,
    json_file: Path | None,
    plots_dir: Path | None,
) -> None:
    """Solve rates, cell/copy/fill accuracy, halting and inference-time scaling of a run; with
    --attempts, also the solve rate against test-time attempts."""
    import tempfile

    from eval.evaluate import describe, evaluate
    from eval.report import evaluation_text, plot_evaluation, write_json
    from eval.runs import at_size, compile_run, load_run

    caps = _segment_list(segments_text)
    _check_output(json_file, "--json")
    _check_output(plots_dir, "--plots", folder=True)
    settings = _attempt_settings(attempts, attempt_noise, no_symmetry, attempts_all)
    if halting_only and caps is not None:
        raise click.UsageError("--halting measures learned halting alone: drop --segments")
    if max_segments is not None and not halting_only and attempts == 1:
        raise click.UsageError("--max-segments caps learned halting: add --halting (the full "
                               "evaluation reports halting at every cap of --segments) or "
                               "--attempts (it caps every attempt)")
    if data_path is not None and count is not None:
        raise click.UsageError("give --data or --count, not both")
    if difficulty is not None and count is None:
        raise click.UsageError("--difficulty needs --count (it describes a fresh test set)")
    run = _with_threshold(load_run(run_dir), halt_threshold)
    if family and family != run.family.name:
        raise click.UsageError(f"{run_dir} solves {describe(run.family)}, not {family}")
    if size is not None:  # a model with no size-bound weights runs at another size
        run = at_size(run, size)
    if compiled and run.decodes:
        raise click.UsageError("--compile is for models that answer in segments, not for CoT")
    if attempts > 1 and run.decodes:
        raise click.UsageError("--attempts is for models that answer in segments; a chain-of-"
                               "thought run decodes once (try --beams)")
    if compiled:
        click.echo("compiling the model (under a minute for a cpu-small model on two cores)...",
                   err=True)
        run = compile_run(run, batch_size=batch_size)
    with tempfile.TemporaryDirectory() as scratch:
        if count is not None:
            data_path = _fresh_test_set(run, difficulty, count, seed, Path(scratch))
        elif data_path is None:
            data_path = run.own_data()
        dataset = PuzzleDataset(data_path, split)
        if not len(dataset):
            raise DatasetError(f"{data_path}: the {split} split holds no puzzles")
        total = min(len(dataset), limit or len(dataset)) * (2 if attempts > 1 else 1)
        with progress_bar(total=total, unit="puzzle", desc="evaluating", leave=False) as bar:
            result = evaluate(run, dataset, caps, batch_size, limit, progress=bar.update,
                              beams=beams, halting_only=halting_only,
                              max_segments=max_segments, attempts=settings)
    result["data"] = str(data_path) if count is None else f"fresh: {count} puzzles, seed {seed}"
    click.echo(evaluation_text(result))
    if json_file:
        write_json(json_file, result)
    if plots_dir:
        for path in plot_evaluation(result, plots_dir):
            click.echo(f"wrote {path}", err=True)


# --- hrm solve --------------------------------------------------------------------------------


def _one_line(family, grid) -> str:
    """A grid as one text field: Sudoku's line format, a maze's rows joined by '/'."""
    if family.name == "sudoku":
        return family.format(grid, style="line").strip()
    return "/".join(family.format(grid).strip("\n").split("\n"))


def _answer_record(family, number: int, line: int, item) -> dict:
    grade = item.grade
    return {
        "puzzle": number, "line": line, "input": _one_line(family, item.puzzle),
        "problem": item.problem,
        "answer": None if item.answer is None else _one_line(family, item.answer),
        "solved": None if grade is None else grade.solved,
        "verdict": item.problem or str(grade),
        "segments": item.segments, "tokens": item.tokens,
        "confidence": None if item.confidence is None else round(item.confidence, 4),
        "attempts": item.attempts, "attempt": item.attempt, "passes_rules": item.passes_rules,
        "chosen_by": item.chosen_by,
        "seconds": round(item.seconds, 5),
    }


def _print_answers(run, records: list[dict], answers: list, show_steps: bool, output: str) -> None:
    from eval.solve import changes_beside

    family = run.family
    if output == "json":
        click.echo(json.dumps(records, indent=2))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        for record, item in zip(records, answers, strict=True):
            head = f"#{record['puzzle']} (line {record['line']}): {record['verdict']}"
            if item.attempts is not None:
                rules = "passes the rules" if item.passes_rules else "breaks the rules"
                head += (f"; {item.attempts} attempt{'s' if item.attempts > 1 else ''}, kept "
                         f"#{item.attempt + 1} ({rules}; chosen by {item.chosen_by}), "
                         f"{item.segments} segments in all")
            elif item.segments is not None:
                head += (f"; {item.segments} segment{'s' if item.segments > 1 else ''}, "
                         f"halting confidence {item.confidence:.2f}")
            if item.tokens is not None:
                head += f"; {item.tokens} tokens"
            if item.problem is None:
                head += f"; {1000 * item.seconds:.1f} ms"
            click.echo(head)
            if show_steps and item.steps:
                previous = item.puzzle
                for number, step in enumerate(item.steps, start=1):
                    changed = int((np.asarray(step) != np.asarray(previous)).sum())
                    cells = "cell" if changed == 1 else "cells"
                    click.echo(f"segment {number}: {changed} {cells} changed")
                    click.echo(changes_beside(run, previous, step))
                    previous = step
            elif item.answer is not None:
                click.echo(family.format(item.answer).rstrip("\n"))
            click.echo()


@cli.command("solve")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("puzzle")
@click.option("--segments", type=click.IntRange(1, SEGMENTS_CAP),
              help="Run exactly N segments (default: learned halting, at most the training "
              "segments).")
@click.option("--show-steps", is_flag=True,
              help="Print the answer after every segment, beside the cells that segment changed.")
@click.option("--format", "output", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True)
@click.option("--beams", type=click.IntRange(min=1), default=1, show_default=True,
              help="Chain-of-thought runs: beam width (1: greedy decoding).")
@HALT_THRESHOLD
@MAX_SEGMENTS
@attempt_options(default=SOLVE_ATTEMPTS)
def solve_command(
    run_dir: Path, puzzle: str, segments: int | None, show_steps: bool, output: str, beams: int,
    halt_threshold: float | None, max_segments: int | None, attempts: int,
    attempt_noise: float, no_symmetry: bool, attempts_all: bool,
) -> None:
    """Solve PUZZLE (a puzzle string, a FILE of puzzles, or - for stdin) with the model of RUN.

    Exit 0 when every answer is correct, 1 when some are not, 2 for bad input (including a
    puzzle with no solution or several, which is reported and not solved).
    """
    from eval.evaluate import describe
    from eval.runs import RunError, at_size, load_run
    from eval.solve import solve_puzzles
    from puzzles.inputs import check_size, detect, read_text

    if segments is not None and max_segments is not None:
        raise click.UsageError("--segments runs exactly N, --max-segments caps learned halting: "
                               "give one")
    given = click.get_current_context().get_parameter_source("attempts")
    if show_steps and attempts > 1:
        if given != click.core.ParameterSource.DEFAULT:
            raise click.UsageError("--show-steps shows the segments of one run: drop --attempts")
        attempts = 1
    run = _with_threshold(load_run(run_dir), halt_threshold)
    if run.decodes:
        if attempts > 1 and given != click.core.ParameterSource.DEFAULT:
            raise click.UsageError("--attempts is for models that answer in segments; a chain-"
                                   "of-thought run decodes once (try --beams)")
        attempts = 1
    settings = _attempt_settings(attempts, attempt_noise, no_symmetry, attempts_all)
    family = run.family
    text, source = read_text(puzzle)
    try:
        found = detect(text, source)
    except PuzzleError:
        found = None  # let the run's own family give the precise parse error below
    if found and found[0] == family.name and found[1] != family.size:
        try:  # a model with no size-bound weights runs at the puzzle's size
            run = at_size(run, found[1])
        except RunError as error:
            raise click.UsageError(f"{source} holds a {found[1]}×{found[1]} {found[0]}, and "
                                   f"{error}") from None
        family = run.family
    if found and found != (family.name, family.size):
        raise click.UsageError(f"{source} holds a {found[1]}×{found[1]} {found[0]} but "
                               f"{run_dir} solves {describe(family)}")
    check_size(text, family, source)
    parsed = family.parse_many(text, source)
    if not parsed:
        raise PuzzleError("no puzzle found", source=source)
    # a bar only for many puzzles: a few are answered before one would be worth drawing
    with progress_bar(total=2 * len(parsed), desc="solving", unit="step", leave=False,
                      disable=len(parsed) < 100) as bar:
        answers = solve_puzzles(run, [p.grid for p in parsed], segments, beams=beams,
                                max_segments=max_segments, attempts=settings,
                                progress=bar.update)
    records = [_answer_record(family, n, p.line, a)
               for n, (p, a) in enumerate(zip(parsed, answers, strict=True), start=1)]
    _print_answers(run, records, answers, show_steps, output)
    if any(a.problem for a in answers):
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(EXIT_OK if all(a.grade.solved for a in answers) else EXIT_SOME_FAILED)


# --- hrm compare and hrm quickstart -----------------------------------------------------------


def _default_preset(family: str, size: int) -> str:
    if family == "maze":
        return "maze-small"
    return "tiny" if size <= 4 else "cpu-small"


@cli.command("compare")
@click.option("--family", type=click.Choice(FAMILIES), default="sudoku", show_default=True)
@click.option("--size", type=SIZE, help="Grid size (default: 9 for Sudoku, 15 for mazes).")
@click.option("--difficulty", help="Tier (default: easy for Sudoku, hard for mazes), or a mix "
              "such as easy:1,hard:3.")
@click.option("--models", default="hrm,transformer", show_default=True,
              help="Comma-separated: hrm, trm, transformer, transformer-segments (HRM's "
              "segment loop), cot.")
@click.option("--budget", default="30m", show_default=True,
              help="Per model and seed: time (30m, 90s, 1.5h), example-segments or FLOPs.")
@click.option("--budget-kind", type=click.Choice(["time", "examples", "flops"]), default="time",
              show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--train", "n_train", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--preset", help="Recipe for every model (default: by family and size).")
@click.option("--set", "overrides", multiple=True, metavar="[MODEL:]SECTION.KEY=VALUE",
              help="Override one setting for every model, or with MODEL: for that one "
              "(repeatable).")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Use this dataset instead of building one.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the data, the runs and comparison.md (rerun to resume).")
@attempt_options()
def compare_command(family: str, size: int | None, difficulty: str | None, models: str,
                    budget: str, budget_kind: str, seeds: int, n_train: int, n_test: int,
                    preset: str | None, overrides: tuple[str, ...], data_path: Path | None,
                    out: Path, attempts: int, attempt_noise: float, no_symmetry: bool,
                    attempts_all: bool) -> None:
    """Train several models under one budget on the same data, evaluate them on the same test
    set, and write OUT/comparison.md, comparison.json and comparison.png."""
    from eval.compare import Comparison, compare, parse_budget

    if data_path is not None:
        meta = read_meta(data_path)
        family, size, difficulty = meta["family"], meta["size"], meta["difficulty"]
    size = size if size is not None else FAMILY_DEFAULTS[family][0]
    difficulty = difficulty or FAMILY_DEFAULTS[family][1]
    spec = Comparison(family, size, difficulty, [m.strip() for m in models.split(",")],
                      parse_budget(budget, budget_kind), budget_kind, seeds, n_train, n_test,
                      preset or _default_preset(family, size), list(overrides),
                      str(data_path) if data_path else None,
                      _attempt_settings(attempts, attempt_noise, no_symmetry, attempts_all))
    compare(spec, out, echo=lambda line: click.echo(line, err=True))
    click.echo((out / "comparison.md").read_text().rstrip("\n"))


@cli.command("quickstart")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/quickstart"),
              show_default=True, help="Folder for the data and runs (rerun to resume).")
@click.option("--budget", default="2m", show_default=True, help="Training time per model.")
def quickstart_command(out: Path, budget: str) -> None:
    """Build 4×4 Sudoku puzzles, train HRM and a same-size transformer for a few minutes each,
    compare them on unseen puzzles, and watch HRM solve one segment by segment."""
    from eval.compare import Comparison, compare, parse_budget
    from eval.runs import load_run
    from eval.solve import solve_puzzles

    spec = Comparison("sudoku", 4, "easy", ["hrm", "transformer"], parse_budget(budget, "time"),
                      test=200, preset="tiny")
    click.echo(f"Training HRM and a transformer on 1,000 4×4 Sudoku puzzles, {budget} each "
               f"(folder {out})", err=True)
    compare(spec, out, echo=lambda line: click.echo(line, err=True))
    click.echo((out / "comparison.md").read_text())
    run = load_run(out / "runs" / "hrm-seed0")
    test = PuzzleDataset(out / "data", "test")
    puzzle = run.family.decode(test.inputs[0])
    click.echo(f"HRM on the first test puzzle (hrm solve {out / 'runs' / 'hrm-seed0'} "
               f"{run.family.format(puzzle, style='line').strip()} --show-steps):\n")
    answers = solve_puzzles(run, [puzzle])
    record = _answer_record(run.family, 1, 1, answers[0])
    _print_answers(run, [record], answers, True, "text")


# --- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. User errors become one line on stderr and exit code 2; anything else, a
    fault of ours, one line and exit code 3 (``hrm --debug ...`` shows its traceback)."""
    args = sys.argv[1:] if argv is None else list(argv)
    keep_freed_memory()  # fewer page faults, same numbers (hrm/allocator.py)
    try:
        cli.main(args=args, prog_name="hrm", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("hrm: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # click >= 8.2: bare 'hrm', 'hrm data'
            click.echo(err.ctx.get_help())
            sys.exit(EXIT_OK)
        click.echo(f"hrm: error: {err.format_message()}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except (PuzzleError, DatasetError, ValueError, OSError) as err:
        click.echo(f"hrm: error: {_first_line(err)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as err:
        if "--debug" in args[: args.index("--") if "--" in args else len(args)]:
            raise
        click.echo(f"hrm: internal error: {type(err).__name__}: {_first_line(err)} (a fault of "
                   "hrm, not of your input; rerun with hrm --debug ... for the traceback, "
                   "and please report it)", err=True)
        sys.exit(EXIT_INTERNAL)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


if __name__ == "__main__":
    main()
