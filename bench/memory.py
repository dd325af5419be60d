"""Peak memory of many sessions and of a scoped registry under many tasks: sa_async vs SQLAlchemy.

Every measurement runs in a fresh subprocess, so that nothing an earlier one allocated (or left to
the allocator) counts. Two figures per run, from separate subprocesses:

* peak RSS growth: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process's peak resident
  set) at the end, minus the resident set (``/proc/self/statm``) just before the scenario,
  after the imports, the engine and the event loop are set up; the median of ``--repeat`` runs;
* traced peak: ``tracemalloc``'s peak of Python allocations during the scenario, over its start
  (exact and repeatable, but tracemalloc's own bookkeeping would inflate RSS, hence its own run);
  the same run reports what is still allocated once the scenario is over and garbage collected.

Scenarios (``--count`` defaults to 10,000):

``sessions``
    ``count`` sessions from a sessionmaker, all alive at once, then each closed. No IO: a
    session connects only when it first needs to. The sync Session is shown for reference.
``scoped``
    ``count`` tasks, each taking its session from an ``async_scoped_session`` keyed on
    ``asyncio.current_task`` and calling a proxied method; once every task holds its session,
    each calls ``await registry.remove()``. "tasks only" is the same tasks without a registry.
``scoped-no-remove``
    The same tasks ending without ``remove()``. SQLAlchemy's registry keeps every session of an
    ended task until ``remove()`` is called from that task (which can no longer happen); sa_async
    closes and drops them when the task is done. "retained" shows what is left.
``short-tasks``
    ``count`` short tasks, 100 at a time (a service's requests), each running ``SELECT 1`` through
    an ``async_scoped_session`` on a sqlite file with a pool of 20, then calling ``remove()``
    ("sa_async without remove" leaves that to the end of the task). What grows with the number
    of tasks served is what a long-running service accumulates: the per-task figure is the RSS
    growth divided by the tasks.

Run from the repository root::

    .venv/bin/python -m bench.memory                   # about a minute
    .venv/bin/python -m bench.memory --count 1000 --repeat 1 --output /tmp/memory.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPOSITORY / "bench" / "results" / "memory.json"
SCENARIOS: dict[str, tuple[str, ...]] = {
    "sessions": ("sa_async", "sqlalchemy", "sync"),
    "scoped": ("sa_async", "sqlalchemy", "tasks only"),
    "scoped-no-remove": ("sa_async", "sqlalchemy"),
    "short-tasks": ("sa_async", "sa_async without remove", "sqlalchemy"),
}
SHORT_TASKS_IN_FLIGHT = 100
MIB = 1024 * 1024


# -- the child: one scenario, one implementation, one figure


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize()


def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _makers(implementation: str) -> tuple[Any, Any]:
    """The sessionmaker and the scoped registry class of ``implementation``."""
    if implementation == "sa_async":
        import sa_async

        engine = sa_async.create_async_engine("sqlite+aiosqlite://")
        return sa_async.async_sessionmaker(engine), sa_async.async_scoped_session
    if implementation == "sqlalchemy":
        from sqlalchemy.ext import asyncio as sqlalchemy_asyncio

        engine = sqlalchemy_asyncio.create_async_engine("sqlite+aiosqlite://")
        return (
            sqlalchemy_asyncio.async_sessionmaker(engine),
            sqlalchemy_asyncio.async_scoped_session,
        )
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(create_engine("sqlite://")), None


async def _sessions(implementation: str, count: int) -> dict[str, Any]:
    maker, _ = _makers(implementation)

    async def scenario() -> None:
        sessions = [maker() for _ in range(count)]
        for session in sessions:
            if implementation == "sync":
                session.close()
            else:
                await session.close()

    return await _measure(scenario)


async def _scoped(implementation: str, count: int, remove: bool) -> dict[str, Any]:
    maker, registry_class = _makers(
        "sqlalchemy" if implementation == "tasks only" else implementation
    )
    registry = None
    if implementation != "tasks only":
        registry = registry_class(maker, scopefunc=asyncio.current_task)

    async def scenario() -> None:
        all_started = asyncio.Event()
        started = 0

        async def task() -> None:
            nonlocal started
            if registry is not None:
                registry()
                registry.expunge_all()
            started += 1
            if started == count:
                all_started.set()
            await all_started.wait()
            if registry is not None and remove:
                await registry.remove()

        await asyncio.gather(*(task() for _ in range(count)))

    found = await _measure(scenario)
    if registry is not None:
        # Let the close callbacks of ended scopes run (sa_async closes in background tasks).
        for _ in range(5):
            await asyncio.sleep(0)
        # sa_async's registry has a length; SQLAlchemy's keeps its sessions in a dict.
        scopes = registry.registry
        left = len(scopes) if implementation == "sa_async" else len(scopes.registry)
        found["sessions_left_in_registry"] = left
    return found


async def _short_tasks(implementation: str, count: int) -> dict[str, Any]:
    remove = implementation != "sa_async without remove"
    if implementation == "sqlalchemy":
        from sqlalchemy.ext import asyncio as library
    else:
        import sa_async as library  # type: ignore[no-redef]
    with tempfile.TemporaryDirectory() as directory:
        engine = library.create_async_engine(
            f"sqlite+aiosqlite:///{directory}/short_tasks.db", pool_size=20, max_overflow=0
        )
        registry = library.async_scoped_session(
            library.async_sessionmaker(engine), scopefunc=asyncio.current_task
        )
        in_flight = asyncio.Semaphore(SHORT_TASKS_IN_FLIGHT)

        async def request() -> None:
            async with in_flight:
                await registry.execute(text("SELECT 1"))
                if remove:
                    await registry.remove()

        async def serve(requests: int) -> None:
            # In batches, as a service takes them: the finished tasks go.
            for start in range(0, requests, 1000):
                batch = min(1000, requests - start)
                await asyncio.gather(*(request() for _ in range(batch)))
            for _ in range(10):
                await asyncio.sleep(0.001)  # the closes of ended scopes

        await serve(min(count, 1000))  # warm up: connections, workers, caches
        found = await _measure(lambda: serve(count))
        await engine.dispose()
    return found


async def _measure(scenario: Callable[[], Coroutine[Any, Any, None]]) -> dict[str, Any]:
    gc.collect()
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        await scenario()
        peak = tracemalloc.get_traced_memory()[1]
        for _ in range(5):
            await asyncio.sleep(0)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
        return {"traced_peak_bytes": peak - start, "retained_bytes": retained - start}
    rss_before = _current_rss_bytes()
    await scenario()
    return {"peak_rss_bytes": _peak_rss_bytes(), "rss_growth_bytes": _peak_rss_bytes() - rss_before}


def child(scenario: str, implementation: str, count: int, traced: bool) -> dict[str, Any]:
    if traced:
        tracemalloc.start()
    if scenario == "sessions":
        return asyncio.run(_sessions(implementation, count))
    if scenario == "short-tasks":
        return asyncio.run(_short_tasks(implementation, count))
    return asyncio.run(_scoped(implementation, count, remove=scenario == "scoped"))


# -- the parent: run the children, report


def _run_child(scenario: str, implementation: str, count: int, traced: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.memory",
        "--child",
        scenario,
        implementation,
        "--count",
        str(count),
    ]
    if traced:
        command.append("--traced")
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY)
    if finished.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{finished.stderr}")
    found: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return found


def measure(count: int, repeat: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for scenario, implementations in SCENARIOS.items():
        found[scenario] = {}
        for implementation in implementations:
            print(f"  {scenario}: {implementation}", file=sys.stderr)
            rss_runs = [_run_child(scenario, implementation, count, False) for _ in range(repeat)]
            traced = _run_child(scenario, implementation, count, True)
            found[scenario][implementation] = {
                "rss_growth_bytes": statistics.median(r["rss_growth_bytes"] for r in rss_runs),
                "peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in rss_runs),
                "rss_runs": rss_runs,
                **traced,
            }
    return found


def _mib(value: float) -> str:
    return f"{value / MIB:.1f}"


def markdown_report(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; {results['count']:,} sessions / tasks; median of "
        f"{results['repeat']} subprocesses for RSS; Python {results['python']}, "
        f"SQLAlchemy {results['sqlalchemy']}; {results['sa_async']}.",
        "",
        "| scenario | implementation | peak RSS growth MiB | peak RSS MiB | traced peak MiB "
        "| retained after, MiB | RSS growth per task, bytes | sessions left in registry "
        "| sa_async / SQLAlchemy (RSS growth, traced peak) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, implementations in results["scenarios"].items():
        reference = implementations["sqlalchemy"]
        for implementation, row in implementations.items():
            ratio = ""
            if implementation.startswith("sa_async"):
                ratio = (
                    f"{row['rss_growth_bytes'] / reference['rss_growth_bytes']:.2f}x, "
                    f"{row['traced_peak_bytes'] / reference['traced_peak_bytes']:.2f}x"
                )
            left = row.get("sessions_left_in_registry", "")
            lines.append(
                f"| {scenario} | {implementation} | {_mib(row['rss_growth_bytes'])} "
                f"| {_mib(row['peak_rss_bytes'])} | {_mib(row['traced_peak_bytes'])} "
                f"| {_mib(row['retained_bytes'])} "
                f"| {row['rss_growth_bytes'] / results['count']:,.0f} | {left} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Peak memory of sessions and scoped registries: sa_async vs SQLAlchemy."
    )
    parser.add_argument("--count", type=int, default=10_000, help="sessions / tasks (10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="RSS subprocesses per figure (3)")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results JSON; the .md table is written beside it "
        f"(default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("SCENARIO", "IMPLEMENTATION"), help=argparse.SUPPRESS
    )
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        scenario, implementation = arguments.child
        print(json.dumps(child(scenario, implementation, arguments.count, arguments.traced)))
        return 0

    import sqlalchemy

    from bench._report import sa_async_provenance, write_results

    raw = sys.argv[1:] if argv is None else argv
    results = {
        "command": shlex.join([".venv/bin/python", "-m", "bench.memory", *raw]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "count": arguments.count,
        "repeat": arguments.repeat,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sa_async": sa_async_provenance(),
        "scenarios": measure(arguments.count, arguments.repeat),
    }
    write_results(arguments.output, results, markdown_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
