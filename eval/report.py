"""Readable tables, JSON files and plots of what ``evaluate.py`` measured.

This module deliberately computes nothing: every number it shows is in the dict it is given.
"""

from __future__ import annotations

from pathlib import Path

from puzzles.files import write_json_atomic


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def interval(measure: dict) -> str:
    return (f"{percent(measure['rate'])}  [{percent(measure['low'])}, {percent(measure['high'])}]"
            f"  ({measure['count']}/{measure['total']})")


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def evaluation_text(result: dict) -> str:
    """The evaluation as a few aligned tables for a terminal."""
    maze = result["family"] == "maze"
    solved_name = "valid shortest path" if maze else "solved"
    title = (f"{result['model']} run {result['run']} (step {result['step']}, "
             f"{result['parameters'] / 1e6:.2f}M parameters) on {result['puzzles']} "
             f"{result['size']}×{result['size']} {result['family']} puzzles")
    rows = [
        (solved_name, interval(result["solved"])),
        ("exact match", interval(result["exact"])),
        ("cell accuracy", percent(result["cell_accuracy"])),
        ("copy accuracy", percent(result["copy_accuracy"]) + "  (cells given in the input)"),
        ("fill accuracy", percent(result["fill_accuracy"]) + "  (cells to work out)"),
    ]
    if result["segments"] is None:  # chain of thought
        rows += [("decoding", result["decoding"]),
                 ("finished", percent(result["finished"])),
                 ("answer parsed", percent(result["parsed"])),
                 ("tokens", f"{result['mean_tokens']:.0f} mean, {result['max_tokens']} max")]
    elif result.get("mode") == "halting":
        rows.append(("segments", f"{result['halting']['mean_segments']:.2f} mean (learned "
                                 f"halting at threshold {result['halt_threshold']}, at most "
                                 f"{result['segments']})"))
    else:
        rows.append(("segments", f"{result['segments']} (fixed, as in training)"))
    rows.append(("inference FLOPs", f"{result['inference_flops'] / 1e9:.2f} G per puzzle"))
    parts = [title, table(rows)]
    if len(result["by_tier"]) > 1:
        parts += ["by difficulty:", table([(tier, interval(m))
                                           for tier, m in result["by_tier"].items()])]
    if result.get("halting") and result["segments"] > 1 and result.get("mode") != "halting":
        halting = result["halting"]
        histogram = "  ".join(f"{k}:{v}" for k, v in halting["histogram"].items())
        parts += [f"learned halting (threshold {result['halt_threshold']}, at most the "
                  "training segments):", table([
            (solved_name, interval(halting["solved"])),
            ("mean segments", f"{halting['mean_segments']:.2f}"),
            ("histogram", histogram),
        ])]
    if len(result.get("scaling", [])) > 1:
        lines = ["  segments  fixed    halting  (mean segments)"]
        for point in result["scaling"]:
            lines.append(f"  {point['segments']:>8}  {percent(point['fixed']):>7}  "
                         f"{percent(point['halting']):>7}  ({point['halting_mean_segments']:.2f})")
        parts += [f"{solved_name} rate by segments allowed:", "\n".join(lines)]
    if result.get("thresholds"):
        caps = sorted({point["segments"] for point in result["thresholds"]})
        lines = ["  threshold" + "".join(f"  {f'at most {cap}':>18}" for cap in caps)]
        for threshold in sorted({point["threshold"] for point in result["thresholds"]}):
            cells = {p["segments"]: p for p in result["thresholds"] if p["threshold"] == threshold}
            lines.append(f"  {threshold:>9}" + "".join(
                f"  {percent(cells[cap]['halting']):>7} ({cells[cap]['mean_segments']:>5.2f} seg)"
                for cap in caps))
        parts += [f"learned halting by threshold ({solved_name}, mean segments):",
                  "\n".join(lines)]
    if result.get("attempts"):
        parts += attempts_text(result["attempts"], solved_name)
    return "\n".join(parts)


