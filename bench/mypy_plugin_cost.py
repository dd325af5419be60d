"""What the sa_async mypy plugin adds to mypy's own time on a project that uses sa_async.

The benchmark writes a project (``--modules`` modules, 240 by default: a quarter model modules
whose classes have the AsyncAttrs base, columns, deferred columns, relationships and a hybrid
property; the rest service modules that build sessions from sessionmakers of several kinds and
use ``get``, ``execute`` with typed selects and DML, ``run_sync``, a scoped session and
``await obj.awaitable_attrs.name``), and type-checks it with ``mypy --strict``, with the plugin
and without it (the same options otherwise, each with its own cache). Two phases:

- cold: a fresh cache, so mypy also checks the standard library's stubs and SQLAlchemy;
- incremental: one model module, imported by every service module, gains a column (then loses
  it, then gains it again: ``--incremental-runs``), and mypy runs again on the cache after each
  edit; the round's figure is the median of these runs.

The two configurations alternate within each round (which goes first alternates from round to
round); a round's ratio is with-plugin / without-plugin, and the report gives the median of the
per-round ratios with their interquartile range. The primary measure is the CPU time of the mypy
process (``getrusage(RUSAGE_CHILDREN)``: the machines are shared, so wall time is noisier); wall
time is the second column. Both configurations must type-check the project without an error.

    .venv/bin/python -m bench.mypy_plugin_cost                          # ~10 minutes
    .venv/bin/python -m bench.mypy_plugin_cost --modules 5 --repeats 1 --incremental-runs 1
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._report import quartiles, write_results

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPOSITORY / "bench" / "results" / "mypy_plugin.json"
CONFIGURATIONS = ("with_plugin", "without_plugin")
PHASES = ("cold", "incremental")
# The plugin may cost at most this fraction of mypy's own time.
TARGET = 0.05

BASE = """\
from sqlalchemy.orm import DeclarativeBase

from sa_async import AsyncAttrs


class Base(AsyncAttrs, DeclarativeBase):
    pass
"""

DATABASE = """\
import asyncio
from typing import Any

from sqlalchemy.orm import Session

from sa_async import (
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)


class RoutingSession(Session):
    pass


class RoutingAsyncSession(AsyncSession[RoutingSession]):
    sync_session_class = RoutingSession


engine = create_async_engine("sqlite+aiosqlite://")
maker = async_sessionmaker(engine, expire_on_commit=False)
routing_maker = async_sessionmaker(engine, class_=RoutingAsyncSession)
options: dict[str, Any] = {"expire_on_commit": False}
configured_maker = async_sessionmaker(engine, **options)
scoped = async_scoped_session(maker, scopefunc=asyncio.current_task)
"""

MODEL = """\
from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.base import Base


class Parent{n}(Base):
    __tablename__ = "parent_{n}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(deferred=True)
    children: Mapped[list[Child{n}]] = relationship(back_populates="parent")

    @hybrid_property
    def name_length(self) -> int:
        return len(self.name)

    def describe(self) -> str:
        return f"{{self.id}}: {{self.name}}"


class Child{n}(Base):
    __tablename__ = "child_{n}"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent_{n}.id"))
    parent: Mapped[Parent{n}] = relationship(back_populates="children")
    position: Mapped[int] = mapped_column(default=0)
"""

SERVICE = """\
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.database import configured_maker, maker, routing_maker, scoped
from app.models.model_0 import Parent0
from app.models.model_{m} import Child{m}, Parent{m}


async def load_{n}(parent_id: int) -> int:
    async with maker() as session:
        parent = await session.get(Parent{m}, parent_id)
        if parent is None:
            return 0
        children: list[Child{m}] = await parent.awaitable_attrs.children
        note: str | None = await parent.awaitable_attrs.note
        length: int = await parent.awaitable_attrs.name_length
        return len(children) + length + len(note or "")


async def names_{n}() -> list[str]:
    async with routing_maker() as session:
        result = await session.execute(select(Parent{m}.id, Parent{m}.name))
        return [name for _, name in result.all()]


