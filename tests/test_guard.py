"""The concurrent-use guard (``sa_async/_guard.py``): one operation at a time per AsyncSession.

Every use of the session by a second task while an operation runs is refused with
``ConcurrentSessionUseError`` before any IO, and what was running keeps running; calls made from
inside the running operation are not concurrent use, and the guard is released after an error or
a cancellation. The session of a scope that has ended refuses everything with
``ScopeEndedError``, once an operation running at the end has finished. An attribute that needs
loading, read by plain async code, raises ``ImplicitIOError`` before any SQL is sent.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.util import await_

from sa_async import AsyncEngine, AsyncSession, async_scoped_session
from sa_async.exc import ConcurrentSessionUseError, ImplicitIOError, ScopeEndedError
from tests.conftest import (
    AsyncScoped,
    Maker,
    ReadBack,
    StatementCounter,
    add_user_with_address,
    checked_out,
    operation_in_progress,
    untyped,
)
from tests.models import Address, Base, User
from tests.scoping_support import recorded_problems, wait_until_checked_in

# -- one session, two tasks


# Each bridged or state-changing member of AsyncSession, and the operation name it is refused as.
SessionUse = Callable[[AsyncSession, User], Any]


SESSION_USES: dict[str, tuple[str, SessionUse]] = {
    "execute": ("execute()", lambda s, user: s.execute(select(User))),
    "scalar": ("scalar()", lambda s, user: s.scalar(select(User.id))),
    "scalars": ("execute()", lambda s, user: s.scalars(select(User))),
    "stream": ("stream()", lambda s, user: s.stream(select(User))),
    "stream_scalars": ("stream()", lambda s, user: s.stream_scalars(select(User))),
    "get": ("get()", lambda s, user: s.get(User, user.id)),
    "get_one": ("get_one()", lambda s, user: s.get_one(User, user.id)),
    "refresh": ("refresh()", lambda s, user: s.refresh(user)),
    "delete": ("delete()", lambda s, user: s.delete(user)),
    "delete_all": ("delete_all()", lambda s, user: s.delete_all([user])),
    "merge": ("merge()", lambda s, user: s.merge(User(name="merged"))),
    "merge_all": ("merge_all()", lambda s, user: s.merge_all([User(name="merged")])),
    "flush": ("flush()", lambda s, user: s.flush()),
    "connection": ("connection()", lambda s, user: s.connection()),
    "commit": ("commit()", lambda s, user: s.commit()),
    "rollback": ("rollback()", lambda s, user: s.rollback()),
    "close": ("close()", lambda s, user: s.close()),
    "aclose": ("close()", lambda s, user: s.aclose()),
    "reset": ("reset()", lambda s, user: s.reset()),
    "invalidate": ("invalidate()", lambda s, user: s.invalidate()),
    "run_sync": ("run_sync()", lambda s, user: s.run_sync(lambda sync_session: None)),
    "begin": ("begin()", lambda s, user: s.begin()),
    "begin_nested": ("begin_nested()", lambda s, user: s.begin_nested()),
    "awaitable_attrs": (
        "awaitable_attrs.addresses",
        lambda s, user: user.awaitable_attrs.addresses,
    ),
    "add": ("add()", lambda s, user: s.add(User(name="added"))),
    "add_all": ("add_all()", lambda s, user: s.add_all([User(name="added")])),
    "expire": ("expire()", lambda s, user: s.expire(user)),
    "expire_all": ("expire_all()", lambda s, user: s.expire_all()),
    "expunge": ("expunge()", lambda s, user: s.expunge(user)),
    "expunge_all": ("expunge_all()", lambda s, user: s.expunge_all()),
}


async def use(session: AsyncSession, user: User, name: str) -> None:
    outcome = SESSION_USES[name][1](session, user)
    if isinstance(outcome, Awaitable):
        await outcome


async def test_every_use_by_a_second_task_is_refused_before_any_io(
    maker: Maker, sent: StatementCounter
) -> None:
    user_id = await add_user_with_address(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        before = sent.count
        async with operation_in_progress(session) as holder:
            for name, (refused_as, _) in SESSION_USES.items():
                with pytest.raises(ConcurrentSessionUseError) as refused:
                    await asyncio.create_task(use(session, user, name), name=f"second {name}")
                message = str(refused.value)
                assert "scalar() is running in task 'the holder'" in message, name
                assert f"so {refused_as} from task 'second {name}" in message, name
                assert "before touching the connection" in message
            # Neither the refused calls nor the paused one sent anything; nothing changed.
            assert sent.count == before
            assert user in session and not session.new and not session.deleted
        assert holder.result() == 1
        assert await session.scalar(select(func.count(User.id))) == 1
    assert issubclass(ConcurrentSessionUseError, sa_exc.InvalidRequestError)
    assert checked_out(maker.kw["bind"]) == 0


async def test_gathering_two_operations_on_one_session_refuses_the_second(maker: Maker) -> None:
    async with maker() as session:
        first, second = await asyncio.gather(
            session.scalar(select(func.count(User.id))),
            session.scalar(select(func.count(User.id))),
            return_exceptions=True,
        )
        assert first == 0
        assert isinstance(second, ConcurrentSessionUseError)
        assert "scalar() is running" in str(second) and "so scalar() from" in str(second)


async def test_the_session_behind_a_shared_scope_is_guarded_too(maker: Maker) -> None:
    # A scope key shared by two tasks (a request object handed to a background task, say).
    scoped = async_scoped_session(maker, scopefunc=lambda: "one request")
    user_id = await add_user_with_address(maker)
    user = await scoped.get_one(User, user_id)
    async with operation_in_progress(scoped()):
        with pytest.raises(ConcurrentSessionUseError, match=r"so get\(\) from task"):
            await asyncio.create_task(scoped.get(User, user_id))
        with pytest.raises(ConcurrentSessionUseError, match=r"so add\(\) from thread"):
            await asyncio.create_task(untyped(asyncio.to_thread)(scoped.add, User(name="x")))
        with pytest.raises(ConcurrentSessionUseError, match=r"so flush\(\) from task"):
            await asyncio.create_task(scoped.flush())
    assert await scoped.get(User, user_id) is user
    await scoped.remove()


async def test_nested_calls_of_the_running_operation_are_not_concurrent_use(
    maker: Maker, sent: StatementCounter
) -> None:
    user_id = await add_user_with_address(maker)
    async with maker() as session:

        def calls_back(sync_session: Session) -> list[str]:
            # run_sync calling back into the AsyncSession, from inside the bridge.
            user = sync_session.get_one(User, user_id)
            assert await_(session.scalar(select(func.count(User.id)))) == 1
            addresses = await_(user.awaitable_attrs.addresses)
            session.add(User(name="added inside"))
            await_(session.flush())
            # A commit run to its end, from inside the running operation.
            await_(session.commit())
            return [address.email for address in addresses]

        assert await session.run_sync(calls_back) == ["a@x"]

        # The event hooks of a commit call back too.
        counted_before_commits: list[int | None] = []

        def before_commit(sync_session: Session) -> None:
            counted_before_commits.append(await_(session.scalar(select(func.count(User.id)))))

        event.listen(session.sync_session, "before_commit", before_commit)
        await session.commit()
        async with session.begin():
            session.add(User(name="in a begin block"))
        assert counted_before_commits == [2, 3]
        assert sent.count > 0


async def test_the_guard_is_released_after_an_error_and_after_a_cancellation(
    maker: Maker,
) -> None:
    async with maker() as session:
        with pytest.raises(sa_exc.DBAPIError):
            await session.execute(text("SELECT * FROM no_such_table"))
        await session.rollback()
        async with operation_in_progress(session) as holder:
            holder.cancel()
            with pytest.raises(asyncio.CancelledError):
                await holder
        assert await session.scalar(select(func.count(User.id))) == 0


async def test_the_guard_keeps_no_reference_to_a_released_session(maker: Maker) -> None:
    # Timers and tasks started during an operation keep copies of its context: the guard's
    # context variable must not hold the session, which goes as soon as the program drops it.
    session = maker()
    await session.scalar(select(func.count(User.id)))
    await session.rollback()
    released = weakref.ref(session)
    del session
    assert released() is None


# -- a session used after its scope ended


async def test_a_session_used_after_its_scope_ended_refuses_before_any_io(
    scoped: AsyncScoped, engine: AsyncEngine, read_back: ReadBack
) -> None:
    statements: list[str] = []

    async def handle_request() -> AsyncSession:
        scoped.add(User(name="handed on"))
        await scoped.flush()
        return scoped()

    session = await asyncio.create_task(handle_request(), name="request 7")
    await wait_until_checked_in(engine)

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for use in (session.commit(), session.execute(select(1)), session.get(User, 1)):
            with pytest.raises(ScopeEndedError, match="task 'request 7'") as raised:
                await use
            assert isinstance(raised.value, sa_exc.InvalidRequestError)
        with pytest.raises(ScopeEndedError, match=r"add\(\) was refused"):
            session.add(User(name="too late"))
        # Closing it again is harmless: it is closed.
        await session.close()
        async with session:
            pass
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements == []
    assert await read_back("SELECT name FROM users") == []


async def test_an_operation_running_when_the_scope_ends_finishes_before_the_close(
    scoped: AsyncScoped, engine: AsyncEngine, read_back: ReadBack
) -> None:
    commit_running = asyncio.Event()
    background: list[asyncio.Task[None]] = []

    def slow_before_commit(sync_session: Session) -> None:
        commit_running.set()
        await_(asyncio.sleep(0.05))

    async def commit_later(session: AsyncSession) -> None:
        await session.commit()

    user = User(name="committed by the background task")

    async def handle_request() -> AsyncSession:
        session = scoped()
        event.listen(session.sync_session, "before_commit", slow_before_commit)
        session.add(user)
        await session.flush()
        background.append(asyncio.create_task(commit_later(session)))
        await commit_running.wait()
        return session  # the scope ends while the commit runs

    with recorded_problems() as problems:
        session = await asyncio.create_task(handle_request())
        await background[0]
        await wait_until_checked_in(engine)
        assert await read_back("SELECT name FROM users") == [("committed by the background task",)]
        # Closed once the commit was done (its objects detached): from then on it refuses.
        for _ in range(100):
            if user not in session:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(ScopeEndedError):
            await session.execute(select(1))
    assert problems == []


# -- IO outside the bridge


@pytest.mark.parametrize(
    ("attribute", "state", "eager_fix"),
    [
        ("addresses", "is not loaded", ".options(selectinload(User.addresses))"),
        ("name", "is expired", "session.refresh(obj)"),
        ("bio", "is deferred", ".options(undefer(User.bio))"),
    ],
)
async def test_attribute_io_outside_the_bridge_is_refused_before_any_io(
    maker: Maker, sent: StatementCounter, attribute: str, state: str, eager_fix: str
) -> None:
    user_id = await add_user_with_address(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        if attribute == "name":
            session.expire(user)
        pending = User(name="pending, would be autoflushed by the load")
        session.add(pending)
        before = sent.count
        with pytest.raises(ImplicitIOError) as refused:
            getattr(user, attribute)
        message = str(refused.value)
        assert message.startswith(f"User.{attribute} {state}")
        for fix in ("awaitable_attrs", f"obj.awaitable_attrs.{attribute}", "eager loading"):
            assert fix in message
        assert eager_fix in message and "run_sync(fn)" in message
        # No autoflush, no query: the session is as it was and still usable.
        assert sent.count == before
        assert list(session.new) == [pending] and session.is_active
        assert await getattr(user.awaitable_attrs, attribute) is not None
        await session.flush()
    # Code that catches SQLAlchemy's MissingGreenlet catches it.
    assert issubclass(ImplicitIOError, sa_exc.MissingGreenlet)


async def test_eager_loading_and_run_sync_need_no_io_outside_the_bridge(maker: Maker) -> None:
    user_id = await add_user_with_address(maker)
    async with maker(expire_on_commit=False) as session:
        user = await session.scalar(select(User).options(selectinload(User.addresses)))
        assert user is not None and [a.email for a in user.addresses] == ["a@x"]
        await session.commit()
        assert user.name == "ann"
        assert await session.run_sync(lambda sync: sync.get_one(User, user_id).bio) == "bio"


@pytest.mark.filterwarnings("ignore:coroutine 'Connection.cursor' was never awaited")
async def test_sqlalchemys_own_sessions_keep_their_behaviour(
    engine: AsyncEngine, maker: Maker, tmp_path: Path
) -> None:
    user_id = await add_user_with_address(maker)
    async with sqlalchemy_asyncio.AsyncSession(engine) as theirs:
        user = await theirs.get_one(User, user_id)
        # aiosqlite's cursor() is refused unawaited there (hence the warning filter).
        with pytest.raises((sa_exc.MissingGreenlet, sa_exc.StatementError)) as caught:
            _ = user.addresses
        assert not isinstance(caught.value, ImplicitIOError)
        del caught
        gc.collect()
    sync_engine = create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    Base.metadata.create_all(sync_engine)
    with sessionmaker(sync_engine).begin() as sync_session:
        sync_session.add(User(name="bob", addresses=[Address(email="b@x")]))
    with Session(sync_engine) as sync_session:
        bob = sync_session.scalars(select(User)).one()
        assert [address.email for address in bob.addresses] == ["b@x"]
    sync_engine.dispose()
