"""ScopeRegistry (``sa_async/registry.py``) and the closing of the sessions whose scope has ended.

The registry finds a stored key by its id and still compares keys by value; ``set()``,
``has()``, ``clear()`` and ``len()`` act on the current scope. The session of an ended scope
(a finished task, an exited thread, a dropped key, a task that ``asyncio.run()`` cancels at
shutdown) leaves the registry and is closed, quietly; a live scope's session is never dropped,
and keys that cannot be weakly referenced keep theirs until ``remove()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, NullPool, event, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

import sa_async
from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
    scoped_session,
)
from sa_async.registry import ScopeRegistry
from tests.conftest import AsyncScoped, checked_out
from tests.models import User
from tests.scoping_support import recorded_problems, sync_sqlite_engine, wait_until_checked_in


@pytest.fixture
def thread_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sync_sqlite_engine(tmp_path / "threads.db")
    yield engine
    engine.dispose()


def in_new_thread(function: Any) -> Any:
    """Run ``function`` in a thread of its own (which then exits); return its result."""
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    thread.join()
    assert results, "the thread failed"
    return results[0]


# -- the registry


class ValueKey:
    """A weakly referenceable scope key that compares by value."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValueKey) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def test_registry_keys_that_compare_equal_still_share_one_value() -> None:
    current: list[ValueKey] = [ValueKey(1)]
    registry = ScopeRegistry(Session, lambda: current[0])
    first = registry()
    twin = ValueKey(1)
    current[0], held = twin, current[0]
    assert registry() is first and registry.has()
    assert held is not twin


def test_registry_gives_a_new_value_to_a_new_key_at_a_dead_keys_address() -> None:
    current: list[ValueKey | None] = [ValueKey(1)]
    registry = ScopeRegistry(Session, lambda: current[0])
    first = registry()
    address = id(current[0])
    current[0] = None
    gc.collect()
    assert len(registry) == 0
    # CPython hands a freed block to the next object of its size, most of the time.
    for attempt in range(1000):
        candidate = ValueKey(attempt + 2)
        if id(candidate) == address:
            break
    current[0] = candidate
    assert registry() is not first
    assert len(registry) == 1


def test_registry_lookups_follow_set_clear_and_alternating_keys() -> None:
    first_key, second_key = ValueKey(1), ValueKey(2)
    current = [first_key]
    registry = ScopeRegistry(Session, lambda: current[0])
    first = registry()
    replacement = Session()
    registry.set(replacement)
    assert registry() is replacement
    registry.clear()
    fresh = registry()
    assert fresh is not first and fresh is not replacement
    current[0] = second_key
    second = registry()
    for _ in range(3):
        current[0] = first_key
        assert registry() is fresh
        current[0] = second_key
        assert registry() is second
    assert len(registry) == 2


async def test_registry_set_has_and_clear(scoped: AsyncScoped) -> None:
    registry = scoped.registry
    assert not registry.has() and len(registry) == 0
    session = scoped.session_factory()
    registry.set(session)
    assert registry.has() and scoped() is session and len(registry) == 1
    registry.clear()
    assert not registry.has() and len(registry) == 0
    await session.close()
    assert "0 object(s)" in repr(registry) and "0 session(s)" in repr(scoped)


# -- ended scopes: tasks and scope keys


async def test_session_of_a_finished_task_is_closed_and_forgotten(
    scoped: AsyncScoped, engine: AsyncEngine
) -> None:
    async def leave_a_transaction_open() -> AsyncSession:
        scoped.add(User(name="never committed"))
        await scoped.flush()
        return scoped()

    with recorded_problems() as problems:
        session = await asyncio.create_task(leave_a_transaction_open())
        # The task's done callbacks run in the loop iteration that resumed this one.
        await asyncio.sleep(0)
        assert len(scoped.registry) == 0
        await wait_until_checked_in(engine)
    assert not session.in_transaction() and list(session) == []
    assert problems == []
    assert await scoped.scalar(select(func.count(User.id))) == 0
    await scoped.remove()


async def test_session_of_a_live_task_is_never_dropped(
    scoped: AsyncScoped, engine: AsyncEngine
) -> None:
    resume = asyncio.Event()

    async def long_lived() -> tuple[AsyncSession, AsyncSession, list[str]]:
        session = scoped()
        scoped.add(User(name="long-lived"))
        await scoped.flush()
        await resume.wait()
        names = (await scoped.scalars(select(User.name))).all()
        return session, scoped(), list(names)

    async def short_lived(index: int) -> None:
        await scoped.execute(select(literal(index)))

    task = asyncio.create_task(long_lived())
    await asyncio.sleep(0.01)
    await asyncio.gather(*(short_lived(index) for index in range(50)))
    gc.collect()
    await asyncio.sleep(0.01)
    assert len(scoped.registry) == 1
    resume.set()
    before, after, names = await task
    assert before is after and names == ["long-lived"]
    await wait_until_checked_in(engine)


async def test_keys_that_cannot_be_weakly_referenced_are_kept_until_remove(
    engine: AsyncEngine,
) -> None:
    scoped = async_scoped_session(async_sessionmaker(engine), scopefunc=lambda: None)

    async def use() -> AsyncSession:
        await scoped.execute(select(1))
        return scoped()

    first = await asyncio.create_task(use())
    second = await asyncio.create_task(use())
    assert first is second and len(scoped.registry) == 1
    await asyncio.sleep(0.01)
    assert scoped() is first and checked_out(engine) == 1
    await scoped.remove()
    assert checked_out(engine) == 0 and len(scoped.registry) == 0


