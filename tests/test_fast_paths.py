"""The fast paths keep SQLAlchemy's semantics.

``AsyncSession.get()`` answers from the identity map without entering the bridge when that
cannot need IO; every case where the sync ``Session.get`` would query, refresh or decide
otherwise must still behave as it does. ``close()`` of an empty session without a transaction
runs the sync close on the spot. Work run to completion (commit, close, the end of
``maker.begin()``) runs in the calling task and defers a cancellation until it is done, instead
of running in a task of its own behind a shield. Pass-through members are compiled with the
target's own parameters and call it as SQLAlchemy's proxies do. The scope registry finds a stored
key by its id. The sessionmaker builds sessions with one dict merge, and the sync session keeps
its AsyncSession in an attribute.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import create_engine, delete, event, update
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_session,
    async_sessionmaker,
    scoped_session,
)
from sa_async import session as session_module
from sa_async._bridge import in_bridge
from sa_async.exc import ConcurrentSessionUseError
from sa_async.scoping import ScopeRegistry
from tests.conftest import checked_out, untyped
from tests.models import Address, User


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def recorded_bridge_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    bridged: list[object] = []
    # The runtime's module global (the stubs do not declare private imports).
    real_run_in_bridge = getattr(session_module, "run_in_bridge")  # noqa: B009

    async def recording_run_in_bridge(fn: Any, *args: Any, **kw: Any) -> Any:
        bridged.append(fn)
        return await real_run_in_bridge(fn, *args, **kw)

    monkeypatch.setattr(session_module, "run_in_bridge", recording_run_in_bridge)
    yield bridged


async def stored_user(maker: async_sessionmaker[AsyncSession], name: str = "ada") -> int:
    async with maker.begin() as session:
        user = User(name=name)
        session.add(user)
        await session.flush()
        return user.id


async def test_get_hit_returns_the_identity_map_object_without_sql(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with count_statements(engine) as statements:
            assert await session.get(User, user_id) is user
            assert await session.get(User, (user_id,)) is user
        assert statements == []


async def test_get_hit_is_served_without_entering_the_bridge(
    maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with recorded_bridge_calls(monkeypatch) as bridged:
            assert await session.get(User, user_id) is user
            assert bridged == []
            session.expire(user)
            assert await session.get(User, user_id) is user
            assert len(bridged) == 1


async def test_get_of_an_expired_object_still_reloads_it(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker(expire_on_commit=False) as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # ends the read transaction: SQLite would lock the writer out
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="grace"))
        session.expire(user)
        assert await session.get(User, user_id) is user
        assert user.name == "grace"


async def test_get_of_an_object_deleted_elsewhere_and_expired_returns_none(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # expires everything (expire_on_commit)
        async with engine.begin() as connection:
            await connection.execute(delete(User))
        assert await session.get(User, user_id) is None
        assert user not in session


async def test_get_with_populate_existing_still_refreshes(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker(expire_on_commit=False) as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # ends the read transaction: SQLite would lock the writer out
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="grace"))
        assert user.name == "ada"
        assert await session.get(User, user_id, populate_existing=True) is user
        assert user.name == "grace"


async def test_get_with_options_queries_as_before(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with count_statements(engine) as statements:
            assert await session.get(User, user_id, with_for_update=True) is user
        assert len(statements) == 1


async def test_get_of_another_class_with_the_same_key_is_not_served(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        await session.get_one(User, user_id)
        assert await session.get(Address, user_id) is None


async def test_get_with_a_dict_identity_takes_the_full_path(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        assert await session.get(User, {"id": user_id}) is user


async def test_get_of_a_session_class_overriding_get_goes_through_it(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    calls: list[object] = []

    class CountingSession(Session):
        def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
            calls.append(ident)
            return super().get(entity, ident, **kw)

    user_id = await stored_user(maker)
    async with AsyncSession(engine, sync_session_class=CountingSession) as session:
        user = await session.get(User, user_id)
        assert await session.get(User, user_id) is user
        assert calls == [user_id, user_id]


async def test_get_of_a_wrong_length_key_still_raises(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        await session.get_one(User, user_id)
        with pytest.raises(Exception, match="Incorrect number of values"):
            await session.get(User, (user_id, 2))


async def test_close_without_a_transaction_still_expunges_everything(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # no transaction left: close takes the fast path
        assert session.get_transaction() is None
        await session.close()
        assert user not in session
        assert list(session) == []


async def test_close_with_a_transaction_still_completes_when_cancelled(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    closing = asyncio.Event()

    async def close_while_cancelled() -> None:
        session = maker()
        await session.get(User, 1)  # begins a transaction and checks out a connection
        closing.set()
        await session.close()

    task = asyncio.ensure_future(close_while_cancelled())
    await closing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0


# -- close() of an empty session without a transaction


async def test_close_of_an_empty_session_runs_the_sync_close_without_the_bridge(
    maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Session] = []
    with recorded_bridge_calls(monkeypatch) as bridged:
        async with maker() as session:
            event.listen(session.sync_session, "after_transaction_end", untyped(closed.append))
        assert bridged == []
        # Closed for real: a session built with close_resets_only=False refuses further use.
        final = maker(close_resets_only=False)
        await final.close()
        with pytest.raises(Exception, match="closed"):
            final.add(User(name="late"))


async def test_close_that_detaches_objects_still_fires_its_events_in_the_bridge(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    detached: list[bool] = []
    async with maker() as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # no transaction left, but an object to detach
        event.listen(
            session.sync_session,
            "persistent_to_detached",
            lambda sync_session, instance: detached.append(in_bridge()),
        )
        await session.close()
        assert user not in session
    assert detached == [True]


class AwaitingCloseSession(Session):
    """A sync Session whose close() awaits: it needs the bridge even with nothing to end."""

    def close(self) -> None:
        await_(asyncio.sleep(0))
        super().close()


async def test_close_of_a_session_class_overriding_close_goes_through_the_bridge(
    engine: AsyncEngine,
) -> None:
    session = AsyncSession(engine, sync_session_class=AwaitingCloseSession)
    await session.close()


async def test_close_of_an_empty_session_is_still_refused_during_another_tasks_operation(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    session = maker()
    started = asyncio.Event()

    def hold(sync_session: Session) -> None:
        started.set()
        await_(asyncio.sleep(0.05))

    holder = asyncio.ensure_future(session.run_sync(hold))
    await started.wait()
    assert session.get_transaction() is None
    with pytest.raises(ConcurrentSessionUseError, match=r"so close\(\) from"):
        await session.close()
    await holder
    await session.close()


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


# -- compiled pass-through members


class RecordingSession(Session):
    """Records how the proxies call the sync session."""

    calls: ClassVar[list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = []

    def add(self, instance: object, *args: Any, **kw: Any) -> None:
        type(self).calls.append(("add", args, kw))
        super().add(instance, *args, **kw)

    def is_modified(self, instance: object, *args: Any, **kw: Any) -> bool:
        type(self).calls.append(("is_modified", args, kw))
        return super().is_modified(instance, *args, **kw)

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        type(self).calls.append(("get_bind", (mapper,), kw))
        return super().get_bind(mapper, **kw)

    def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        type(self).calls.append(("get", (), kw))
        return super().get(entity, ident, **kw)


async def test_pass_through_members_call_the_sync_session_as_sqlalchemys_do(
    engine: AsyncEngine,
) -> None:
    def calls_of(session: Any) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        RecordingSession.calls = []
        user = User(name="ann")
        session.add(user)
        session.is_modified(user)
        return RecordingSession.calls

    ours = AsyncSession(engine, sync_session_class=RecordingSession)
    theirs = sqlalchemy_asyncio.AsyncSession(engine, sync_session_class=RecordingSession)
    assert calls_of(ours) == calls_of(theirs)
    await ours.close()
    await theirs.close()
    for name in ("add", "add_all", "expire", "expunge", "is_modified", "__contains__"):
        member = getattr(AsyncSession, name)
        assert inspect.signature(member) == inspect.signature(getattr(Session, name)), name
        assert member.__module__ == "sa_async.session" and member.__name__ == name


def test_scoped_pass_through_members_call_the_session_as_sqlalchemys_do() -> None:
    def calls_of(scoped: Any) -> list[tuple[str, int, list[str]]]:
        RecordingSession.calls = []
        scoped.add(User(name="ann"))
        scoped.get(User, 1)
        scoped.get_bind(User)
        scoped.remove()
        # Each get() builds its own statement: compare the shape of the calls.
        return [(name, len(args), sorted(kw)) for name, args, kw in RecordingSession.calls]

    engine = create_engine("sqlite://")
    User.metadata.create_all(engine)
    factory = sqlalchemy_orm.sessionmaker(engine, class_=RecordingSession)
    ours = calls_of(scoped_session(factory))
    assert ours == calls_of(sqlalchemy_orm.scoped_session(factory))
    assert ("add", 0, ["_warn"]) in ours


async def test_async_scoped_pass_through_members_keep_the_guard(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    scoped = async_scoped_session(maker, scopefunc=lambda: "shared")
    session = scoped()
    started = asyncio.Event()

    def hold(sync_session: Session) -> None:
        started.set()
        await_(asyncio.sleep(0.05))

    holder = asyncio.ensure_future(session.run_sync(hold))
    await started.wait()
    with pytest.raises(ConcurrentSessionUseError, match=r"so add\(\) from"):
        await asyncio.ensure_future(asyncio.to_thread(scoped.add, User(name="x")))
    await holder
    await scoped.remove()


# -- the scope registry


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


def test_the_sync_session_holds_its_async_session_weakly(engine: AsyncEngine) -> None:
    session = AsyncSession(engine)
    sync_session = session.sync_session
    assert async_session(sync_session) is session
    del session
    gc.collect()
    assert async_session(sync_session) is None


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
