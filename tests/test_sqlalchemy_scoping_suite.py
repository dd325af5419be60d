"""Acceptance: SQLAlchemy's own scoped-session tests pass with their imports pointed at sa_async.

``test/orm/test_scoping.py`` (``scoped_session``) and ``test/ext/asyncio/test_scoping.py``
(``async_scoped_session``), from the sdist of the installed SQLAlchemy, run on each database as
shipped and pointed at sa_async, side by side; every test passing for SQLAlchemy must pass for
sa_async. The sdist, the runner and the asyncio-module pointing are ``tests/sqlalchemy_suite.py``'s.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import pytest
import sqlalchemy

from tests import sqlalchemy_suite as suite
from tests.conftest import IN_CI

# Each upstream module and the name of its copy pointed at sa_async.
SCOPING_MODULES: Mapping[PurePosixPath, PurePosixPath] = {
    PurePosixPath("test/orm/test_scoping.py"): PurePosixPath("test/orm/test_scoping_sa_async.py"),
    PurePosixPath("test/ext/asyncio/test_scoping.py"): PurePosixPath(
        "test/ext/asyncio/test_scoping_sa_async.py"
    ),
}
# The two runs on PostgreSQL use databases of their own, so they can run at once.
PG_DATABASES = {"original": "test_scoping", "pointed": "test_scoping_sa_async"}


def write_pointed_modules(tree: Path) -> None:
    for module, pointed in SCOPING_MODULES.items():
        source = (tree / module).read_text(encoding="utf-8")
        if "orm" in module.parts:
            text = suite.point_imports_at_sa_async(source, {"scoped_session"}, "sqlalchemy.orm")
        else:
            text = suite.point_imports_at_sa_async(source, suite.session_layer_names())
        staged = tree / pointed.with_name(f".{pointed.name}.{os.getpid()}")
        staged.write_text(text, encoding="utf-8")
        staged.replace(tree / pointed)


@pytest.fixture(scope="session")
def scoping_suite_tree() -> Path:
    """SQLAlchemy's test tree with the pointed scoping modules; skips (fails in CI) without it."""
    try:
        sdist = suite.obtain_sdist(sqlalchemy.__version__)
    except suite.SuiteUnavailable as error:
        if IN_CI:
            pytest.fail(f"SQLAlchemy's test suite is required in CI: {error}")
        pytest.skip(f"SQLAlchemy's test suite is not available: {error}")
    tree = suite.prepare_tree(sdist)
    write_pointed_modules(tree)
    return tree


async def run_modules(
    tree: Path, modules: list[PurePosixPath], dburi: str, workdir: Path
) -> dict[str, suite.SuiteRun]:
    """Run ``modules`` one after the other (they share a database); runs keyed by module."""
    runs: dict[str, suite.SuiteRun] = {}
    for module in modules:
        module_workdir = workdir / module.parent.name
        module_workdir.mkdir(parents=True)
        runs[str(module)] = await suite.run_module(tree, module, dburi, module_workdir)
    return runs


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_sqlalchemy_scoping_suites_pass_on_sa_async(
    database: str,
    scoping_suite_tree: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    if database == "sqlite":
        dburis = dict.fromkeys(PG_DATABASES, "sqlite+aiosqlite:///:memory:")
    else:
        server_url: str = request.getfixturevalue("postgres_url")
        dburis = {
            run: await suite.create_pg_database(server_url, name)
            for run, name in PG_DATABASES.items()
        }

    started = time.monotonic()
    original, pointed = await asyncio.gather(
        run_modules(scoping_suite_tree, list(SCOPING_MODULES), dburis["original"], tmp_path / "o"),
        run_modules(
            scoping_suite_tree, list(SCOPING_MODULES.values()), dburis["pointed"], tmp_path / "p"
        ),
    )
    elapsed = time.monotonic() - started

    lines = [f"SQLAlchemy {sqlalchemy.__version__} scoping suites on {database} ({elapsed:.1f} s)"]
    failures: list[str] = []
    for module, pointed_module in SCOPING_MODULES.items():
        on_sqlalchemy = original[str(module)].outcomes
        on_sa_async = pointed[str(pointed_module)].outcomes
        passing = [test for test, outcome in on_sqlalchemy.items() if outcome == "passed"]
        failing = {
            test: on_sa_async.get(test, "not collected")
            for test in passing
            if on_sa_async.get(test) != "passed"
        }
        failures.extend(
            f"{module}::{test} (on sa_async: {outcome})" for test, outcome in failing.items()
        )
        lines.append(
            f"  {module}: {len(on_sqlalchemy)} run, {len(passing)} pass on SQLAlchemy, "
            f"{sum(outcome == 'passed' for outcome in on_sa_async.values())} pass on sa_async, "
            "0 excluded"
        )
        assert passing, f"no test of {module} passed on SQLAlchemy"
    report = "\n".join([*lines, *(f"    FAILED {failure}" for failure in failures)])
    with capsys.disabled():
        print(f"\n{report}")
    assert not failures, f"tests passing on SQLAlchemy fail on sa_async\n{report}"


def test_pointing_moves_scoped_session_only() -> None:
    source = (
        "from sqlalchemy.orm import relationship\n"
        "from sqlalchemy.orm import scoped_session\n"
        "from sqlalchemy.orm import Session\n"
    )
    pointed = suite.point_imports_at_sa_async(source, {"scoped_session"}, "sqlalchemy.orm")
    assert pointed == (
        "from sqlalchemy.orm import relationship\n"
        "from sa_async import scoped_session\n"
        "from sqlalchemy.orm import Session\n"
    )
