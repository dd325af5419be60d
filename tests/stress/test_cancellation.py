"""Cancellation under load on PostgreSQL: 1,000 tasks share a pool of 5 connections and are
cancelled at random points inside execute, flush, commit, rollback, close and the
sessionmaker's begin() block. Afterwards no connection is checked out or left in a transaction,
nothing complained (warnings, unraisable exceptions, event-loop errors, pool error logs), and
the database holds exactly the transactions whose commit SQLAlchemy reported done: every one
that commit() returned for, and every one whose cancellation says, in a note, that its COMMIT
had begun and was let finish; a commit cancelled in its flush committed nothing."""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select, text

from sa_async import AsyncEngine, async_sessionmaker, create_async_engine
from sa_async._completion import COMMITTED_NOTE
from tests.conftest import checked_out
from tests.models import User
from tests.scoping_support import recorded_problems
from tests.stress.conftest import Ledger, LedgerSession, Report, logged_problems, stored_tags

TASKS = 1_000
POOL_SIZE = 5
# Where each task is cancelled; "begin block" is the end of ``async with maker.begin()``
# (its commit and close), "begin block body" a flush inside the block.
CANCEL_POINTS = (
    "execute",
    "flush",
    "commit",
    "rollback",
    "close",
    "begin block",
    "begin block body",
)
# One task in this many runs to its end uncancelled.
UNCANCELLED_EVERY = 5
# SA_ASYNC_STRESS_SEED replays (or varies) a run; the figures print the seed used.
SEED = int(os.environ.get("SA_ASYNC_STRESS_SEED", "20240601"))

_T = TypeVar("_T")


@dataclass
class TaskPlan:
    tag: str
    flow: str
    cancel: bool
    # Cancel after this many turns of the event loop, or after this many seconds.
    hops: int | None
    delay: float
    hold_connection_first: bool
    # The commit (or the end of the begin() block) has nothing left to flush: else it flushes
    # first, and a cancellation can land in that flush.
    flush_first: bool


def plans(rng: random.Random) -> list[TaskPlan]:
    result = []
    for index in range(TASKS):
        # Within a task's work: commits and closes run to completion in the task itself, in a
        # few turns of the loop, so later cancellations would mostly find the task done.
        hops = rng.randrange(0, 24) if rng.random() < 0.5 else None
        result.append(
            TaskPlan(
                tag=f"task-{index}",
                flow=CANCEL_POINTS[index % len(CANCEL_POINTS)],
                cancel=index % UNCANCELLED_EVERY != 0,
                hops=hops,
                delay=rng.uniform(0, 0.0025),
                hold_connection_first=rng.random() < 0.5,
                flush_first=rng.random() < 0.5,
            )
        )
    return result


def cancel_later(task: asyncio.Task[Any], plan: TaskPlan) -> None:
    """Cancel ``task`` a random while from now: a few turns of the event loop, or a few ms."""
    loop = asyncio.get_running_loop()
    if plan.hops is None:
        loop.call_later(plan.delay, task.cancel)
        return

    def turn(remaining: int) -> None:
        if remaining == 0:
            task.cancel()
        else:
            loop.call_soon(turn, remaining - 1)

    turn(plan.hops)


