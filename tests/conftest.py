"""Shared fixtures: the databases (aiosqlite always, a PostgreSQL server the session starts itself),
async engines on them, and the ORM models used across the runtime tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, pool, text

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from tests._pg import PostgresServer, find_pg_bindir
from tests.models import Base

EngineFactory = Callable[[str], Awaitable[AsyncEngine]]
ReadBack = Callable[[str], Awaitable[list[Any]]]

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
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of each database in turn: a fresh aiosqlite file, then the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def checked_out(engine: AsyncEngine) -> int:
    """How many of the engine's pooled connections are in use."""
    connection_pool = engine.sync_engine.pool
    assert isinstance(connection_pool, pool.QueuePool), connection_pool
    return connection_pool.checkedout()


def untyped(value: object) -> Any:
    """Pass ``value`` where its type is wrong, as an unchecked program would: bad-input tests."""
    return value


def begin_sqlite_transactions_explicitly(async_engine: AsyncEngine) -> None:
    """Make an aiosqlite engine emit BEGIN itself, as SQLAlchemy's docs prescribe for SAVEPOINT.

    Left alone, the sqlite3 driver starts transactions only before DML, so a RELEASE SAVEPOINT
    issued outside one commits the savepoint's work for good, whatever the outer transaction does.
    """

    @event.listens_for(async_engine.sync_engine, "connect")
    def disable_driver_transactions(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(async_engine.sync_engine, "begin")
    def emit_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


async def recreate_tables(async_engine: AsyncEngine, *, create: bool = True) -> None:
    """Drop the test tables (and create them empty again, unless ``create`` is false)."""
    async with async_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # A test that leaks a connection holding locks then errors here instead of hanging.
            await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        await connection.run_sync(Base.metadata.drop_all)
        if create:
            await connection.run_sync(Base.metadata.create_all)


@pytest.fixture
async def engine_factory() -> AsyncIterator[EngineFactory]:
    """Build async engines on any URL with the test tables created empty; dropped and disposed
    after the test. sqlite engines are made transactional; every engine has a queue pool, so
    ``checked_out(engine)`` counts the connections in use."""
    engines: list[AsyncEngine] = []

    async def make_engine(url: str) -> AsyncEngine:
        async_engine = create_async_engine(url)
        if async_engine.dialect.name == "sqlite":
            begin_sqlite_transactions_explicitly(async_engine)
        engines.append(async_engine)
        await recreate_tables(async_engine)
        return async_engine

    try:
        yield make_engine
    finally:
        for async_engine in engines:
            try:
                await recreate_tables(async_engine, create=False)
            finally:
                await async_engine.dispose()


@pytest.fixture
async def engine(database_url: str, engine_factory: EngineFactory) -> AsyncEngine:
    """An async engine on each database, with the test models' tables created empty."""
    return await engine_factory(database_url)


@pytest.fixture
async def postgresql_engine(postgres_url: str, engine_factory: EngineFactory) -> AsyncEngine:
    """An async engine on the PostgreSQL server only, for what sqlite cannot show."""
    return await engine_factory(postgres_url)


@pytest.fixture
def maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A sessionmaker on ``engine`` with SQLAlchemy's defaults."""
    return async_sessionmaker(engine)


@pytest.fixture
def read_back(engine: AsyncEngine) -> ReadBack:
    """Run a SELECT on a connection of its own: what the database holds, not what a session sees."""

    async def read(sql: str) -> list[Any]:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql))).all())

    return read
