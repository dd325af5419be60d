"""Run to completion (``sa_async/_completion.py``), and the commits, closes and block ends on it.

A cancellation from outside the work waits for the future the work awaits, and is raised when the
work is done: chained to the work's error if it failed, with a note if it committed. A
cancellation that the work asked for itself (the pool's ``pool_timeout``, a timeout, task group or
cancel scope entered inside it) is delivered at once. A commit flushes as an ordinary operation
first, so a cancellation or timeout there stops it with nothing committed; only the COMMIT runs to
its end. Commits and closes run in the calling task, and the end of ``maker.begin()`` closes
through the session's own ``close()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sa_async._completion import COMMITTED_NOTE, RunToCompletion
from tests.conftest import ReadBack, checked_out, recreate_tables, untyped
from tests.models import User

POOL_TIMEOUT = 0.3

# -- the mechanism, on plain coroutines


async def test_a_cancellation_waits_for_the_awaited_future_and_then_comes() -> None:
    loop = asyncio.get_running_loop()
    io: asyncio.Future[int] = loop.create_future()
    seen: list[int] = []

    async def work() -> int:
        value = await io
        seen.append(value)
        await asyncio.sleep(0)  # a bare yield, where a second cancellation lands
        return value

    async def caller() -> int:
        return await RunToCompletion(work())

    task = asyncio.ensure_future(caller())
    await asyncio.sleep(0)
    assert task.cancel()
    await asyncio.sleep(0)
    # The driver's future was left alone, and the task waits for it.
    assert not io.cancelled() and not task.done()
    io.set_result(42)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [42]
    assert task.cancelling() == 2


async def test_a_nested_run_to_completion_leaves_the_cancellation_to_the_outer_one() -> None:
    loop = asyncio.get_running_loop()
    io: asyncio.Future[int] = loop.create_future()
    steps: list[str] = []

    async def inner() -> int:
        value = await io
        steps.append("inner done")
        return value

    async def outer() -> int:
        value = await RunToCompletion(inner())
        # The cancellation came during the inner work: the outer work still runs to its end.
        await asyncio.sleep(0)
        steps.append("outer done")
        return value

    task = asyncio.ensure_future(RunToCompletion(outer()))
    await asyncio.sleep(0)
    assert task.cancel()
    await asyncio.sleep(0)
    assert not io.cancelled() and not task.done()
    io.set_result(7)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["inner done", "outer done"]
    assert task.cancelling() == 1


async def test_a_run_to_completion_without_cancellation_returns_and_raises_as_awaited() -> None:
    async def value() -> str:
        await asyncio.sleep(0)
        return "done"

    async def failure() -> None:
        await asyncio.sleep(0)
        raise LookupError("from the work")

    assert await RunToCompletion(value()) == "done"
    with pytest.raises(LookupError, match="from the work"):
        await RunToCompletion(failure())


async def test_a_held_cancellation_is_raised_from_the_works_own_error() -> None:
    loop = asyncio.get_running_loop()
    io: asyncio.Future[None] = loop.create_future()

    async def failing_work() -> None:
        await io
        raise LookupError("the commit failed")

    task = asyncio.ensure_future(RunToCompletion(failing_work()))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    io.set_result(None)
    with pytest.raises(asyncio.CancelledError) as raised:
        await task
    assert task.cancelled()
    assert isinstance(raised.value.__cause__, LookupError)


async def test_the_note_says_whether_the_work_returned() -> None:
    loop = asyncio.get_running_loop()

    async def run(fails: bool) -> BaseException:
        io: asyncio.Future[None] = loop.create_future()

        async def work() -> None:
            await io
            if fails:
                raise LookupError

        def note(returned: bool) -> str | None:
            return "it returned" if returned else None

        task = asyncio.ensure_future(RunToCompletion(work(), note=note))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        io.set_result(None)
        try:
            await task
        except asyncio.CancelledError as cancellation:
            return cancellation
        raise AssertionError("the task was not cancelled")

    assert getattr(await run(fails=False), "__notes__", None) == ["it returned"]
    assert getattr(await run(fails=True), "__notes__", None) is None


async def test_a_timeout_entered_inside_the_work_expires_at_once() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()

    async def work() -> str:
        try:
            async with asyncio.timeout(0.01):
                await never
        except TimeoutError:
            return "timed out inside"
        return "not reached"

    started = time.monotonic()
    assert await RunToCompletion(work()) == "timed out inside"
    assert time.monotonic() - started < 1
    assert untyped(asyncio.current_task()).cancelling() == 0


async def test_a_task_group_inside_the_work_cancels_it_at_once() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()

    async def fail_soon() -> None:
        await asyncio.sleep(0.01)
        raise LookupError("a child failed")

    async def work() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(fail_soon())
            await never

    started = time.monotonic()
    with pytest.raises(ExceptionGroup) as raised:
        await RunToCompletion(work())
    assert raised.group_contains(LookupError)
    assert time.monotonic() - started < 1


async def test_an_anyio_deadline_inside_the_work_expires_at_once() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()

    async def work() -> str:
        with anyio.move_on_after(0.01):
            await never
        return "moved on"

    started = time.monotonic()
    assert await RunToCompletion(work()) == "moved on"
    assert time.monotonic() - started < 1


async def test_an_outer_timeout_waits_for_the_work_and_an_inner_one_still_expires() -> None:
    loop = asyncio.get_running_loop()
    io: asyncio.Future[None] = loop.create_future()
    never: asyncio.Future[None] = loop.create_future()
    steps: list[str] = []

    async def work() -> None:
        await io  # the outer timeout expires here, and waits
        steps.append("io done")
        try:
            async with asyncio.timeout(0.01):
                await never
        except TimeoutError:
            steps.append("inner timeout")
        steps.append("work done")

    loop.call_later(0.05, io.set_result, None)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await RunToCompletion(work())
    assert steps == ["io done", "inner timeout", "work done"]
    assert untyped(asyncio.current_task()).cancelling() == 0


async def test_an_outer_anyio_cancel_scope_waits_for_the_work() -> None:
    loop = asyncio.get_running_loop()
    io: asyncio.Future[None] = loop.create_future()
    steps: list[str] = []

    async def work() -> None:
        await io
        steps.append("work done")

    loop.call_later(0.05, io.set_result, None)
    with anyio.move_on_after(0.01) as scope:
        await RunToCompletion(work())
        steps.append("not reached")
    assert scope.cancelled_caught
    assert steps == ["work done"]


# -- sessions: pool timeouts, lost cancellations, notes


@pytest.fixture
async def small_pool(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds one connection and gives up waiting for it after 0.3 s."""
    engine = create_async_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )
    await recreate_tables(engine)
    try:
        yield engine
    finally:
        await recreate_tables(engine, create=False)
        await engine.dispose()


