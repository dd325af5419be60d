"""Shared fixtures: the databases (aiosqlite always, a PostgreSQL server the session starts itself),
async engines on them, and the ORM models used across the runtime tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import pool

from sa_async import AsyncEngine, create_async_engine
from tests._pg import PostgresServer, find_pg_bindir
from tests.models import Base

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole test session.

    Skips when PostgreSQL is not installed, except in CI where that is a failure.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if IN_CI:
            pytest.fail(f"{message}; CI must install the 'postgresql' package")
        pytest.skip(message)
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url


@pytest.fixture(params=DATABASES)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> str:
    """The URL of each database in turn: a fresh aiosqlite file, then the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on each database, with the test models' tables created empty."""
    options: dict[str, object] = {}
    if database_url.startswith("sqlite"):
        options["poolclass"] = pool.NullPool
    async_engine = create_async_engine(database_url, **options)
    async with async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield async_engine
    finally:
        async with async_engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
        await async_engine.dispose()
