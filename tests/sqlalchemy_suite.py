"""SQLAlchemy's own asyncio-session tests, run against sa_async.

The acceptance check of the drop-in contract: ``test/ext/asyncio/test_session.py`` from the sdist
of the installed SQLAlchemy runs twice under SQLAlchemy's pytest plugin, as shipped and with its
session-layer imports pointed at sa_async. Every test that passes for SQLAlchemy must pass for
sa_async, except those listed in ``WHITE_BOX`` (and, until sa_async has ``async_scoped_session``,
those in ``SCOPED``). ``tests/test_sqlalchemy_suite.py`` drives this module.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import make_url, text

import sa_async
from sa_async import create_async_engine

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "sqlalchemy-suite"

SUITE_MODULE = PurePosixPath("test/ext/asyncio/test_session.py")
POINTED_MODULE = PurePosixPath("test/ext/asyncio/test_session_sa_async.py")

# The session layer: names the module imports from sqlalchemy.ext.asyncio that sa_async replaces.
# Each is pointed at sa_async once sa_async has it; the engine layer and the exceptions stay.
SESSION_LAYER_NAMES = frozenset(
    {
        "AsyncAttrs",
        "AsyncSession",
        "AsyncSessionTransaction",
        "async_object_session",
        "async_scoped_session",
        "async_session",
        "async_sessionmaker",
        "close_all_sessions",
    }
)

# Tests that cannot pass for any independent implementation of the public API, as
# "Class::test_name[params]" patterns ("*" matches anything), each with the reason.
WHITE_BOX: Mapping[str, str] = {
    "AsyncProxyTest::test_gc": (
        "counts SQLAlchemy's private ReversibleProxy._proxy_objects registry, which sa_async "
        "never fills; the public side is test_async_object_session_del"
    ),
}

# Tests of async_scoped_session, left to SQLAlchemy's class until sa_async implements it.
SCOPED: Mapping[str, str] = {
    "AsyncBindAttributeTest::*[async_scoped_session]": (
        "scoped: separate issue (async_scoped_session is still SQLAlchemy's here)"
    ),
}

RUN_TIMEOUT_SECONDS = 600


class SuiteUnavailable(Exception):
    """SQLAlchemy's sdist could not be obtained."""


def obtain_sdist(version: str, cache_dir: Path = CACHE_DIR) -> Path:
    """Return SQLAlchemy ``version``'s sdist, downloaded into ``cache_dir`` unless already there."""
    cached = _find_sdist(version, cache_dir)
    if cached is not None:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "sqlalchemy",
        "--disable-pip-version-check", "--quiet", f"sqlalchemy=={version}", "-d", str(cache_dir),
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SuiteUnavailable(f"'pip download' of sqlalchemy=={version} failed: {error}") from None
    cached = _find_sdist(version, cache_dir)
    if completed.returncode != 0 or cached is None:
        errors = [line for line in completed.stderr.splitlines() if line.startswith("ERROR")]
        detail = "\n".join(errors[-3:]) or completed.stderr.strip()[-1000:]
        raise SuiteUnavailable(
            f"'pip download' of the sqlalchemy=={version} sdist failed "
            f"(exit {completed.returncode}): {detail}"
        )
    return cached


def _find_sdist(version: str, cache_dir: Path) -> Path | None:
    wanted = f"sqlalchemy-{version}.tar.gz"
    if cache_dir.is_dir():
        for candidate in cache_dir.iterdir():
            if candidate.name.lower() == wanted:
                return candidate
    return None


