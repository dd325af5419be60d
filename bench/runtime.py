"""Per-operation CPU time of sa_async against SQLAlchemy's ext.asyncio and the sync Session.

One process runs the three implementations of each operation interleaved in rounds (their order
rotates every round), so that the machine's noise hits them alike. A sample is many iterations
of one operation timed together (``bench/_operations.py``); each round gives one ratio per pair
of implementations, and the tables report the median of those ratios with their interquartile
range. CPU time (``time.process_time_ns``: every thread of the process, so aiosqlite's worker
thread counts) is the headline; wall time is a second column. The databases, among them
``sqlite-noio`` (the session layer alone), are described in ``bench/_databases.py``.

Run from the repository root (``--help`` for every option)::

    .venv/bin/python -m bench.runtime                  # full run, all three databases
    .venv/bin/python -m bench.runtime --quick --databases sqlite-noio
    .venv/bin/python -m bench.runtime --render bench/results/runtime.json
    .venv/bin/python -m bench.runtime --profile get_hit --databases sqlite-noio

It writes the results as JSON (``--output``), a PNG chart of the ratios and a Markdown table
beside it, and prints the table. Targets are displayed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import shlex
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import greenlet  # type: ignore[import-untyped]
import sqlalchemy

from bench._baseline import load_baseline
from bench._databases import DATABASES, Database, open_database, postgresql_server
from bench._operations import (
    OPERATION_KEYS,
    OPERATIONS,
    AsyncSide,
    Clock,
    Operation,
    Samples,
    calibrated_iterations,
)
from bench._report import baseline_provenance, quartiles, sa_async_provenance, write_outputs

REPOSITORY = Path(__file__).resolve().parents[1]
# "baseline" joins them with --baseline (bench/_baseline.py).
IMPLEMENTATIONS = ["sa_async", "sqlalchemy", "sync"]
DEFAULT_OUTPUT = REPOSITORY / "bench" / "results" / "runtime.json"


async def run_sample(database: Database, operation: Operation, side_name: str, n: int) -> Clock:
    clock = Clock()
    side = database.sides[side_name]
    gc.collect()
    if isinstance(side, AsyncSide):
        await operation.run_async(side, n, clock)
    else:
        operation.run_sync(side, n, clock)
    return clock


async def calibrate(database: Database, operation: Operation, sample_ns: int) -> int:
    """Return the iterations per sample of ``operation`` on ``database`` (every implementation)."""

    async def sample(n: int) -> list[Clock]:
        return [await run_sample(database, operation, name, n) for name in IMPLEMENTATIONS]

    return await calibrated_iterations(sample, sample_ns, operation.max_iterations)


async def measure_database(
    database: Database, rounds: int, sample_ns: int, progress: bool
) -> dict[str, Samples]:
    """Run every operation ``rounds`` times per implementation, interleaved."""
    # What exists now (modules, engines, seed data) is left out of every garbage collection, so
    # a collection costs what the samples allocate rather than the size of the whole heap.
    gc.collect()
    gc.freeze()
    try:
        return await _measure_frozen(database, rounds, sample_ns, progress)
    finally:
        gc.unfreeze()


async def _measure_frozen(
    database: Database, rounds: int, sample_ns: int, progress: bool
) -> dict[str, Samples]:
    found: dict[str, Samples] = {}
    for operation in OPERATIONS:
        found[operation.key] = Samples(
            await calibrate(database, operation, sample_ns), IMPLEMENTATIONS
        )
    for round_index in range(rounds):
        if progress:
            print(f"  {database.name}: round {round_index + 1}/{rounds}", file=sys.stderr)
        shift = round_index % len(IMPLEMENTATIONS)
        order = IMPLEMENTATIONS[shift:] + IMPLEMENTATIONS[:shift]
        for operation in OPERATIONS:
            samples = found[operation.key]
            for name in order:
                clock = await run_sample(database, operation, name, samples.iterations)
                samples.cpu_ns[name].append(clock.cpu_ns / samples.iterations)
                samples.wall_ns[name].append(clock.wall_ns / samples.iterations)
    return found


def _ratios(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """Quartiles of the per-round ratios (each round's pair was measured side by side)."""
    pairs = zip(numerators, denominators, strict=True)
    return quartiles([top / bottom if bottom else math.inf for top, bottom in pairs])


def summarise(operation: Operation, samples: Samples) -> dict[str, Any]:
    cpu, wall = samples.cpu_ns, samples.wall_ns
    ratios = {
        "cpu_vs_sqlalchemy": _ratios(cpu["sa_async"], cpu["sqlalchemy"]),
        "cpu_vs_sync": _ratios(cpu["sa_async"], cpu["sync"]),
        "wall_vs_sqlalchemy": _ratios(wall["sa_async"], wall["sqlalchemy"]),
        "wall_vs_sync": _ratios(wall["sa_async"], wall["sync"]),
    }
    if "baseline" in cpu:
        ratios["cpu_vs_baseline"] = _ratios(cpu["sa_async"], cpu["baseline"])
        ratios["cpu_baseline_vs_sqlalchemy"] = _ratios(cpu["baseline"], cpu["sqlalchemy"])
    return {
        "key": operation.key,
        "label": operation.label,
        "no_io": operation.no_io,
        "iterations": samples.iterations,
        "cpu_ns": {name: statistics.median(cpu[name]) for name in IMPLEMENTATIONS},
        "wall_ns": {name: statistics.median(wall[name]) for name in IMPLEMENTATIONS},
        "ratios": ratios,
        "targets": [
            {
                "ratio": target.ratio,
                "description": target.description,
                "limit": target.limit,
                "met": ratios[target.ratio]["median"] <= target.limit,
            }
            for target in operation.targets()
        ],
        "samples": {
            kind: {name: [round(value, 1) for value in values] for name, values in found.items()}
            for kind, found in (("cpu_ns", cpu), ("wall_ns", wall))
        },
    }


# -- profiling: where each async layer spends its time on one operation


def _profile_report(profiler: cProfile.Profile, iterations: int, limit: int) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(limit)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    return f"{total * 1e6 / iterations:.2f} µs per operation under cProfile\n{stream.getvalue()}"


async def profile_operation(database: Database, key: str, iterations: int, limit: int) -> str:
    """cProfile one operation on both async layers; return the two reports."""
    operation = next((op for op in OPERATIONS if op.key == key), None)
    if operation is None:
        raise SystemExit(f"unknown operation {key!r}; choose among {', '.join(OPERATION_KEYS)}")
    reports = []
    for name in ("sa_async", "sqlalchemy"):
        side = database.sides[name]
        assert isinstance(side, AsyncSide)
        await operation.run_async(side, iterations, Clock())
        profiler = cProfile.Profile()
        profiler.enable()
        await operation.run_async(side, iterations, Clock())
        profiler.disable()
        reports.append(f"== {database.name} / {key} / {name}: {iterations} iterations\n")
        reports.append(_profile_report(profiler, iterations, limit))
    return "".join(reports)


# -- command line


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.runtime",
        description="Per-operation CPU time of sa_async vs SQLAlchemy's ext.asyncio vs the sync "
        "Session: ratios, a Markdown table and a PNG chart.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 rounds of 1 ms samples (seconds)"
    )
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help=f"comma-separated, among {', '.join(DATABASES)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 25; --quick 3)")
    parser.add_argument(
        "--sample-ms",
        type=float,
        help="wall time of one sample, the iterations timed together (default 20; --quick 1)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results JSON; the .png chart and the .md table go beside it "
        f"(default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    parser.add_argument(
        "--postgresql-url", help="use this PostgreSQL server instead of starting a throw-away one"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="redraw the chart and the table of an earlier run's JSON; measure nothing",
    )
    parser.add_argument(
        "--profile",
        metavar="OPERATION",
        help=f"instead, cProfile one operation on both async layers ({', '.join(OPERATION_KEYS)})",
    )
    parser.add_argument(
        "--profile-iterations", type=int, default=2000, help="iterations under --profile (2000)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also time the sa_async of this checkout (e.g. a git worktree of an earlier "
        "commit), as a fourth implementation, in the same rounds",
    )
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, command: str) -> dict[str, Any] | str:
    names = [name.strip() for name in arguments.databases.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DATABASES))
    if unknown:
        raise SystemExit(f"unknown database(s) {unknown}; choose among {', '.join(DATABASES)}")
    rounds = arguments.rounds or (3 if arguments.quick else 25)
    sample_ns = int((arguments.sample_ms or (1.0 if arguments.quick else 20.0)) * 1e6)
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": rounds,
        "sample_ms": sample_ns / 1e6,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "greenlet": greenlet.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "sa_async": sa_async_provenance(),
        "databases": {},
    }
    baseline = None
    if arguments.baseline is not None:
        baseline = load_baseline(arguments.baseline)
        if "baseline" not in IMPLEMENTATIONS:
            IMPLEMENTATIONS.append("baseline")
        results["baseline"] = baseline_provenance(arguments.baseline)
    profiles = []
    with (
        tempfile.TemporaryDirectory(prefix="sa_async_bench_") as workdir,
        postgresql_server(arguments.postgresql_url, "postgresql" in names) as postgresql_url,
    ):
        for name in names:
            print(f"{name}: setting up", file=sys.stderr)
            database = await open_database(name, Path(workdir), postgresql_url, baseline)
            try:
                if arguments.profile:
                    profiles.append(
                        await profile_operation(
                            database, arguments.profile, arguments.profile_iterations, 30
                        )
                    )
                    continue
                found = await measure_database(database, rounds, sample_ns, progress=True)
            finally:
                await database.dispose()
            results["databases"][name] = {
                "operations": [summarise(op, found[op.key]) for op in OPERATIONS]
            }
    return "\n".join(profiles) if arguments.profile else results


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.render is not None:
        results = json.loads(arguments.render.read_text())
        print(write_outputs(results, arguments.render, chart=not arguments.no_chart))
        return 0
    raw = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "-m", "bench.runtime", *raw])
    outcome = asyncio.run(run(arguments, command))
    if isinstance(outcome, str):
        print(outcome)
    else:
        print(write_outputs(outcome, arguments.output, chart=not arguments.no_chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())
