"""Shared fixtures: the databases (aiosqlite always, a PostgreSQL server the session starts itself),
async engines on them, and the ORM models used across the runtime tests; and the helpers that
several test modules use: rows stored and read back, statements counted, an operation held in
progress in another task, the bridge calls recorded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, pool, select, text
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import await_

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)
from sa_async import session as session_module
from sa_async.exc import ImplicitIOError
from tests._pg import PostgresServer, ReplicatedCluster, find_pg_bindir
from tests.models import Address, Base, User

EngineFactory = Callable[[str], Awaitable[AsyncEngine]]
ReadBack = Callable[[str], Awaitable[list[Any]]]
Maker = async_sessionmaker[AsyncSession]
AsyncScoped = async_scoped_session[AsyncSession]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATABASES = ("sqlite", "postgresql")


def postgresql_binaries() -> Path:
    """Return the folder of PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup, psql).

    Skips the test when PostgreSQL is not installed, except in CI where that is a failure.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found"
        if IN_CI:
            pytest.fail(f"{message}; CI must install the 'postgresql' package")
        pytest.skip(message)
    return bindir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole test session."""
    bindir = postgresql_binaries()
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


async def let_ended_scopes_close(async_engine: AsyncEngine, timeout: float = 10.0) -> None:
    """Give the closes of ended scopes' sessions time to return their connections.

    pytest-asyncio runs a test and its fixtures' teardown in different tasks: the session that a
    task-scoped registry gave the test is closed in the background once the test's task is done,
    and sqlite refuses the tables' DROP at once (no busy wait: it would deadlock) while that
    session's uncommitted write still holds the database's write lock.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while checked_out(async_engine) and loop.time() < deadline:
        await asyncio.sleep(0.001)


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
                await let_ended_scopes_close(async_engine)
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


@pytest.fixture
def scoped(engine: AsyncEngine) -> AsyncScoped:
    """An async registry scoped by task, on ``engine``."""
    return async_scoped_session(async_sessionmaker(engine), asyncio.current_task)


class StatementCounter:
    """Counts the statements an engine sends to its database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.count += 1


@pytest.fixture
def sent(engine: AsyncEngine) -> StatementCounter:
    """Count the statements ``engine`` sends from now on."""
    return StatementCounter(engine)


async def stored_names(read_back: ReadBack) -> list[str]:
    """The names of the stored users, in the order of their ids."""
    return [row[0] for row in await read_back("SELECT name FROM users ORDER BY id")]


async def add_users(maker: Maker, *names: str) -> list[int]:
    """Store one user per name; return their ids."""
    async with maker.begin() as session:
        users = [User(name=name) for name in names]
        session.add_all(users)
        await session.flush()
        return [user.id for user in users]


async def stored_user(maker: async_sessionmaker[AsyncSession], name: str = "ada") -> int:
    """Store one user; return its id."""
    async with maker.begin() as session:
        user = User(name=name)
        session.add(user)
        await session.flush()
        return user.id


async def add_user_with_address(maker: Maker) -> int:
    """Store a user with a bio and an address; return its id."""
    async with maker.begin() as session:
        user = User(name="ann", bio="bio", addresses=[Address(email="a@x")])
        session.add(user)
        await session.flush()
        return user.id


@contextlib.contextmanager
def raises_implicit_io(attribute: str) -> Iterator[None]:
    """Expect an attribute load outside the bridge refused before any IO, naming the attribute
    (sa_async's ImplicitIOError, a MissingGreenlet)."""
    with pytest.raises(ImplicitIOError, match=rf"^{re.escape(attribute)} .*awaitable_attrs"):
        yield


@contextlib.contextmanager
def recorded_bridge_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Record the functions that AsyncSession runs in the greenlet bridge within the block."""
    bridged: list[object] = []
    # The runtime's module global (the stubs do not declare private imports).
    real_run_in_bridge = getattr(session_module, "run_in_bridge")  # noqa: B009

    async def recording_run_in_bridge(fn: Any, *args: Any, **kw: Any) -> Any:
        bridged.append(fn)
        return await real_run_in_bridge(fn, *args, **kw)

    monkeypatch.setattr(session_module, "run_in_bridge", recording_run_in_bridge)
    yield bridged


async def wait_forever_in_the_bridge(session: AsyncSession, started: asyncio.Event) -> None:
    """Run sync code in ``session`` that sets ``started`` and then waits (30 s) in the bridge."""

    def sync_code(sync_session: Session) -> None:
        started.set()
        await_(asyncio.sleep(30))

    await session.run_sync(sync_code)


@contextlib.asynccontextmanager
async def operation_in_progress(session: AsyncSession) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``session.execute()`` in a task of its own, paused inside the bridge (before its
    statement is sent) for as long as the block runs; the task is awaited at the end."""
    entered, release = asyncio.Event(), asyncio.Event()

    def pause(orm_execute_state: ORMExecuteState) -> None:
        if not release.is_set():
            entered.set()
            await_(release.wait())

    event.listen(session.sync_session, "do_orm_execute", pause)
    holder = asyncio.create_task(session.scalar(select(func.count(User.id))), name="the holder")
    await entered.wait()
    try:
        yield holder
    finally:
        release.set()
        if not holder.cancelled():
            await holder
        event.remove(session.sync_session, "do_orm_execute", pause)


@pytest.fixture(scope="session")
def replicated_cluster() -> Iterator[ReplicatedCluster]:
    """A PostgreSQL primary and a hot standby streaming from it, for the whole test session."""
    bindir = postgresql_binaries()
    cluster = ReplicatedCluster(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