def prepare_tree(sdist: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Unpack the parts of ``sdist`` the suite needs (once) and write the pointed module.

    Returns the unpacked directory: the sdist's pytest configuration, its ``test/`` package and the
    bootstrap of SQLAlchemy's pytest plugin. The library itself is the installed one.
    """
    tree = cache_dir / sdist.name[: -len(".tar.gz")]
    if not (tree / SUITE_MODULE).is_file():
        _unpack(sdist, tree)
    original = (tree / SUITE_MODULE).read_text(encoding="utf-8")
    pointed = point_imports_at_sa_async(original, session_layer_names())
    # Written aside and renamed, so that a concurrent run never reads a partial module.
    staged = tree / POINTED_MODULE.with_name(f".{POINTED_MODULE.name}.{os.getpid()}")
    staged.write_text(pointed, encoding="utf-8")
    staged.replace(tree / POINTED_MODULE)
    return tree


def _unpack(sdist: Path, tree: Path) -> None:
    wanted = ("test/", "lib/sqlalchemy/testing/plugin/", "pyproject.toml", "setup.cfg")
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=tree.parent))
    try:
        with tarfile.open(sdist) as archive:
            all_members = archive.getmembers()
            top = all_members[0].name.split("/", 1)[0] if all_members else ""
            members = [
                member
                for member in all_members
                if member.name.startswith(f"{top}/")
                and member.name[len(top) + 1 :].startswith(wanted)
            ]
            if hasattr(tarfile, "data_filter"):
                archive.extractall(staging, members, filter="data")
            else:  # pragma: no cover - Pythons without PEP 706's extraction filters
                archive.extractall(staging, members)
    except tarfile.TarError as error:
        shutil.rmtree(staging, ignore_errors=True)
        sdist.unlink(missing_ok=True)  # downloaded again next time
        raise SuiteUnavailable(f"{sdist.name} is not a readable sdist: {error}") from None
    try:
        # A tree without the module is a partial unpack; one with it, a concurrent run's.
        if tree.exists() and not (tree / SUITE_MODULE).is_file():
            shutil.rmtree(tree)
        if not tree.exists():
            (staging / top).rename(tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not (tree / SUITE_MODULE).is_file():
        raise SuiteUnavailable(f"{sdist.name} has no {SUITE_MODULE}")


def session_layer_names() -> frozenset[str]:
    """The session-layer names sa_async provides today."""
    return frozenset(name for name in SESSION_LAYER_NAMES if hasattr(sa_async, name))


def point_imports_at_sa_async(
    source: str, names: Collection[str], module: str = "sqlalchemy.ext.asyncio"
) -> str:
    """Rewrite the module-level ``from <module> import ...`` of ``names``.

    Those names are imported from ``sa_async`` instead; the others keep their import. Raises
    ValueError when the module imports none of them, or imports one in another form (nested, from
    a submodule), so that a changed upstream module is noticed rather than silently run against
    SQLAlchemy.
    """
    lines = source.splitlines(keepends=True)
    pointed_any = False
    # Bottom-up, so that the line numbers of the statements still to rewrite stay valid.
    statements = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.ImportFrom) and node.module == module and node.level == 0
    ]
    for statement in reversed(statements):
        moved = [alias for alias in statement.names if alias.name in names]
        if not moved:
            continue
        pointed_any = True
        kept = [alias for alias in statement.names if alias.name not in names]
        replacement = [f"from sa_async import {_alias_list(moved)}\n"]
        if kept:
            replacement.insert(0, f"from {module} import {_alias_list(kept)}\n")
        assert statement.end_lineno is not None
        lines[statement.lineno - 1 : statement.end_lineno] = replacement
    pointed = "".join(lines)
    left_behind = sorted(
        alias.name
        for node in ast.walk(ast.parse(pointed))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(module)
        for alias in node.names
        if alias.name in names
    )
    if not pointed_any or left_behind:
        raise ValueError(
            f"the module imports none of {sorted(names)} from {module}, "
            f"or imports {left_behind} in a form not rewritten; update tests/sqlalchemy_suite.py "
            "for the new upstream layout"
        )
    return pointed


def _alias_list(aliases: list[ast.alias]) -> str:
    return ", ".join(
        alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"
        for alias in aliases
    )


@dataclass(frozen=True)
class SuiteRun:
    """One run of one module: the outcome of each test, keyed "Class::test_name[params]"."""

    outcomes: Mapping[str, str]
    returncode: int
    log: Path


async def run_module(tree: Path, module: PurePosixPath, dburi: str, workdir: Path) -> SuiteRun:
    """Run ``module`` of ``tree`` on ``dburi`` with SQLAlchemy's pytest plugin, in a subprocess."""
    junit = workdir / f"{module.stem}.xml"
    log = workdir / f"{module.stem}.log"
    command = [
        # -s: SQLAlchemy's conftest then leaves sys.path alone and the installed SQLAlchemy (the
        # one sa_async runs on) is tested, not the sdist's lib/.
        sys.executable, "-s", "-m", "pytest",
        # The sdist's pytest configuration, not ours.
        "-c", str(tree / "pyproject.toml"), "--rootdir", str(tree),
        "-p", "no:cacheprovider", "-q", "--junitxml", str(junit), "--dburi", dburi,
        str(module),
    ]  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    }
    # SQLAlchemy's plugin comes from its conftest; other installed plugins (pytest-asyncio...)
    # stay out of its way.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            returncode = await asyncio.wait_for(process.wait(), RUN_TIMEOUT_SECONDS)
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
    outcomes = read_outcomes(junit, module) if junit.is_file() else {}
    # 0: all passed, 1: some failed; anything else (usage, collection error...) is no result.
    if returncode not in (0, 1) or not outcomes:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(
            f"running {module} on {dburi} gave no test results (exit {returncode}):\n{tail}"
        )
    return SuiteRun(outcomes=outcomes, returncode=returncode, log=log)


