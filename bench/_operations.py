"""The operations timed by ``bench.runtime``: each written once for the two async session layers
(they share one API) and once for the sync Session.

A sample function runs ``n`` iterations of its operation and calls ``clock.start()`` and
``clock.stop()`` around them only: opening and closing the session and building the objects to
add stay outside the measured region.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import InitVar, dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, String, select
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session
from sqlalchemy.orm import sessionmaker as sync_sessionmaker

SEED_ROWS = 2000
ROWS_PER_READ = 100
ROWS_PER_INSERT = 100
# Targets (issue 7): displayed per operation, never asserted.
TARGET_VS_SQLALCHEMY = 1.0
TARGET_GET_HIT_VS_SQLALCHEMY = 0.5
TARGET_NO_IO_VS_SYNC = 1.3


class Base(DeclarativeBase):
    pass


class User(Base):
    """Read by the query operations; seeded with SEED_ROWS rows."""

    __tablename__ = "bench_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Item(Base):
    """Written by the insert operations."""

    __tablename__ = "bench_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


SELECT_ONE = select(User).where(User.id == 1)
SELECT_MANY = select(User).order_by(User.id).limit(ROWS_PER_READ)


@dataclass
class Clock:
    """Times the measured part of one sample: CPU time of every thread, and wall time."""

    cpu_ns: int = 0
    wall_ns: int = 0
    _cpu_start: int = 0
    _wall_start: int = 0

    def start(self) -> None:
        self._wall_start = time.perf_counter_ns()
        self._cpu_start = time.process_time_ns()

    def stop(self) -> None:
        self.cpu_ns = time.process_time_ns() - self._cpu_start
        self.wall_ns = time.perf_counter_ns() - self._wall_start


@dataclass
class Samples:
    """Per-iteration times of one operation: a list per layer (or implementation) timed, an
    entry per round."""

    iterations: int
    names: InitVar[Iterable[str]]
    cpu_ns: dict[str, list[float]] = field(init=False)
    wall_ns: dict[str, list[float]] = field(init=False)

    def __post_init__(self, names: Iterable[str]) -> None:
        self.cpu_ns = {name: [] for name in names}
        self.wall_ns = {name: [] for name in names}


async def calibrated_iterations(
    sample: Callable[[int], Awaitable[list[Clock]]], sample_ns: int, max_iterations: int
) -> int:
    """Return the iteration count that makes one sample last about ``sample_ns`` of wall time
    on the slowest of the layers that ``sample(n)`` times (this also warms them up)."""
    n = 1
    while True:
        slowest = max(clock.wall_ns for clock in await sample(n))
        if slowest * 8 >= sample_ns or n >= max_iterations:
            break
        n = min(n * 8, max_iterations)
    per_iteration = max(slowest / n, 1.0)
    return max(1, min(max_iterations, round(sample_ns / per_iteration)))


@dataclass
class AsyncSide:
    """An async session layer, sa_async or SQLAlchemy's ext.asyncio, on a shared engine.

    Their sessionmakers, sessions and registries are typed ``Any``: the two layers share one API
    (that is the point of a drop-in), so one function times both.
    """

    name: str
    engine: sqlalchemy_asyncio.AsyncEngine
    maker: Any
    scoped: Any
    bridge: Callable[..., Awaitable[Any]]


@dataclass
class SyncSide:
    """The sync Session on a sync driver: the limit the async layers are measured against."""

    engine: Engine
    maker: sync_sessionmaker[Session]
    scoped: scoped_session[Session]


AsyncSample = Callable[[AsyncSide, int, Clock], Awaitable[None]]
SyncSample = Callable[[SyncSide, int, Clock], None]


@dataclass(frozen=True)
class Target:
    ratio: str
    description: str
    limit: float


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    run_async: AsyncSample
    run_sync: SyncSample
    # Does no IO: its target is to stay within TARGET_NO_IO_VS_SYNC of the sync Session.
    no_io: bool = False
    # The sync counterpart is a plain function call (run_sync, bridge): no target against it.
    sync_is_plain_call: bool = False
    target_vs_sqlalchemy: float = TARGET_VS_SQLALCHEMY
    max_iterations: int = 1_000_000

    def targets(self) -> list[Target]:
        limit = self.target_vs_sqlalchemy
        found = [Target("cpu_vs_sqlalchemy", f"<= {limit:.1f}x SQLAlchemy", limit)]
        if self.no_io and not self.sync_is_plain_call:
            found.append(
                Target("cpu_vs_sync", f"<= {TARGET_NO_IO_VS_SYNC:.1f}x sync", TARGET_NO_IO_VS_SYNC)
            )
        return found


def _trivial(session: object) -> None:
    return None


def _nothing() -> None:
    return None


def _new_users(n: int) -> list[User]:
    return [User(name=f"new {index}") for index in range(n)]


def _new_item_batches(n: int) -> list[list[Item]]:
    return [[Item(name=f"item {index}") for index in range(ROWS_PER_INSERT)] for _ in range(n)]


async def _maker_call(side: AsyncSide, n: int, clock: Clock) -> None:
    maker = side.maker
    clock.start()
    for _ in range(n):
        maker()
    clock.stop()


def _maker_call_sync(side: SyncSide, n: int, clock: Clock) -> None:
    maker = side.maker
    clock.start()
    for _ in range(n):
        maker()
    clock.stop()


async def _context(side: AsyncSide, n: int, clock: Clock) -> None:
    maker = side.maker
    clock.start()
    for _ in range(n):
        async with maker():
            pass
    clock.stop()


def _context_sync(side: SyncSide, n: int, clock: Clock) -> None:
    maker = side.maker
    clock.start()
    for _ in range(n):
        with maker():
            pass
    clock.stop()


async def _add(side: AsyncSide, n: int, clock: Clock) -> None:
    users = _new_users(n)
    session = side.maker()
    clock.start()
    for user in users:
        session.add(user)
    clock.stop()
    await session.close()


def _add_sync(side: SyncSide, n: int, clock: Clock) -> None:
    users = _new_users(n)
    session = side.maker()
    clock.start()
    for user in users:
        session.add(user)
    clock.stop()
    session.close()


async def _get_hit(side: AsyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    # Held, so that the (weak-valued) identity map keeps it and every get() below is a hit.
    held = await session.get(User, 1)
    assert held is not None
    clock.start()
    for _ in range(n):
        await session.get(User, 1)
    clock.stop()
    await session.close()


def _get_hit_sync(side: SyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    held = session.get(User, 1)
    assert held is not None
    clock.start()
    for _ in range(n):
        session.get(User, 1)
    clock.stop()
    session.close()


async def _get_miss(side: AsyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    # Connected first: the timed loop measures get(), not the first checkout and BEGIN.
    await session.connection()
    clock.start()
    for ident in range(1, n + 1):
        await session.get(User, ident)
    clock.stop()
    await session.close()


def _get_miss_sync(side: SyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    session.connection()
    clock.start()
    for ident in range(1, n + 1):
        session.get(User, ident)
    clock.stop()
    session.close()


def _executes(statement: Select[Any]) -> tuple[AsyncSample, SyncSample]:
    """The samples of ``execute(statement).all()``."""

    async def run_async(side: AsyncSide, n: int, clock: Clock) -> None:
        session = side.maker()
        await session.connection()
        clock.start()
        for _ in range(n):
            (await session.execute(statement)).all()
        clock.stop()
        await session.close()

    def run_sync(side: SyncSide, n: int, clock: Clock) -> None:
        session = side.maker()
        session.connection()
        clock.start()
        for _ in range(n):
            session.execute(statement).all()
        clock.stop()
        session.close()

    return run_async, run_sync


async def _scalars(side: AsyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    await session.connection()
    clock.start()
    for _ in range(n):
        (await session.scalars(SELECT_MANY)).all()
    clock.stop()
    await session.close()


def _scalars_sync(side: SyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    session.connection()
    clock.start()
    for _ in range(n):
        session.scalars(SELECT_MANY).all()
    clock.stop()
    session.close()


async def _insert_commit(side: AsyncSide, n: int, clock: Clock) -> None:
    batches = _new_item_batches(n)
    session = side.maker()
    clock.start()
    for batch in batches:
        session.add_all(batch)
        await session.flush()
        await session.commit()
    clock.stop()
    await session.close()


def _insert_commit_sync(side: SyncSide, n: int, clock: Clock) -> None:
    batches = _new_item_batches(n)
    session = side.maker()
    clock.start()
    for batch in batches:
        session.add_all(batch)
        session.flush()
        session.commit()
    clock.stop()
    session.close()


async def _maker_begin(side: AsyncSide, n: int, clock: Clock) -> None:
    items = [Item(name="begin") for _ in range(n)]
    maker = side.maker
    clock.start()
    for item in items:
        async with maker.begin() as session:
            session.add(item)
    clock.stop()


def _maker_begin_sync(side: SyncSide, n: int, clock: Clock) -> None:
    items = [Item(name="begin") for _ in range(n)]
    maker = side.maker
    clock.start()
    for item in items:
        with maker.begin() as session:
            session.add(item)
    clock.stop()


async def _scoped_add(side: AsyncSide, n: int, clock: Clock) -> None:
    users = _new_users(n)
    scoped = side.scoped
    scoped()
    clock.start()
    for user in users:
        scoped.add(user)
    clock.stop()
    await scoped.remove()


def _scoped_add_sync(side: SyncSide, n: int, clock: Clock) -> None:
    users = _new_users(n)
    scoped = side.scoped
    scoped()
    clock.start()
    for user in users:
        scoped.add(user)
    clock.stop()
    scoped.remove()


async def _scoped_get_hit(side: AsyncSide, n: int, clock: Clock) -> None:
    scoped = side.scoped
    held = await scoped.get(User, 1)
    assert held is not None
    clock.start()
    for _ in range(n):
        await scoped.get(User, 1)
    clock.stop()
    await scoped.remove()


def _scoped_get_hit_sync(side: SyncSide, n: int, clock: Clock) -> None:
    scoped = side.scoped
    held = scoped.get(User, 1)
    assert held is not None
    clock.start()
    for _ in range(n):
        scoped.get(User, 1)
    clock.stop()
    scoped.remove()


async def _run_sync(side: AsyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    clock.start()
    for _ in range(n):
        await session.run_sync(_trivial)
    clock.stop()
    await session.close()


def _run_sync_sync(side: SyncSide, n: int, clock: Clock) -> None:
    session = side.maker()
    clock.start()
    for _ in range(n):
        _trivial(session)
    clock.stop()
    session.close()


async def _bridge(side: AsyncSide, n: int, clock: Clock) -> None:
    bridge = side.bridge
    clock.start()
    for _ in range(n):
        await bridge(_nothing)
    clock.stop()


def _bridge_sync(side: SyncSide, n: int, clock: Clock) -> None:
    clock.start()
    for _ in range(n):
        _nothing()
    clock.stop()


OPERATIONS = (
    Operation("maker_call", "sessionmaker()", _maker_call, _maker_call_sync, no_io=True),
    Operation("context", "async with session (no IO)", _context, _context_sync, no_io=True),
    Operation("add", "add(obj)", _add, _add_sync, no_io=True),
    Operation(
        "get_hit",
        "get() identity-map hit",
        _get_hit,
        _get_hit_sync,
        no_io=True,
        target_vs_sqlalchemy=TARGET_GET_HIT_VS_SQLALCHEMY,
    ),
    Operation(
        "get_miss", "get() miss, loads 1 row", _get_miss, _get_miss_sync, max_iterations=SEED_ROWS
    ),
    Operation("execute_1", "execute(), 1 row", *_executes(SELECT_ONE)),
    Operation("execute_100", "execute(), 100 rows", *_executes(SELECT_MANY)),
    Operation("scalars_100", "scalars(), 100 rows", _scalars, _scalars_sync),
    Operation(
        "insert_100_commit", "add_all 100 + flush + commit", _insert_commit, _insert_commit_sync
    ),
    Operation("maker_begin", "sessionmaker.begin(), 1 insert", _maker_begin, _maker_begin_sync),
    Operation("scoped_add", "scoped proxy: add(obj)", _scoped_add, _scoped_add_sync, no_io=True),
    Operation(
        "scoped_get_hit",
        "scoped proxy: get() hit",
        _scoped_get_hit,
        _scoped_get_hit_sync,
        no_io=True,
    ),
    Operation(
        "run_sync",
        "run_sync(trivial fn)",
        _run_sync,
        _run_sync_sync,
        no_io=True,
        sync_is_plain_call=True,
    ),
    Operation(
        "bridge",
        "bare bridge round-trip",
        _bridge,
        _bridge_sync,
        no_io=True,
        sync_is_plain_call=True,
    ),
)
OPERATION_KEYS = tuple(operation.key for operation in OPERATIONS)