@asynccontextmanager
async def connection_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the engine's only connection (in a task of its own) for the duration."""
    taken = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            taken.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await taken.wait()
    try:
        yield
    finally:
        release.set()
        await holder


async def commit_with(flow: str, maker: async_sessionmaker[AsyncSession], listener: bool) -> None:
    """Add a user and commit it one of the ways there are."""

    def prepare(session: AsyncSession) -> None:
        if listener:
            # A before_commit listener keeps the flush inside the commit's protected work.
            event.listen(session.sync_session, "before_commit", lambda sync_session: None)
        session.add(User(name="pending"))

    if flow == "commit()":
        async with maker() as session:
            prepare(session)
            await session.commit()
    elif flow == "transaction.commit()":
        async with maker() as session:
            transaction = await session.begin()
            prepare(session)
            await transaction.commit()
    elif flow == "session.begin()":
        async with maker() as session, session.begin():
            prepare(session)
    else:
        async with maker.begin() as session:
            prepare(session)


FLOWS = ("commit()", "transaction.commit()", "session.begin()", "maker.begin()")


@pytest.mark.parametrize("listener", [False, True], ids=["flush first", "before_commit listener"])
@pytest.mark.parametrize("flow", FLOWS)
async def test_a_pool_timeout_in_a_commit_raises_the_pools_error_and_commits_nothing(
    small_pool: AsyncEngine, read_back: ReadBack, flow: str, listener: bool
) -> None:
    maker = async_sessionmaker(small_pool)
    async with connection_held(small_pool):
        task = asyncio.create_task(commit_with(flow, maker, listener))
        started = time.monotonic()
        with pytest.raises(sa_exc.TimeoutError, match="QueuePool limit"):
            await task
        waited = time.monotonic() - started
    assert POOL_TIMEOUT <= waited < POOL_TIMEOUT + 1
    assert task.cancelling() == 0 and not task.cancelled()
    assert checked_out(small_pool) == 0
    async with small_pool.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


@pytest.mark.parametrize("flow", FLOWS)
async def test_a_pool_timeout_in_a_task_group_fails_the_group(
    small_pool: AsyncEngine, flow: str
) -> None:
    maker = async_sessionmaker(small_pool)
    async with connection_held(small_pool):
        with pytest.raises(ExceptionGroup) as raised:
            async with asyncio.TaskGroup() as group:
                group.create_task(commit_with(flow, maker, listener=False))
    assert raised.group_contains(sa_exc.TimeoutError)


@pytest.mark.parametrize("flow", FLOWS)
async def test_a_timeout_while_a_commit_waits_for_the_pool_stops_it_at_once(
    small_pool: AsyncEngine, flow: str
) -> None:
    maker = async_sessionmaker(small_pool)
    async with connection_held(small_pool):
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            async with asyncio.timeout(0.05):
                await commit_with(flow, maker, listener=False)
        assert time.monotonic() - started < POOL_TIMEOUT
    # Nothing was committed, and the cancellation carries no note saying it was.
    assert not getattr(raised.value.__cause__, "__notes__", None)
    assert checked_out(small_pool) == 0
    async with small_pool.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


