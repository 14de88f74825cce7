"""The ``hrm`` command.

Every user error (a bad puzzle, a missing dataset, an unknown option) ends as one line on stderr
and exit code 2; ``main`` is the only place that turns exceptions into exit codes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import numpy as np

from puzzles import FAMILIES, PuzzleError
from puzzles.dataset import BuildSpec, DatasetError, PuzzleDataset, build_dataset, read_meta
from puzzles.inputs import read_puzzles

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hrm-puzzles")
def cli() -> None:
    """Train small reasoning models to solve puzzles, and check, build and inspect puzzles."""


# --- hrm check --------------------------------------------------------------------------------


@cli.command()
@click.argument("puzzle")
@click.option("--family", type=click.Choice(FAMILIES), help="Puzzle family (default: detect).")
@click.option("--size", type=int, help="Grid size n for n×n puzzles (default: detect).")
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
@click.option("--size", type=int, help="Grid size n (default: 9 for Sudoku, 15 for mazes).")
@click.option("--difficulty", help="Tier: easy, medium, hard; Sudoku also extreme.")
@click.option("--train", "n_train", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset directory.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--group-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most puzzles one search chain may give (Sudoku extreme).")
@click.option("--generator", type=click.Choice(["walls", "carved"]), help="Maze generator.")
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
    from tqdm import tqdm

    options: dict = {}
    if family == "maze":
        options = {"generator": generator, "wall_prob": wall_prob, "unique_path": unique_path}
        options = {k: v for k, v in options.items() if v not in (None, False)}
    elif generator or wall_prob is not None or unique_path:
        raise click.UsageError("--generator, --wall-prob and --unique-path are maze options")
    spec = BuildSpec(
        family=family,
        size=size or (9 if family == "sudoku" else 15),
        difficulty=difficulty or ("easy" if family == "sudoku" else "hard"),
        train=n_train,
        test=n_test,
        seed=seed,
        options=tuple(sorted(options.items())),
        group_size=group_size,
    )
    if out.exists() and not force:
        raise DatasetError(f"{out} already exists (use --force to replace it)")
    # bad sizes, options and tiers fail here, before the progress bar has drawn anything
    known = spec.make_family().difficulties
    if spec.difficulty not in known:
        choices = ", ".join(known)
        raise click.BadParameter(
            f"{spec.difficulty!r} is not a tier of {spec.family} {spec.size}×{spec.size} "
            f"(choose from {choices})",
            param_hint="'--difficulty'",
        )
    label = f"{spec.family} {spec.size}×{spec.size} {spec.difficulty}"
    # no bar when stderr is not a terminal, so that a failure there is one line
    bar = tqdm(total=n_train + n_test, desc=label, unit="puzzle", file=sys.stderr, disable=None)
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
@click.option("--model", "model_kind", type=click.Choice(["hrm", "transformer", "cot"]),
              help="Model to train (default: the preset's, HRM). A transformer or chain-of-"
              "thought model gets the preset's width and as many layers as the HRM has blocks.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="A JSON file whose sections override the preset.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one setting, e.g. --set train.lr=3e-4 (repeatable).")
@click.option("--family", type=click.Choice(FAMILIES), help="Build data of this family.")
@click.option("--size", type=int, help="Build data of this size.")
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
    from hrm.presets import preset as load_preset
    from hrm.train import RunConfig, apply_override, train

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
    for assignment in overrides:
        apply_override(raw, assignment)
    result = train(RunConfig.from_dict(raw), out, resume=resume)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    summary = ", ".join(f"{k} {v:.3f}" for k, v in result.items())
    click.echo(f"trained {out}: {summary}")


# --- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="hrm", standalone_mode=False)
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
    except (PuzzleError, DatasetError, ValueError, OSError, RuntimeError) as err:
        click.echo(f"hrm: error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
