"""Scoped sessions under load: no leak when scopes end without ``remove()``, and isolation between
the sessions of concurrent tasks and threads.

The leak tests run with the garbage collector disabled, so that what returns the connections is
the registry closing the sessions of ended scopes, not the pool's garbage-collector clean-up
(which would warn); the collector runs only at the end, to show there was nothing left for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
    scoped_session,
)
from tests.conftest import checked_out
from tests.models import User
from tests.scoping_support import recorded_problems, sync_sqlite_engine, wait_until_checked_in

SHORT_TASKS = 10_000
TASKS_IN_FLIGHT = 100
LIVE_TASKS = 3
CONCURRENT_TASKS = 1_000
THREADS = 400
THREADS_AT_ONCE = 40


@pytest.fixture
def thread_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sync_sqlite_engine(tmp_path / "threads.db")
    yield engine
    engine.dispose()


@contextlib.contextmanager
def garbage_collector_disabled() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}")


async def test_ten_thousand_finished_tasks_leave_no_session_and_no_connection(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    in_flight = asyncio.Semaphore(TASKS_IN_FLIGHT)
    release_live_tasks = asyncio.Event()

    async def short_task(index: int) -> None:
        async with in_flight:
            # Leaves a transaction open, so the connection stays checked out until the close.
            assert await scoped.scalar(select(literal(index))) == index
            scoped.add(User(name=f"pending-{index}"))
            if index % 100 == 0:
                await scoped.flush()

    async def live_task(index: int) -> tuple[AsyncSession, AsyncSession, list[str]]:
        session = scoped()
        assert await scoped.scalar(select(literal(index))) == index
        # Pending only: sqlite lets one transaction write at a time.
        scoped.add(User(name=f"live-{index}"))
        await release_live_tasks.wait()
        names = [user.name for user in scoped.new if isinstance(user, User)]
        assert session.in_transaction()
        return session, scoped(), names

    started = time.monotonic()
    with recorded_problems() as problems, garbage_collector_disabled():
        live = [asyncio.create_task(live_task(index)) for index in range(LIVE_TASKS)]
        await asyncio.sleep(0.05)
        await asyncio.gather(*(short_task(index) for index in range(SHORT_TASKS)))
        await asyncio.sleep(0)
        sessions_after_short_tasks = len(scoped.registry)
        await wait_until_checked_in(engine, still_in_use=LIVE_TASKS)
        checked_out_after_short_tasks = checked_out(engine) - LIVE_TASKS

        release_live_tasks.set()
        for session, same_session, names in await asyncio.gather(*live):
            assert same_session is session
            # Each live task still has its transaction and its own pending row, only that one.
            assert len(names) == 1 and names[0].startswith("live-")
        await asyncio.sleep(0)
        sessions_at_the_end = len(scoped.registry)
        await wait_until_checked_in(engine)
        checked_out_at_the_end = checked_out(engine)
        elapsed = time.monotonic() - started
    with recorded_problems() as problems_of_the_collector:
        gc.collect()
        await asyncio.sleep(0)

    report(
        capsys,
        f"scoping leak test on {engine.dialect.name}: {SHORT_TASKS} tasks without remove() in "
        f"{elapsed:.1f} s; registry {sessions_after_short_tasks} session(s) (the {LIVE_TASKS} "
        f"live tasks'), {checked_out_after_short_tasks} other connection(s) checked out; at the "
        f"end: registry {sessions_at_the_end}, {checked_out_at_the_end} checked out, "
        f"{len(problems) + len(problems_of_the_collector)} warning(s)",
    )
    # Sessions of live scopes are never dropped; those of finished ones are all gone.
    assert sessions_after_short_tasks == LIVE_TASKS
    assert checked_out_after_short_tasks == 0
    assert sessions_at_the_end == 0 and checked_out_at_the_end == 0
    assert problems == [] and problems_of_the_collector == []
    # Everything was rolled back by the closes.
    assert await scoped.scalar(select(User.id).limit(1)) is None
    await scoped.remove()


async def test_a_thousand_concurrent_tasks_on_postgresql_each_see_only_their_own_session(
    postgresql_engine: AsyncEngine, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its own engine: a larger pool, so that many transactions are open at the same time.
    engine = create_async_engine(postgres_url, pool_size=50, max_overflow=0, pool_timeout=60)
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    all_started = asyncio.Event()
    waiting = 0
    most_open_at_once = 0

    async def worker(index: int) -> AsyncSession:
        nonlocal waiting, most_open_at_once
        session = scoped()
        users = [User(name=f"task-{index}-row-{row}") for row in range(3)]
        waiting += 1
        if waiting == CONCURRENT_TASKS:
            all_started.set()
        # Every task holds its session before any of them touches the database.
        await all_started.wait()
        for row, user in enumerate(users, start=1):
            scoped.add(user)
            await scoped.flush()
            most_open_at_once = max(most_open_at_once, checked_out(engine))
            await asyncio.sleep(0)
            assert scoped() is session
            assert set(scoped.identity_map.values()) == set(users[:row])
            # Other tasks' rows are not committed: this transaction sees its own rows only.
            names = (await scoped.scalars(select(User.name).order_by(User.id))).all()
            assert names == [user.name for user in users[:row]]
        await scoped.remove()
        return session

    started = time.monotonic()
    try:
        sessions = await asyncio.gather(*(worker(index) for index in range(CONCURRENT_TASKS)))
        elapsed = time.monotonic() - started
        assert len({id(session) for session in sessions}) == CONCURRENT_TASKS
        assert len(scoped.registry) == 0 and checked_out(engine) == 0
    finally:
        await engine.dispose()
    async with postgresql_engine.connect() as connection:
        assert await connection.scalar(select(func.count(User.id))) == 0
    report(
        capsys,
        f"scoping isolation test on postgresql: {CONCURRENT_TASKS} concurrent tasks, "
        f"{CONCURRENT_TASKS} distinct sessions, up to {most_open_at_once} transactions open at "
        f"once, {elapsed:.1f} s",
    )


def test_threads_on_the_sync_registry_each_see_only_their_own_session_and_leave_nothing(
    thread_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    scoped = scoped_session(sessionmaker(thread_engine))
    sessions: list[Session] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(THREADS_AT_ONCE)

    def thread_body(index: int) -> None:
        try:
            session = scoped()
            users = [User(name=f"thread-{index}-row-{row}") for row in range(2)]
            scoped.add_all(users)
            # Every thread of the wave holds its session with its pending rows at this point.
            barrier.wait(timeout=30)
            assert scoped() is session and set(scoped.new) == set(users)
            scoped.flush()
            names = scoped.scalars(select(User.name).order_by(User.id)).all()
            assert names == [user.name for user in users]
            scoped.rollback()
            # Ends with a transaction open (a connection checked out) and without remove().
            assert scoped.scalar(select(literal(index))) == index
            sessions.append(session)
        except BaseException as error:
            failures.append(error)
            barrier.abort()

    started = time.monotonic()
    with recorded_problems() as problems, garbage_collector_disabled():
        for wave in range(THREADS // THREADS_AT_ONCE):
            threads = [
                threading.Thread(target=thread_body, args=(wave * THREADS_AT_ONCE + offset,))
                for offset in range(THREADS_AT_ONCE)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failures == []
        elapsed = time.monotonic() - started
        sessions_at_the_end = len(scoped.registry)
        checked_out_at_the_end = thread_engine.pool.checkedout()  # type: ignore[attr-defined]
        # The sessions outlive their threads here (the list holds them), but they are closed.
        assert not any(session.in_transaction() for session in sessions)
    with recorded_problems() as problems_of_the_collector:
        gc.collect()

    report(
        capsys,
        f"scoping thread test on sqlite: {THREADS} threads ({THREADS_AT_ONCE} at once) without "
        f"remove() in {elapsed:.1f} s; at the end: registry {sessions_at_the_end}, "
        f"{checked_out_at_the_end} checked out, "
        f"{len(problems) + len(problems_of_the_collector)} warning(s)",
    )
    assert len({id(session) for session in sessions}) == THREADS
    assert sessions_at_the_end == 0 and checked_out_at_the_end == 0
    assert problems == [] and problems_of_the_collector == []
