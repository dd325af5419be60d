"""The databases of ``bench.runtime``: engines for the three implementations, seeded alike.

``sqlite``
    aiosqlite on a file (its worker thread does the sqlite3 calls); the sync Session uses sqlite3
    on the same file.
``sqlite-noio``
    The session layer alone: an in-memory database, and aiosqlite's worker thread taken out of
    the picture (``_InlineConnection``). Every driver call runs at once on the event loop's
    thread, so each ``await`` the bridge makes completes without suspending and no thread
    hand-off is paid. What is left is the session layer, the bridge, SQLAlchemy Core and sqlite3
    on one thread: what the sync Session does on an in-memory sqlite3 connection, plus the bridge.
``postgresql``
    asyncpg; the sync Session uses psycopg 3. A throw-away server (``tests/_pg.py``) is started
    unless a URL is given.
"""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Connection, Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn

import sa_async
from bench._operations import SEED_ROWS, AsyncSide, Base, SyncSide, User
from sa_async._bridge import run_in_bridge

_T = TypeVar("_T")
DATABASES = ("sqlite", "sqlite-noio", "postgresql")


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection without its worker thread: each call runs at once, in the caller's
    thread, so the awaitables the bridge awaits complete without suspending."""

    async def _execute(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> _InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, _InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None


async def _connect_inline_memory() -> _InlineConnection:
    return await _InlineConnection(partial(sqlite3.connect, ":memory:"), 64)


@dataclass
class Database:
    """One database: an async engine shared by both async layers, and a sync engine."""

    name: str
    async_engine: sqlalchemy_asyncio.AsyncEngine
    sync_engine: Engine
    sides: dict[str, AsyncSide | SyncSide] = field(init=False)

    # A copy of sa_async from another checkout (bench/_baseline.py), timed as "baseline".
    baseline: ModuleType | None = None

    def __post_init__(self) -> None:
        sa_maker = sa_async.async_sessionmaker(self.async_engine)
        sqlalchemy_maker = sqlalchemy_asyncio.async_sessionmaker(self.async_engine)
        sync_maker = sessionmaker(self.sync_engine)
        self.sides = {
            "sa_async": AsyncSide(
                "sa_async",
                self.async_engine,
                sa_maker,
                sa_async.async_scoped_session(sa_maker, scopefunc=asyncio.current_task),
                run_in_bridge,
            ),
            "sqlalchemy": AsyncSide(
                "sqlalchemy",
                self.async_engine,
                sqlalchemy_maker,
                sqlalchemy_asyncio.async_scoped_session(
                    sqlalchemy_maker, scopefunc=asyncio.current_task
                ),
                greenlet_spawn,
            ),
            "sync": SyncSide(self.sync_engine, sync_maker, scoped_session(sync_maker)),
        }
        if self.baseline is not None:
            baseline_maker = self.baseline.async_sessionmaker(self.async_engine)
            self.sides["baseline"] = AsyncSide(
                "baseline",
                self.async_engine,
                baseline_maker,
                self.baseline.async_scoped_session(baseline_maker, scopefunc=asyncio.current_task),
                importlib.import_module(f"{self.baseline.__name__}._bridge").run_in_bridge,
            )

    async def dispose(self) -> None:
        await self.async_engine.dispose()
        self.sync_engine.dispose()


def _seed(connection: Connection) -> None:
    Base.metadata.drop_all(connection)
    Base.metadata.create_all(connection)
    with Session(connection) as session:
        session.add_all(User(id=ident, name=f"user {ident}") for ident in range(1, SEED_ROWS + 1))
        session.flush()


async def _check_seeded(database: Database) -> None:
    count_users = select(func.count()).select_from(User)
    async with database.async_engine.connect() as connection:
        async_rows = await connection.scalar(count_users)
    with database.sync_engine.connect() as sync_connection:
        sync_rows = sync_connection.scalar(count_users)
    if async_rows != SEED_ROWS or sync_rows != SEED_ROWS:
        raise RuntimeError(f"{database.name}: seeding failed ({async_rows}, {sync_rows} rows)")


async def open_database(
    name: str, workdir: Path, postgresql_url: str | None, baseline: ModuleType | None = None
) -> Database:
    """Create the engines of database ``name`` and seed its tables."""
    if name == "sqlite":
        path = workdir / "bench.db"
        async_engine = sa_async.create_async_engine(f"sqlite+aiosqlite:///{path}")
        sync_engine = create_engine(f"sqlite:///{path}")
    elif name == "sqlite-noio":
        # Two in-memory databases, one per engine, each seeded below.
        async_engine = sa_async.create_async_engine(
            "sqlite+aiosqlite://", async_creator=_connect_inline_memory, poolclass=StaticPool
        )
        sync_engine = create_engine("sqlite://", poolclass=StaticPool)
        async with async_engine.begin() as connection:
            await connection.run_sync(_seed)
    elif name == "postgresql":
        assert postgresql_url is not None
        url = make_url(postgresql_url)
        async_engine = sa_async.create_async_engine(url.set(drivername="postgresql+asyncpg"))
        sync_engine = create_engine(url.set(drivername="postgresql+psycopg"))
    else:
        raise ValueError(f"unknown database {name!r}; choose among {', '.join(DATABASES)}")
    with sync_engine.begin() as sync_connection:
        _seed(sync_connection)
    database = Database(name, async_engine, sync_engine, baseline)
    await _check_seeded(database)
    return database


@contextmanager
def postgresql_server(url: str | None, needed: bool) -> Iterator[str | None]:
    """Yield the PostgreSQL URL to use: ``url`` if given, else a throw-away server's."""
    if not needed or url is not None:
        yield url
        return
    from tests._pg import PostgresServer, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL, pass "
            "--postgresql-url, or leave postgresql out of --databases."
        )
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
