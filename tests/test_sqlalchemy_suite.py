"""Acceptance: SQLAlchemy's own asyncio-session tests pass with their imports pointed at sa_async.

For each database, SQLAlchemy's ``test/ext/asyncio/test_session.py`` (from the sdist of the
installed version) runs as shipped and pointed at sa_async, side by side; every test that passes
for SQLAlchemy must pass for sa_async, bar the exclusions listed in ``tests/sqlalchemy_suite.py``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import make_url

from tests import sqlalchemy_suite as suite
from tests.conftest import IN_CI

# The two runs of a database use two databases of the PostgreSQL server, so they can run at once.
PG_DATABASES = {"original": "test", "pointed": "test_sa_async"}


@pytest.fixture(scope="session")
def suite_tree() -> Path:
    """SQLAlchemy's test tree, pointed module written; skips (fails in CI) if unavailable."""
    try:
        return suite.prepare_tree(suite.obtain_sdist(sqlalchemy.__version__))
    except suite.SuiteUnavailable as error:
        if IN_CI:
            pytest.fail(f"SQLAlchemy's test suite is required in CI: {error}")
        pytest.skip(f"SQLAlchemy's test suite is not available: {error}")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_sqlalchemy_suite_passes_on_sa_async(
    database: str,
    suite_tree: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    if database == "sqlite":
        dburis = {"original": "sqlite+aiosqlite:///:memory:"}
        dburis["pointed"] = dburis["original"]
    else:
        server_url: str = request.getfixturevalue("postgres_url")
        dburis = {
            run: await suite.create_pg_database(server_url, name)
            for run, name in PG_DATABASES.items()
        }
    (tmp_path / "original").mkdir()
    (tmp_path / "pointed").mkdir()

    started = time.monotonic()
    original, pointed = await asyncio.gather(
        suite.run_module(suite_tree, suite.SUITE_MODULE, dburis["original"], tmp_path / "original"),
        suite.run_module(suite_tree, suite.POINTED_MODULE, dburis["pointed"], tmp_path / "pointed"),
    )
    elapsed = time.monotonic() - started

    dialect = make_url(dburis["original"]).drivername
    comparison = suite.compare(dialect, original, pointed)
    report = suite.summary(comparison, sqlalchemy.__version__, elapsed)
    with capsys.disabled():
        print(f"\n{report}")

    assert comparison.passed_on_sqlalchemy > 0, f"no test passed on SQLAlchemy\n{report}"
    assert not comparison.unmatched_exclusions, (
        f"exclusions that match no test (renamed upstream?); update the list\n{report}"
    )
    assert not comparison.failures, (
        f"tests passing on SQLAlchemy fail on sa_async (logs: {pointed.log})\n{report}"
    )


def test_pointing_moves_only_the_session_layer() -> None:
    source = (
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from sqlalchemy.ext.asyncio import (\n"
        "    async_scoped_session,\n"
        "    create_async_engine as make_engine,\n"
        "    async_sessionmaker,\n"
        ")\n"
        "from sqlalchemy.ext.asyncio import exc as async_exc\n"
        "x = 1\n"
    )
    pointed = suite.point_imports_at_sa_async(source, {"AsyncSession", "async_sessionmaker"})
    assert pointed == (
        "from sa_async import AsyncSession\n"
        "from sqlalchemy.ext.asyncio import async_scoped_session, create_async_engine as "
        "make_engine\n"
        "from sa_async import async_sessionmaker\n"
        "from sqlalchemy.ext.asyncio import exc as async_exc\n"
        "x = 1\n"
    )


def test_pointing_refuses_a_module_without_session_layer_imports() -> None:
    with pytest.raises(ValueError, match="imports none of"):
        suite.point_imports_at_sa_async("from sqlalchemy import select\n", {"AsyncSession"})


def test_pointing_refuses_a_session_layer_import_it_cannot_rewrite() -> None:
    source = (
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from sqlalchemy.ext.asyncio.session import async_sessionmaker\n"
    )
    with pytest.raises(ValueError, match="async_sessionmaker"):
        suite.point_imports_at_sa_async(source, {"AsyncSession", "async_sessionmaker"})