async def test_a_worker_cancelled_while_its_failing_commit_runs_ends_cancelled(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    commit_started = asyncio.Event()
    jobs_after_cancel: list[int] = []
    cancelled = False

    def slow_failing_before_commit(sync_session: Session) -> None:
        commit_started.set()
        await_(asyncio.sleep(0.05))
        raise sa_exc.InvalidRequestError("the commit failed")

    async def worker() -> None:
        job = 0
        while True:
            job += 1
            if cancelled:
                jobs_after_cancel.append(job)
            async with maker() as session:
                event.listen(session.sync_session, "before_commit", slow_failing_before_commit)
                session.add(User(name=f"job {job}"))
                try:
                    await session.commit()
                except sa_exc.SQLAlchemyError:
                    pass  # a worker that logs and carries on

    task = asyncio.create_task(worker())
    await commit_started.wait()
    task.cancel()
    cancelled = True
    with pytest.raises(asyncio.CancelledError) as raised:
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
    assert jobs_after_cancel == []
    assert isinstance(raised.value.__cause__, sa_exc.InvalidRequestError)


@asynccontextmanager
async def slow_commits(engine: AsyncEngine, started: asyncio.Event) -> AsyncIterator[None]:
    """Make every COMMIT of ``engine`` wait 50 ms in the bridge just before it is sent."""

    def before_dbapi_commit(connection: Connection) -> None:
        started.set()
        await_(asyncio.sleep(0.05))

    event.listen(engine.sync_engine, "commit", before_dbapi_commit)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "commit", before_dbapi_commit)


async def cancelled_during_commit(
    engine: AsyncEngine, commit: Callable[[], Coroutine[Any, Any, None]]
) -> BaseException:
    started = asyncio.Event()
    async with slow_commits(engine, started):
        task = asyncio.create_task(commit())
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as cancellation:
            return cancellation
    raise AssertionError("the task was not cancelled")


@pytest.mark.parametrize("flow", FLOWS)
async def test_a_cancellation_during_the_commit_is_raised_after_it_with_a_note(
    engine: AsyncEngine, read_back: ReadBack, flow: str
) -> None:
    maker = async_sessionmaker(engine)
    cancellation = await cancelled_during_commit(
        engine, lambda: commit_with(flow, maker, listener=False)
    )
    assert getattr(cancellation, "__notes__", None) == [COMMITTED_NOTE]
    assert await read_back("SELECT name FROM users") == [("pending",)]
    assert checked_out(engine) == 0


async def test_a_timeout_during_the_commit_leaves_the_note_on_its_cause(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    maker = async_sessionmaker(engine)
    started = asyncio.Event()
    async with slow_commits(engine, started):
        with pytest.raises(TimeoutError) as raised:
            async with asyncio.timeout(0.01):
                await commit_with("commit()", maker, listener=False)
    cancellation = raised.value.__cause__ or raised.value.__context__
    assert getattr(cancellation, "__notes__", None) == [COMMITTED_NOTE]
    assert await read_back("SELECT name FROM users") == [("pending",)]


async def test_an_anyio_task_group_cancelled_during_a_commit_waits_for_it(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    maker = async_sessionmaker(engine)
    started = asyncio.Event()
    async with slow_commits(engine, started):
        async with anyio.create_task_group() as group:
            group.start_soon(commit_with, "maker.begin()", maker, False)
            await started.wait()
            group.cancel_scope.cancel()
    assert group.cancel_scope.cancelled_caught
    assert await read_back("SELECT name FROM users") == [("pending",)]
    assert checked_out(engine) == 0


async def test_an_anyio_deadline_while_a_commit_waits_for_the_pool_stops_it(
    small_pool: AsyncEngine,
) -> None:
    maker = async_sessionmaker(small_pool)
    async with connection_held(small_pool):
        with anyio.move_on_after(0.05) as scope:
            await commit_with("maker.begin()", maker, listener=False)
    assert scope.cancelled_caught
    assert checked_out(small_pool) == 0
    async with small_pool.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


# -- work run to completion, in the calling task


async def test_commit_and_close_run_in_the_calling_task(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    tasks: list[object] = []
    async with maker() as session:
        sync_session = session.sync_session
        event.listen(sync_session, "before_commit", lambda s: tasks.append(asyncio.current_task()))
        event.listen(
            sync_session, "after_transaction_end", lambda s, t: tasks.append(asyncio.current_task())
        )
        session.add(User(name="ann"))
        await session.commit()
        await session.get(User, 1)
    assert tasks and all(task is asyncio.current_task() for task in tasks)


class ClosingAsyncSession(AsyncSession):
    """Counts its close() calls."""

    closes = 0

    async def close(self) -> None:
        type(self).closes += 1
        await super().close()


async def test_sessionmaker_begin_closes_through_the_sessions_own_close(
    engine: AsyncEngine,
) -> None:
    ClosingAsyncSession.closes = 0
    maker = async_sessionmaker(engine, class_=ClosingAsyncSession)
    async with maker.begin() as session:
        session.add(User(name="ann"))
    assert ClosingAsyncSession.closes == 1
    with pytest.raises(LookupError):
        async with maker.begin() as session:
            raise LookupError
    assert ClosingAsyncSession.closes == 2
    assert checked_out(engine) == 0