async def test_a_thousand_tasks_cancelled_at_random_points_lose_and_leak_nothing(
    postgresql_engine: AsyncEngine, postgres_url: str, report: Report
) -> None:
    engine = create_async_engine(
        postgres_url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=120,
        connect_args={"server_settings": {"application_name": "sa_async cancellation"}},
    )
    maker = async_sessionmaker(engine, sync_session_class=LedgerSession)
    ledger = Ledger()
    cancelled_in: collections.Counter[str] = collections.Counter()
    cancelled_commits: set[str] = set()
    # Cancellations raised after the COMMIT had completed: they say so in a note.
    noted_commits: set[str] = set()

    async def run(plan: TaskPlan) -> None:
        task = asyncio.current_task()
        assert task is not None

        async def step(point: str, awaitable: Awaitable[_T]) -> _T:
            if plan.cancel and point == plan.flow:
                cancel_later(task, plan)
            try:
                return await awaitable
            except asyncio.CancelledError as cancellation:
                cancelled_in[point] += 1
                if point in ("commit", "begin block"):
                    cancelled_commits.add(plan.tag)
                    if COMMITTED_NOTE in getattr(cancellation, "__notes__", ()):
                        noted_commits.add(plan.tag)
                raise

        info = {"tag": plan.tag}
        if plan.flow.startswith("begin block"):
            block = maker.begin()
            session = await block.__aenter__()
            session.info.update(info)
            try:
                if plan.hold_connection_first:
                    await step("connection", session.connection())
                session.add(User(name=plan.tag))
                if plan.flow == "begin block body" or plan.flush_first:
                    await step("begin block body", session.flush())
            except BaseException as error:
                await step("begin block", block.__aexit__(type(error), error, None))
                raise
            await step("begin block", block.__aexit__(None, None, None))
            ledger.reported.add(plan.tag)
            return

        async with maker(info=info) as session:
            if plan.hold_connection_first:
                # The cancellation then lands in the statement's IO, not in the pool's queue.
                await step("connection", session.connection())
            session.add(User(name=plan.tag))
            if plan.flow == "execute":
                # Autoflushes the new row first.
                await step("execute", session.execute(select(func.count(User.id))))
            elif plan.flow != "commit" or plan.flush_first:
                await step("flush", session.flush())
            if plan.flow == "rollback":
                await step("rollback", session.rollback())
                return
            commit_first = plan.flow != "close" or plan.tag.endswith(("0", "2", "4", "6", "8"))
            if commit_first:
                await step("commit", session.commit())
                ledger.reported.add(plan.tag)
            if plan.flow == "close":
                await step("close", session.close())

    task_plans = plans(random.Random(SEED))
    stop_listening = ledger.listen()
    started = time.monotonic()
    with recorded_problems() as problems, logged_problems() as pool_problems:
        tasks = [asyncio.create_task(run(plan)) for plan in task_plans]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
        leaked = checked_out(engine)
        async with postgresql_engine.connect() as connection:
            left_in_transaction = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'sa_async cancellation' AND state <> 'idle'"
                )
            )
        await engine.dispose()
        gc.collect()
        await asyncio.sleep(0)
    stop_listening()

    failures = [
        outcome
        for outcome in outcomes
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError)
    ]
    cancelled_tasks = sum(task.cancelled() for task in tasks)
    stored = await stored_tags(postgresql_engine)
    report(
        f"cancellation stress on postgresql (seed {SEED}): {TASKS} tasks on a pool of "
        f"{POOL_SIZE} in "
        f"{elapsed:.1f} s; {sum(plan.cancel for plan in task_plans)} cancel requests, "
        f"{cancelled_tasks} tasks ended cancelled (in: "
        + ", ".join(f"{point} {cancelled_in[point]}" for point in CANCEL_POINTS)
        + f"); {len(ledger.reported)} commits returned, {len(cancelled_commits)} commits "
        f"reached by a cancellation: {len(noted_commits)} after their COMMIT had begun, all "
        f"finished and noted, {len(cancelled_commits - noted_commits)} in their flush, nothing "
        f"committed; rows checked: {len(stored)} stored against "
        f"{TASKS} ledger entries, {len(stored ^ ledger.committed)} lost or phantom; "
        f"{leaked} connection(s) leaked, {left_in_transaction} left busy on the server, "
        f"{len(problems) + len(pool_problems)} warning(s) or error log(s); "
        f"{len(failures)} other error(s)"
    )
    assert failures == []
    assert leaked == 0 and left_in_transaction == 0
    assert problems == [] and pool_problems == []
    # The database holds exactly what SQLAlchemy reported committed ...
    assert stored == ledger.committed
    # ... which is every commit that returned, and every commit whose cancellation came with
    # the note saying it had committed (the others stopped in their flush: nothing committed).
    assert ledger.reported <= stored
    assert ledger.committed - ledger.reported == noted_commits
    assert noted_commits <= cancelled_commits
    assert cancelled_tasks > TASKS // 3 and all(cancelled_in[point] for point in CANCEL_POINTS)