_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2}


def read_outcomes(junit: Path, module: PurePosixPath) -> dict[str, str]:
    """Each test's outcome ("passed", "skipped" or "failed") from a junit XML report."""
    module_prefix = ".".join(module.with_suffix("").parts) + "."
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        class_name = case.get("classname", "").removeprefix(module_prefix)
        test_id = f"{class_name}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcome = "failed"
        elif "skipped" in tags:
            outcome = "skipped"
        else:
            outcome = "passed"
        previous = outcomes.get(test_id, "passed")
        outcomes[test_id] = max(previous, outcome, key=_SEVERITY.__getitem__)
    return outcomes


def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def exclusions() -> dict[str, str]:
    """The exclusion patterns in force: the white-box tests, plus scoped ones until implemented."""
    active = dict(WHITE_BOX)
    if not hasattr(sa_async, "async_scoped_session"):
        active.update(SCOPED)
    return active


@dataclass
class Comparison:
    """What the two runs on one database say about sa_async."""

    database: str
    run: int
    passed_on_sqlalchemy: int
    passed_on_sa_async: int
    # Exclusion pattern -> {test id: its outcome on sa_async}.
    excluded: dict[str, dict[str, str]] = field(default_factory=dict)
    # Test passing on SQLAlchemy -> its outcome on sa_async.
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def unmatched_exclusions(self) -> list[str]:
        return [pattern for pattern, tests in self.excluded.items() if not tests]


def compare(database: str, original: SuiteRun, pointed: SuiteRun) -> Comparison:
    """Check that every test passing on SQLAlchemy passes on sa_async, bar the exclusions."""
    matchers = {pattern: _matcher(pattern) for pattern in exclusions()}
    comparison = Comparison(
        database=database,
        run=len(original.outcomes),
        passed_on_sqlalchemy=sum(o == "passed" for o in original.outcomes.values()),
        passed_on_sa_async=sum(o == "passed" for o in pointed.outcomes.values()),
        excluded={pattern: {} for pattern in matchers},
    )
    for test_id, outcome in sorted(original.outcomes.items()):
        sa_async_outcome = pointed.outcomes.get(test_id, "not collected")
        pattern = next((p for p, m in matchers.items() if m.fullmatch(test_id)), None)
        if pattern is not None:
            comparison.excluded[pattern][test_id] = sa_async_outcome
        elif outcome == "passed" and sa_async_outcome != "passed":
            comparison.failures[test_id] = sa_async_outcome
    return comparison


def summary(comparison: Comparison, version: str, seconds: float) -> str:
    """A readable report of one database's comparison."""
    reasons = exclusions()

    def count(kind: str) -> str:
        tests = {
            test_id: outcome
            for pattern, matched in comparison.excluded.items()
            if (pattern in SCOPED) == (kind == "scoped")
            for test_id, outcome in matched.items()
        }
        passing = sum(outcome == "passed" for outcome in tests.values())
        return f"{len(tests)} ({passing} of them pass on sa_async anyway)"

    lines = [
        f"SQLAlchemy {version} {SUITE_MODULE} on {comparison.database} ({seconds:.1f} s)",
        f"  tests run:              {comparison.run}",
        f"  passed on SQLAlchemy:   {comparison.passed_on_sqlalchemy}",
        f"  passed on sa_async:     {comparison.passed_on_sa_async}",
        f"  excluded as white-box:  {count('white-box')}",
        f"  excluded as scoped:     {count('scoped')}",
        f"  regressions:            {len(comparison.failures)}",
    ]
    for test_id, outcome in comparison.failures.items():
        lines.append(f"    FAILED {test_id} (on sa_async: {outcome})")
    # Worded so that a passing run prints nothing that reads as a failure: an excluded test
    # that does not pass on sa_async is what its exclusion expects.
    excluded_outcome = {
        "passed": "passes anyway",
        "skipped": "is skipped",
        "failed": "does not pass, as the exclusion expects",
    }
    for pattern, matched in comparison.excluded.items():
        outcomes = "; ".join(
            f"{test_id} {excluded_outcome[outcome]}" for test_id, outcome in matched.items()
        )
        lines.append(f"    excluded {pattern}: {reasons[pattern]}")
        lines.append(f"      on sa_async: {outcomes or 'matches no test'}")
    return "\n".join(lines)


PG_SCHEMAS = ("test_schema", "test_schema_2")


async def create_pg_database(server_url: str, database: str) -> str:
    """(Re)create ``database`` with the schemas SQLAlchemy's tests expect; return its URL."""
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            await connection.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        await admin.dispose()
    url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for schema in PG_SCHEMAS:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await engine.dispose()
    return url
