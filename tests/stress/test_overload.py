"""Overload and cancellation at every point, on a pool of one connection.

- Many tasks commit on a pool too small for them, with a short ``pool_timeout``: each either
  commits or gets the pool's ``TimeoutError``, none is cancelled (nobody cancelled them), and the
  database holds exactly the commits that returned.
- Each way of committing is cancelled at each of its awaits in turn (by ``task.cancel()``, an
  ``asyncio.timeout()`` and an anyio cancel scope): each time the task either returns (row
  stored) or ends cancelled, its ``CancelledError`` carrying the "committed" note exactly when the
  row was stored; the one connection is back in the pool each time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sa_async._completion import COMMITTED_NOTE
from tests.conftest import checked_out, recreate_tables, untyped
from tests.models import User
from tests.scoping_support import recorded_problems
from tests.stress.conftest import Report, stored_tags

OVERLOAD_TASKS = 300
FLOWS = ("commit()", "transaction.commit()", "session.begin()", "maker.begin()")


@pytest.fixture
async def pool_of_one(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    await recreate_tables(engine)
    try:
        yield engine
    finally:
        await recreate_tables(engine, create=False)
        await engine.dispose()


async def commit_one(
    flow: str, maker: async_sessionmaker[AsyncSession], tag: str, listener: bool
) -> None:
    """Add the user ``tag`` and commit it the way ``flow`` names."""

    def prepare(session: AsyncSession) -> None:
        if listener:
            # Keeps the flush inside the commit's work run to completion.
            event.listen(session.sync_session, "before_commit", lambda sync_session: None)
        session.add(User(name=tag))

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


async def test_an_overloaded_pool_times_out_without_a_single_cancellation(
    pool_of_one: AsyncEngine, report: Report
) -> None:
    maker = async_sessionmaker(pool_of_one)
    outcomes: collections.Counter[str] = collections.Counter()
    returned: set[str] = set()

    async def request(index: int) -> None:
        tag = f"request {index}"
        try:
            await commit_one(FLOWS[index % 4], maker, tag, listener=index % 8 >= 4)
        except sa_exc.TimeoutError:
            outcomes["pool timeout"] += 1
            return
        outcomes["committed"] += 1
        returned.add(tag)

    started = time.monotonic()
    with recorded_problems() as problems:
        tasks = [asyncio.create_task(request(index)) for index in range(OVERLOAD_TASKS)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    stored = await stored_tags(pool_of_one)
    cancelled = sum(task.cancelled() or task.cancelling() > 0 for task in tasks)
    report(
        f"overload on {pool_of_one.dialect.name}: {OVERLOAD_TASKS} tasks committing on a pool of 1 "
        f"(pool_timeout 0.05 s) in {elapsed:.1f} s: {outcomes['committed']} committed, "
        f"{outcomes['pool timeout']} pool timeouts, {cancelled} cancelled; {len(stored)} rows "
        f"stored, {len(stored ^ returned)} lost or phantom; {checked_out(pool_of_one)} "
        f"connection(s) checked out after; {len(problems)} warning(s) or loop error(s)"
    )
    assert [result for result in results if result is not None] == []
    assert cancelled == 0
    assert outcomes["pool timeout"] > 0 and outcomes["committed"] > 0
    assert stored == returned
    assert checked_out(pool_of_one) == 0
    assert problems == []


@types.coroutine
def with_action_at_suspension(
    coro: Coroutine[Any, Any, None], suspension: int, action: Callable[[], object]
) -> Generator[Any, Any, int]:
    """Await ``coro``, calling ``action`` as it suspends for the ``suspension``-th time (from 0),
    just before the task starts waiting there; return how many times it suspended."""
    count = 0
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            yielded = coro.send(value) if error is None else coro.throw(error)
        except StopIteration:
            return count
        if count == suspension:
            action()
        count += 1
        try:
            value, error = (yield yielded), None
        except BaseException as thrown:
            value, error = None, thrown


async def cancelled_by(
    canceller: str, suspension: int, commit: Coroutine[Any, Any, None]
) -> tuple[bool, int]:
    """Run ``commit``, cancelled by ``canceller`` at its ``suspension``-th suspension; return
    whether the row must be stored (the commit returned, or its cancellation carries the
    "committed" note), and how many times the commit suspended."""
    # Whether the commit returned, or the note its cancellation carried.
    outcome: list[bool] = []
    suspended = [0]

    async def watched(action: Callable[[], object]) -> None:
        try:
            suspended[0] = await with_action_at_suspension(commit, suspension, action)
        except asyncio.CancelledError as cancellation:
            outcome.append(COMMITTED_NOTE in getattr(cancellation, "__notes__", ()))
            raise
        outcome.append(True)

    if canceller == "task.cancel()":
        # Cancelled right as it starts to wait: the cancellation lands in that very await.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.create_task(watched(lambda: untyped(asyncio.current_task()).cancel()))
    elif canceller == "asyncio.timeout()":
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as deadline:
                # Expires at the next turn of the event loop, while the task waits there.
                await watched(lambda: deadline.reschedule(-1))
    else:
        with anyio.CancelScope() as scope:
            await watched(scope.cancel)
    return bool(outcome) and outcome[0], suspended[0]


@pytest.mark.parametrize("canceller", ["task.cancel()", "asyncio.timeout()", "anyio scope"])
@pytest.mark.parametrize("listener", [False, True], ids=["flush first", "before_commit listener"])
@pytest.mark.parametrize("flow", FLOWS)
async def test_a_cancellation_at_every_await_of_a_commit_loses_and_leaks_nothing(
    pool_of_one: AsyncEngine, flow: str, listener: bool, canceller: str, report: Report
) -> None:
    maker = async_sessionmaker(pool_of_one)
    seen: collections.Counter[str] = collections.Counter()
    with recorded_problems() as problems:
        # Uncancelled first (an action at no suspension), to count the commit's awaits.
        stored, awaits = await cancelled_by(
            canceller, -1, commit_one(flow, maker, "uncancelled", listener)
        )
        assert stored
        for suspension in range(awaits):
            tag = f"{flow} cancelled at await {suspension}"
            must_be_stored, _ = await cancelled_by(
                canceller, suspension, commit_one(flow, maker, tag, listener)
            )
            seen["committed" if must_be_stored else "not committed"] += 1
            async with maker() as session:
                count = await session.scalar(select(func.count()).where(User.name == tag))
            assert count == (1 if must_be_stored else 0), tag
            assert checked_out(pool_of_one) == 0, tag
    report(
        f"every await of {flow} ({'with' if listener else 'without'} a before_commit listener), "
        f"{awaits} awaits, cancelled by {canceller}, on {pool_of_one.dialect.name}: "
        + ", ".join(f"{what} {count}" for what, count in sorted(seen.items()))
    )
    if not listener:
        # The flush is where the commit awaits first, and it stops at a cancellation.
        assert seen["not committed"] > 0
    assert problems == []
