"""The greenlet bridge: sync code run from a coroutine, awaiting IO through ``await_``."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import weakref
from typing import Any

import anyio
import pytest
from greenlet import getcurrent, greenlet  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, text
from sqlalchemy.util import await_
from sqlalchemy.util import greenlet_spawn as sqlalchemy_greenlet_spawn

from sa_async import AsyncEngine
from sa_async._bridge import MAX_IDLE_WORKERS, BridgeWorker, in_bridge, run_in_bridge
from tests.models import User

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class DriverError(Exception):
    """Stands for an error raised by a database driver's coroutine."""


async def fail_with(error: BaseException) -> None:
    await asyncio.sleep(0)
    raise error


async def test_returns_the_sync_functions_value_with_args_and_kwargs() -> None:
    def add(a: int, b: int, *, c: int = 0) -> tuple[int, bool]:
        return a + b + c, in_bridge()

    assert await run_in_bridge(add, 1, 2, c=3) == (6, True)


async def test_returns_values_of_awaited_io_to_the_sync_code() -> None:
    def sync_code() -> list[int]:
        return [await_(asyncio.sleep(0, result=n)) for n in range(3)]

    assert await run_in_bridge(sync_code) == [0, 1, 2]


async def test_exception_of_the_sync_code_reaches_the_caller_unchanged() -> None:
    error = ValueError("raised by sync code")

    def sync_code() -> None:
        await_(asyncio.sleep(0))
        raise error

    with pytest.raises(ValueError) as caught:
        await run_in_bridge(sync_code)
    assert caught.value is error


async def test_exception_of_awaited_io_is_raised_inside_the_sync_code_and_catchable() -> None:
    error = DriverError("connection reset")

    def sync_code() -> str:
        try:
            await_(fail_with(error))
        except DriverError as caught:
            assert caught is error
            # The sync code can keep doing IO after handling the failure.
            return await_(asyncio.sleep(0, result="handled"))
        return "not raised"

    assert await run_in_bridge(sync_code) == "handled"


async def test_exception_of_awaited_io_unhandled_by_the_sync_code_reaches_the_caller() -> None:
    unwound: list[str] = []

    def sync_code() -> None:
        try:
            await_(fail_with(DriverError("boom")))
        finally:
            unwound.append("finally ran")

    with pytest.raises(DriverError, match="boom"):
        await run_in_bridge(sync_code)
    assert unwound == ["finally ran"]


async def test_cancellation_raises_cancelled_error_in_the_sync_code_then_the_caller() -> None:
    waiting = asyncio.Event()
    seen_in_sync_code: list[type[BaseException]] = []

    def sync_code() -> None:
        try:
            waiting.set()
            await_(asyncio.sleep(30))
        except BaseException as error:
            seen_in_sync_code.append(type(error))
            # Clean-up IO still works while the cancellation unwinds.
            await_(asyncio.sleep(0))
            raise

    task = asyncio.ensure_future(run_in_bridge(sync_code))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen_in_sync_code == [asyncio.CancelledError]
    assert task.cancelled()


async def test_sync_code_that_swallows_cancellation_returns_normally() -> None:
    waiting = asyncio.Event()

    def sync_code() -> str:
        try:
            waiting.set()
            await_(asyncio.sleep(30))
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    task = asyncio.ensure_future(run_in_bridge(sync_code))
    await waiting.wait()
    task.cancel()
    assert await task == "swallowed"


async def test_context_variables_of_the_calling_task_are_visible_inside() -> None:
    async def handle(value: str) -> str:
        request_id.set(value)
        await asyncio.sleep(0)

        def sync_code() -> str:
            before = request_id.get()
            await_(asyncio.sleep(0))
            return f"{before}/{request_id.get()}"

        return await run_in_bridge(sync_code)

    # Two interleaving tasks each see their own value, before and after awaiting IO.
    results = await asyncio.gather(handle("first"), handle("second"))
    assert list(results) == ["first/first", "second/second"]
    assert request_id.get() == "unset"


async def test_await_outside_the_bridge_raises_missing_greenlet() -> None:
    assert not in_bridge()
    coroutine = asyncio.sleep(0)
    with pytest.raises(sa_exc.MissingGreenlet):
        await_(coroutine)
    # The refused coroutine was closed, not left to warn "never awaited".
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


async def test_await_in_a_plain_greenlet_raises_missing_greenlet() -> None:
    def sync_code() -> bool:
        with pytest.raises(sa_exc.MissingGreenlet):
            await_(asyncio.sleep(0))
        return in_bridge()

    assert greenlet(sync_code).switch() is False


async def test_nested_bridges_run_and_propagate_values_and_errors() -> None:
    def inner(value: int) -> int:
        if value < 0:
            raise DriverError("negative")
        return await_(asyncio.sleep(0, result=value * 2))

    def outer(value: int) -> tuple[int, bool]:
        doubled = await_(run_in_bridge(inner, value))
        return doubled + 1, in_bridge()

    assert await run_in_bridge(outer, 5) == (11, True)
    with pytest.raises(DriverError, match="negative"):
        await run_in_bridge(outer, -1)


