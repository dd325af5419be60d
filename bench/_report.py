"""What the benchmarks share: provenance, quartiles, writing results; and the Markdown table and
the PNG chart of a ``bench.runtime`` results dictionary."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]


def sa_async_provenance() -> str:
    """Which sa_async is measured: the repository's commit, and whether its runtime differs."""
    spec = importlib.util.find_spec("sa_async")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=source, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return f"sa_async from {source}"
    return f"sa_async at {commit}" + (" with uncommitted changes" if changed else "")


def baseline_provenance(checkout: Path) -> str:
    """Which sa_async ``--baseline`` times: the checkout's commit."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"baseline: sa_async from {checkout}"
    return f"baseline: sa_async at {commit}"


def quartiles(values: list[float]) -> dict[str, float]:
    """The median and the quartiles of ``values`` (all three the value itself for one value)."""
    if len(values) == 1:
        return {"median": values[0], "q1": values[0], "q3": values[0]}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3}


def write_results(
    output: Path, results: dict[str, Any], markdown_report: Callable[[dict[str, Any]], str]
) -> None:
    """Write ``results`` as JSON to ``output`` and its report beside it (``.md``); print it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    report = markdown_report(results)
    output.with_suffix(".md").write_text(report)
    print(report)


def _format_ratio(quartiles: dict[str, float], spread: bool = True) -> str:
    median = quartiles["median"]
    if not spread:
        return f"{median:.2f}x"
    return f"{median:.2f}x ({quartiles['q1']:.2f}-{quartiles['q3']:.2f})"


def _format_us(nanoseconds: float) -> str:
    microseconds = nanoseconds / 1000
    return f"{microseconds:.1f}" if microseconds >= 10 else f"{microseconds:.2f}"


def _status(row: dict[str, Any]) -> str:
    unmet = [
        f"{row['ratios'][target['ratio']]['median']:.3f}x {target['description'].split()[-1]}"
        for target in row["targets"]
        if not target["met"]
    ]
    return "met" if not unmet else f"**not met** ({', '.join(unmet)})"


def baseline_table(database: dict[str, Any]) -> str:
    """This tree's sa_async against the ``--baseline`` one, and each against SQLAlchemy."""
    lines = [
        "| operation | sa_async µs | baseline µs | sa_async / baseline CPU "
        "| sa_async / SQLAlchemy CPU | baseline / SQLAlchemy CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in database["operations"]:
        cpu, ratios = row["cpu_ns"], row["ratios"]
        lines.append(
            f"| {row['label']} | {_format_us(cpu['sa_async'])} | {_format_us(cpu['baseline'])} "
            f"| {_format_ratio(ratios['cpu_vs_baseline'])} "
            f"| {_format_ratio(ratios['cpu_vs_sqlalchemy'])} "
            f"| {_format_ratio(ratios['cpu_baseline_vs_sqlalchemy'])} |"
        )
    return "\n".join(lines)


def markdown_table(database: dict[str, Any]) -> str:
    """The Markdown table of one database's results."""
    lines = [
        "| operation | sa_async µs | SQLAlchemy µs | sync µs | sa_async / SQLAlchemy CPU "
        "| sa_async / sync CPU | wall: / SQLAlchemy | wall: / sync | target | status |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in database["operations"]:
        cpu = row["cpu_ns"]
        ratios = row["ratios"]
        targets = "; ".join(target["description"] for target in row["targets"])
        lines.append(
            f"| {row['label']} | {_format_us(cpu['sa_async'])} | {_format_us(cpu['sqlalchemy'])} "
            f"| {_format_us(cpu['sync'])} | {_format_ratio(ratios['cpu_vs_sqlalchemy'])} "
            f"| {_format_ratio(ratios['cpu_vs_sync'])} "
            f"| {_format_ratio(ratios['wall_vs_sqlalchemy'], spread=False)} "
            f"| {_format_ratio(ratios['wall_vs_sync'], spread=False)} "
            f"| {targets} | {_status(row)} |"
        )
    return "\n".join(lines)


def markdown_report(results: dict[str, Any]) -> str:
    parts = [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; {results['rounds']} rounds of {results['sample_ms']:g} ms "
        f"samples; Python {results['python']}, SQLAlchemy {results['sqlalchemy']}, greenlet "
        f"{results['greenlet']}; {results['machine']}; {results['sa_async']}.",
        "",
        "µs: median CPU time per operation (every thread of the process). Ratios: median of the "
        "per-round ratios (interquartile range in brackets); below 1 means sa_async is faster.",
    ]
    for name, database in results["databases"].items():
        parts += ["", f"### {name}", "", markdown_table(database)]
    if "baseline" in results:
        parts += ["", f"## Against the baseline ({results['baseline']})"]
        for name, database in results["databases"].items():
            parts += ["", f"### {name}", "", baseline_table(database)]
    return "\n".join(parts) + "\n"


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Draw the CPU ratios per operation, one row per database: vs SQLAlchemy, vs sync."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    databases = list(results["databases"].items())
    height = sum(0.36 * len(database["operations"]) + 0.8 for _, database in databases)
    figure, axes = pyplot.subplots(
        len(databases), 2, figsize=(13, height + 0.6), squeeze=False, constrained_layout=True
    )
    for row_axes, (name, database) in zip(axes, databases, strict=True):
        rows = database["operations"]
        positions = list(range(len(rows)))
        panels = (
            (row_axes[0], "cpu_vs_sqlalchemy", "sa_async / SQLAlchemy ext.asyncio", False),
            (row_axes[1], "cpu_vs_sync", "sa_async / sync Session (log scale)", True),
        )
        for axis, ratio, title, log_scale in panels:
            medians, below, above, colours = [], [], [], []
            for position, row in zip(positions, rows, strict=True):
                quartiles = row["ratios"][ratio]
                medians.append(quartiles["median"])
                below.append(max(quartiles["median"] - quartiles["q1"], 0.0))
                above.append(max(quartiles["q3"] - quartiles["median"], 0.0))
                target = next((t for t in row["targets"] if t["ratio"] == ratio), None)
                if target is None:
                    colours.append("#9e9e9e")
                    continue
                colours.append("#2e7d32" if target["met"] else "#c62828")
                limit = target["limit"]
                axis.plot([limit, limit], [position - 0.45, position + 0.45], color="black")
            axis.barh(positions, medians, xerr=[below, above], color=colours, capsize=2)
            axis.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
            if log_scale:
                axis.set_xscale("log")
            axis.set_yticks(positions, [row["label"] for row in rows])
            axis.invert_yaxis()
            axis.set_title(f"{name}: {title}", fontsize=10)
            axis.grid(axis="x", alpha=0.3)
    figure.suptitle(
        "CPU time ratio per operation: median of rounds, bars = interquartile range; black tick = "
        "target; green met, red not met, grey no target",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_outputs(results: dict[str, Any], output: Path, chart: bool) -> str:
    """Write the JSON, and beside it the Markdown (and the chart); return the Markdown."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    report = markdown_report(results)
    output.with_suffix(".md").write_text(report)
    if chart:
        write_chart(results, output.with_suffix(".png"))
    return report