def attempts_text(attempts: dict, solved_name: str = "solved") -> list[str]:
    """The test-time attempts of an evaluation: the curve against attempts allowed, by tier,
    which rule chose the answers, and how much the attempts differ."""
    settings = attempts["settings"]
    lines = ["  attempts   solved  passes rules  attempts used  segments used  inference FLOPs"]
    for point in attempts["points"]:
        lines.append(f"  {point['attempts']:>8}  {percent(point['solved']['rate']):>7}  "
                     f"{percent(point['passes_rules']):>12}  {point['mean_attempts']:>13.2f}  "
                     f"{point['mean_segments']:>13.2f}  {point['inference_flops'] / 1e9:>11.2f} G")
    last = attempts["points"][-1]
    parts = [f"{solved_name} rate by attempts allowed ({attempts['describe']}; each attempt "
             f"under learned halting, at most {settings['max_segments']} segments; means per "
             "puzzle):", "\n".join(lines),
             f"  at {last['attempts']} attempts: {interval(last['solved'])}"]
    tiers = list(last["by_tier"])
    if len(tiers) > 1:
        rows = ["  attempts" + "".join(f"  {tier:>8}" for tier in tiers)]
        for point in attempts["points"]:
            rows.append(f"  {point['attempts']:>8}" + "".join(
                f"  {percent(point['by_tier'].get(tier)):>8}" for tier in tiers))
        parts += [f"{solved_name} rate by attempts and difficulty:", "\n".join(rows)]
    chosen = ", ".join(f"{rule} {count}" for rule, count in attempts["chosen_by"].items())
    speed = attempts.get("puzzles_per_second")
    parts.append(table([
        ("chosen by", chosen + "  (what set each answer apart from the best other one)"),
        ("different answers", f"{attempts['distinct_answers']:.2f} per puzzle, "
                              f"{attempts['passing_attempts']:.2f} attempts passing the rules"),
        ("speed", "—" if speed is None else f"{speed:.1f} puzzles/s "
                                            f"({attempts['seconds']:.1f} s)"),
    ]))
    return parts


def write_json(path: str | Path, result: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result)


def plot_evaluation(result: dict, folder: str | Path) -> list[Path]:
    """PNG plots of an evaluation in ``folder``: the scaling curve, solve rate by difficulty
    and the histogram of segments used. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    name = f"{result['model']} on {result['size']}×{result['size']} {result['family']}"

    def save(figure, filename: str) -> None:
        figure.tight_layout()
        figure.savefig(folder / filename, dpi=120)
        plt.close(figure)
        written.append(folder / filename)

    if len(result.get("scaling", [])) > 1:
        figure, axes = plt.subplots(figsize=(5, 3.5))
        segments = [p["segments"] for p in result["scaling"]]
        axes.plot(segments, [p["fixed"] for p in result["scaling"]], "o-", label="fixed")
        axes.plot(segments, [p["halting"] for p in result["scaling"]], "s--",
                  label="learned halting")
        axes.axvline(result["segments"], color="grey", lw=0.8, ls=":", label="training")
        axes.set(xscale="log", xlabel="segments allowed", ylabel="solve rate", ylim=(0, 1),
                 title=name)
        axes.set_xticks(segments, [str(s) for s in segments])
        axes.legend()
        save(figure, "scaling.png")
    if result["by_tier"]:
        figure, axes = plt.subplots(figsize=(5, 3.5))
        tiers = list(result["by_tier"])
        rates = [result["by_tier"][t]["rate"] for t in tiers]
        errors = [[r - result["by_tier"][t]["low"] for t, r in zip(tiers, rates, strict=True)],
                  [result["by_tier"][t]["high"] - r for t, r in zip(tiers, rates, strict=True)]]
        axes.bar(tiers, rates, yerr=errors, capsize=4)
        axes.set(ylabel="solve rate", ylim=(0, 1), title=name)
        save(figure, "by_difficulty.png")
    if result.get("attempts"):
        figure, axes = plt.subplots(figsize=(5, 3.5))
        points = result["attempts"]["points"]
        allowed = [p["attempts"] for p in points]
        axes.plot(allowed, [p["solved"]["rate"] for p in points], "o-", label="all")
        tiers = list(points[-1]["by_tier"])
        for tier in tiers if len(tiers) > 1 else []:
            axes.plot(allowed, [p["by_tier"].get(tier) for p in points], ".--", label=tier)
        axes.set(xscale="log", xlabel="attempts allowed", ylabel="solve rate", ylim=(0, 1),
                 title=name)
        axes.set_xticks(allowed, [str(a) for a in allowed])
        axes.legend()
        save(figure, "attempts.png")
    if result.get("halting") and result["segments"] and result["segments"] > 1:
        figure, axes = plt.subplots(figsize=(5, 3.5))
        histogram = result["halting"]["histogram"]
        axes.bar([int(k) for k in histogram], list(histogram.values()))
        axes.set(xlabel="segments used (learned halting)", ylabel="puzzles", title=name)
        save(figure, "segments.png")
    return written