async def test_interoperates_with_sqlalchemys_own_greenlet_spawn() -> None:
    def inner() -> bool:
        return await_(asyncio.sleep(0, result=in_bridge()))

    def outer() -> bool:
        return await_(sqlalchemy_greenlet_spawn(inner))

    assert await run_in_bridge(outer) is True
    assert await sqlalchemy_greenlet_spawn(lambda: await_(run_in_bridge(inner))) is True


async def test_sqlalchemys_async_drivers_run_sync_core_code_inside(engine: AsyncEngine) -> None:
    def sync_code() -> list[str]:
        with engine.sync_engine.begin() as connection:
            connection.execute(insert(User), [{"name": "ann"}, {"name": "bob"}])
        with engine.sync_engine.connect() as connection:
            return list(connection.scalars(select(User.name).order_by(User.name)))

    assert await run_in_bridge(sync_code) == ["ann", "bob"]


async def test_database_errors_are_catchable_inside_the_bridge(engine: AsyncEngine) -> None:
    def sync_code() -> tuple[BaseException | None, Any]:
        with engine.sync_engine.connect() as connection:
            try:
                connection.execute(text("SELECT * FROM no_such_table"))
            except sa_exc.DBAPIError as error:
                connection.rollback()
                return error, connection.scalar(text("SELECT 42"))
        return None, None

    error, answer = await run_in_bridge(sync_code)
    # sqlite reports OperationalError, PostgreSQL ProgrammingError: both DBAPIError subclasses.
    assert isinstance(error, (sa_exc.OperationalError, sa_exc.ProgrammingError))
    assert answer == 42


async def test_worker_greenlets_are_reused_across_calls() -> None:
    # The fast path: a finished worker serves the next call instead of a new greenlet.
    first = await run_in_bridge(getcurrent)
    second = await run_in_bridge(getcurrent)
    assert first is second


async def test_a_reused_worker_sees_the_context_of_its_new_caller() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    async def handle(name: str) -> str:
        request_id.set(name)
        return await run_in_bridge(request_id.get)

    assert await asyncio.create_task(handle("first")) == "first"
    assert await asyncio.create_task(handle("second")) == "second"
    with pytest.raises(LookupError):
        await run_in_bridge(request_id.get)


async def test_concurrent_calls_each_get_their_own_worker() -> None:
    def which_worker() -> object:
        # Suspended in IO, so the other call starts while this one still holds its worker.
        await_(asyncio.sleep(0.01))
        return getcurrent()

    first, second = await asyncio.gather(run_in_bridge(which_worker), run_in_bridge(which_worker))
    assert first is not second


async def test_a_worker_whose_job_failed_serves_the_next_call() -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await run_in_bridge(fail)
    assert await run_in_bridge(lambda: 42) == 42


def live_workers() -> list[Any]:
    gc.collect()
    return [item for item in gc.get_objects() if isinstance(item, BridgeWorker)]


class Payload:
    """An argument whose lifetime the tests watch."""


async def test_an_idle_worker_keeps_nothing_of_its_last_job() -> None:
    payload = Payload()
    collected = weakref.ref(payload)

    def job(argument: Payload) -> Payload:
        await_(asyncio.sleep(0))
        return argument

    assert await run_in_bridge(job, payload) is payload
    with pytest.raises(LookupError):
        await run_in_bridge(lambda argument: {}[argument], payload)
    del payload
    gc.collect()
    assert collected() is None


async def test_workers_beyond_the_idle_ones_end_and_are_collected() -> None:
    def job() -> None:
        await_(asyncio.sleep(0.01))

    # (Workers of earlier tests may be held by the tracebacks that pytest keeps.)
    earlier = {id(worker) for worker in live_workers()}
    # Far more calls at once than workers are kept idle: the others must end, not linger.
    for _ in range(3):
        await asyncio.gather(*(run_in_bridge(job) for _ in range(200)))
    left = [worker for worker in live_workers() if id(worker) not in earlier]
    assert len(left) <= MAX_IDLE_WORKERS
    assert all(not worker.dead for worker in left)


async def test_the_clean_up_after_a_cancellation_is_not_cut_short_by_another() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    cleaned_up: list[str] = []
    started = asyncio.Event()

    def sync_code() -> None:
        try:
            started.set()
            await_(never)
        except asyncio.CancelledError:
            # A driver's clean-up: closing what the cancelled IO left unusable.
            await_(asyncio.sleep(0.02))
            cleaned_up.append("done")
            raise

    task = asyncio.ensure_future(run_in_bridge(sync_code))
    await started.wait()
    task.cancel()
    await asyncio.sleep(0.005)
    task.cancel()  # again, during the clean-up (anyio's cancel scopes do so at every await)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up == ["done"]


async def test_the_clean_up_runs_to_its_end_under_an_anyio_cancel_scope() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    cleaned_up: list[str] = []

    def sync_code() -> None:
        try:
            await_(never)
        except asyncio.CancelledError:
            for _ in range(3):
                await_(asyncio.sleep(0.005))
            cleaned_up.append("done")
            raise

    with anyio.move_on_after(0.01) as scope:
        await run_in_bridge(sync_code)
    assert scope.cancelled_caught
    assert cleaned_up == ["done"]