async def test_session_of_a_dropped_scope_key_is_closed(engine: AsyncEngine) -> None:
    class Request:
        pass

    current_request: contextvars.ContextVar[Request] = contextvars.ContextVar("current_request")
    scoped = async_scoped_session(async_sessionmaker(engine), current_request.get)

    async def handle() -> AsyncSession:
        current_request.set(Request())
        await scoped.execute(select(1))
        return scoped()

    with recorded_problems() as problems:
        # The task's context, and with it the request, goes when the task does.
        session = await asyncio.create_task(handle())
        gc.collect()
        await wait_until_checked_in(engine)
    assert len(scoped.registry) == 0 and not session.in_transaction()
    assert problems == []


def test_readme_repeats_the_module_paragraph_on_ended_scopes() -> None:
    def words(text: str) -> str:
        return " ".join(text.replace("``", "`").split())

    assert sa_async.registry.__doc__ is not None
    module_paragraph = sa_async.registry.__doc__.split(
        "Ended scopes (the README repeats this paragraph). ", 1
    )[1]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    readme_paragraph = readme.split("**Ended scopes.** ", 1)[1].split("\n\n", 1)[0]
    assert words(readme_paragraph) == words(module_paragraph)


# -- ended scopes: threads (a sync sqlite file)


def test_each_thread_has_its_own_session(thread_engine: Engine) -> None:
    scoped = scoped_session(sessionmaker(thread_engine))
    mine = scoped()
    theirs = in_new_thread(scoped)
    assert theirs is not mine and scoped() is mine and len(scoped.registry) == 1
    scoped.remove()


def test_session_of_an_exited_thread_is_closed_and_forgotten(thread_engine: Engine) -> None:
    scoped = scoped_session(sessionmaker(thread_engine))
    mine = scoped()

    def leave_a_transaction_open() -> Session:
        scoped.add(User(name="never committed"))
        scoped.flush()
        assert thread_engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        return scoped()

    gc.disable()
    try:
        session = in_new_thread(leave_a_transaction_open)
        # Closed by the thread's exit, not by the garbage collector.
        assert thread_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        gc.enable()
    assert not session.in_transaction() and list(session) == []
    assert len(scoped.registry) == 1 and scoped() is mine
    assert scoped.scalar(select(func.count(User.id))) == 0
    scoped.remove()


# -- shutdown


def test_asyncio_run_closes_the_session_of_its_main_task(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'run.db'}")
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)

    async def main() -> None:
        await scoped.scalar(select(1))
        assert checked_out(engine) == 1

    with recorded_problems() as problems:
        # The close starts after main() ends, as asyncio.run() cancels the tasks left over.
        asyncio.run(main())
        assert checked_out(engine) == 0 and len(scoped.registry) == 0
        asyncio.run(engine.dispose())
        gc.collect()
    assert problems == []


def run_with_cancelled_children(url: str, children: int) -> tuple[int, list[str]]:
    """asyncio.run() a main task that leaves ``children`` tasks holding scoped sessions with a
    connection each; return the connections still open once asyncio.run() has returned.

    No pool: a connection is closed when it is checked in, in the loop it belongs to; one left
    for a later loop to close would be a connection of a closed loop."""
    engine = create_async_engine(url, poolclass=NullPool)
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    opened: list[object] = []

    def on_connect(dbapi_connection: object, record: object) -> None:
        opened.append(dbapi_connection)

    def on_close(dbapi_connection: object, record: object) -> None:
        opened.remove(dbapi_connection)

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "close", on_close)

    async def child(started: asyncio.Event) -> None:
        await scoped.execute(select(1))
        started.set()
        await asyncio.sleep(3600)

    async def main() -> None:
        events = [asyncio.Event() for _ in range(children)]
        # Left running on purpose: asyncio.run() is to cancel them.
        children_tasks = [asyncio.create_task(child(started)) for started in events]
        assert len(children_tasks) == children
        for started in events:
            await started.wait()
        assert len(opened) == children

    with recorded_problems() as problems:
        # asyncio.run() cancels the children as it shuts down: their sessions' closes start then.
        asyncio.run(main())
        gc.collect()
    return len(opened), problems


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_asyncio_run_closes_the_scoped_sessions_of_the_tasks_it_cancels(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'shutdown.db'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    assert run_with_cancelled_children(url, children=8) == (0, [])


def test_the_close_of_a_scope_whose_engine_was_disposed_meanwhile_is_quiet() -> None:
    async def main() -> None:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as connection:
            await connection.run_sync(User.metadata.create_all)
        scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)

        async def handle_request() -> None:
            scoped.add(User(name="ann"))
            await scoped.flush()  # no commit, no remove()

        await asyncio.create_task(handle_request())
        await asyncio.sleep(0)
        assert len(scoped.registry) == 0
        # Disposing closes the in-memory database's one connection under the pending close.
        await engine.dispose()

    with recorded_problems() as problems:
        asyncio.run(main())
    assert problems == []