def count_children_{n}(session: Session) -> int:
    return len(session.scalars(select(Child{m})).all())


async def count_{n}() -> int:
    async with configured_maker.begin() as session:
        count: int = await session.run_sync(count_children_{n})
        return count


async def rename_{n}(parent_id: int, name: str) -> int:
    session = scoped()
    statement = update(Parent{m}).where(Parent{m}.id == parent_id).values(name=name)
    result = await session.execute(statement)
    await session.commit()
    return result.rowcount


async def parent_of_{n}(child: Child{m}) -> str:
    parent: Parent{m} = await child.awaitable_attrs.parent
    return parent.describe()


async def core_{n}(core: Parent0) -> str:
    name: str = await core.awaitable_attrs.name
    children = await core.awaitable_attrs.children
    return name + str(len(children))
"""

# The incremental phase's edit: model_0 (imported by every service) gains a column.
EDITED_MODULE = "app/models/model_0.py"
EDIT_AFTER = "    name: Mapped[str] = mapped_column(String(50))\n"
EDIT = "    rank: Mapped[int] = mapped_column(default=0)\n"


@dataclass
class Run:
    round: int
    configuration: str
    phase: str
    cpu_s: float
    wall_s: float


def write_project(root: Path, modules: int) -> dict[str, int]:
    """Write the project's files under ``root``; return how many modules of each kind."""
    models = max(1, modules // 4)
    services = max(1, modules - models)
    files = {
        "app/__init__.py": "",
        "app/base.py": BASE,
        "app/database.py": DATABASE,
        "app/models/__init__.py": "",
        "app/services/__init__.py": "",
    }
    for n in range(models):
        files[f"app/models/model_{n}.py"] = MODEL.format(n=n)
    for n in range(services):
        files[f"app/services/service_{n}.py"] = SERVICE.format(n=n, m=n % models)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    options = f"strict = True\nmypy_path = {REPOSITORY / 'typings'}\n"
    (root / "with_plugin.ini").write_text(f"[mypy]\n{options}plugins = sa_async_mypy\n")
    (root / "without_plugin.ini").write_text(f"[mypy]\n{options}")
    return {"models": models, "services": services, "files": len(files)}


def run_mypy(root: Path, configuration: str) -> tuple[float, float]:
    """Type-check the project; return (CPU seconds of the mypy process, wall seconds)."""
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        f"{configuration}.ini",
        "--cache-dir",
        f".cache-{configuration}",
        "app",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(
            f"mypy ({configuration}) failed on the generated project:\n"
            + completed.stdout
            + completed.stderr
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure_configuration(
    root: Path, configuration: str, round_number: int, incremental_runs: int
) -> list[Run]:
    """A cold run on a fresh cache, then incremental runs, each after an edit of one model module.

    The edits alternate between adding the column and taking it out again: each changes the
    module's interface, so every module that imports it is checked again.
    """
    shutil.rmtree(root / f".cache-{configuration}", ignore_errors=True)
    cpu, wall = run_mypy(root, configuration)
    runs = [Run(round_number, configuration, "cold", cpu, wall)]
    edited = root / EDITED_MODULE
    original = edited.read_text()
    try:
        for number in range(incremental_runs):
            if number % 2 == 0:
                edited.write_text(original.replace(EDIT_AFTER, EDIT_AFTER + EDIT))
            else:
                edited.write_text(original)
            cpu, wall = run_mypy(root, configuration)
            runs.append(Run(round_number, configuration, "incremental", cpu, wall))
    finally:
        edited.write_text(original)
    return runs


def _figure(
    runs: list[Run], round_number: int, configuration: str, phase: str, measure: str
) -> float:
    """A round's figure for a phase: the median of its runs (one cold, several incremental)."""
    values: list[float] = [
        getattr(run, measure)
        for run in runs
        if (run.round, run.configuration, run.phase) == (round_number, configuration, phase)
    ]
    return statistics.median(values)


def summarise(runs: list[Run], repeats: int) -> dict[str, Any]:
    """Per phase: median times of each configuration and the median of the per-round ratios."""
    rounds = range(repeats)
    summary: dict[str, Any] = {}
    for phase in PHASES:
        ratios = {
            measure: quartiles(
                [
                    _figure(runs, n, "with_plugin", phase, measure)
                    / _figure(runs, n, "without_plugin", phase, measure)
                    for n in rounds
                ]
            )
            for measure in ("cpu_s", "wall_s")
        }
        summary[phase] = {
            "median_s": {
                configuration: {
                    measure: statistics.median(
                        _figure(runs, n, configuration, phase, measure) for n in rounds
                    )
                    for measure in ("cpu_s", "wall_s")
                }
                for configuration in CONFIGURATIONS
            },
            "ratio": ratios,
            "target_met": ratios["cpu_s"]["median"] < 1 + TARGET,
        }
    return summary


def markdown_report(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; {results['repeats']} rounds (each: 1 cold run and "
        f"{results['incremental_runs']} incremental runs per configuration); "
        f"{results['project']['files']} "
        f"modules ({results['project']['models']} model modules, "
        f"{results['project']['services']} service modules); Python {results['python']}, "
        f"mypy {results['mypy']}, SQLAlchemy {results['sqlalchemy']}; {results['machine']}; "
        f"{results['provenance']}.",
        "",
        "| phase | mypy CPU s, without plugin | with plugin | with / without, CPU "
        "| wall: with / without | target | status |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for phase in PHASES:
        row = results["summary"][phase]
        cpu = row["ratio"]["cpu_s"]
        wall = row["ratio"]["wall_s"]
        status = "met" if row["target_met"] else "**not met**"
        lines.append(
            f"| {phase} | {row['median_s']['without_plugin']['cpu_s']:.2f} "
            f"| {row['median_s']['with_plugin']['cpu_s']:.2f} "
            f"| {cpu['median']:.3f}x ({cpu['q1']:.3f}-{cpu['q3']:.3f}) "
            f"| {wall['median']:.3f}x | < {1 + TARGET:.2f}x | {status} |"
        )
    return "\n".join(lines) + "\n"


def _provenance() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", "mypy_plugin", "sa_async-stubs")
    except (OSError, subprocess.CalledProcessError):
        return "plugin from an unknown revision"
    return f"plugin at {commit}" + (" with uncommitted changes" if changed else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The sa_async mypy plugin's cost: mypy with the plugin vs without it."
    )
    parser.add_argument("--modules", type=int, default=240, help="modules to generate (240)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds (7)")
    parser.add_argument(
        "--incremental-runs", type=int, default=3, help="incremental runs per round (3)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results JSON; the .md table is written beside it "
        f"(default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})",
    )
    arguments = parser.parse_args(argv)

    import mypy.version
    import sqlalchemy

    raw = sys.argv[1:] if argv is None else argv
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="mypy-plugin-cost-") as directory:
        root = Path(directory)
        project = write_project(root, arguments.modules)
        for round_number in range(arguments.repeats):
            order = CONFIGURATIONS if round_number % 2 == 0 else CONFIGURATIONS[::-1]
            for configuration in order:
                runs.extend(
                    measure_configuration(
                        root, configuration, round_number, arguments.incremental_runs
                    )
                )
                print(f"round {round_number + 1}/{arguments.repeats}: {configuration} done")
    results: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "-m", "bench.mypy_plugin_cost", *raw]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeats": arguments.repeats,
        "incremental_runs": arguments.incremental_runs,
        "project": project,
        "python": platform.python_version(),
        "mypy": mypy.version.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count() or 1} CPUs",
        "provenance": _provenance(),
        "target": TARGET,
        "summary": summarise(runs, arguments.repeats),
        "runs": [asdict(run) for run in runs],
    }
    write_results(arguments.output, results, markdown_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
