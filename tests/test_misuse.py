"""Misuse caught early: one session used by two tasks at once, attribute IO outside the bridge,
bad input, and no secret in what sa_async shows. Each mistake raises an exception naming it
before anything reaches the database; what was running keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import traceback
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import create_engine, event, func, make_url, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import ORMExecuteState, Session, selectinload, sessionmaker
from sqlalchemy.orm import exc as orm_exc
from sqlalchemy.util import await_

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
    scoped_session,
)
from sa_async.exc import (
    ArgumentTypeError,
    ConcurrentSessionUseError,
    ImplicitIOError,
    ScopefuncError,
    SessionClassError,
    SyncBindError,
    TransactionFinishedError,
)
from tests.conftest import EngineFactory, checked_out, untyped
from tests.models import Address, Base, User

Maker = async_sessionmaker[AsyncSession]


class StatementCounter:
    """Counts the statements an engine sends to its database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.count += 1


@pytest.fixture
def sent(engine: AsyncEngine) -> StatementCounter:
    return StatementCounter(engine)


async def add_user_with_address(maker: Maker) -> int:
    async with maker.begin() as session:
        user = User(name="ann", bio="bio", addresses=[Address(email="a@x")])
        session.add(user)
        await session.flush()
        return user.id


@contextlib.asynccontextmanager
async def operation_in_progress(session: AsyncSession) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``session.execute()`` in a task of its own, paused inside the bridge (before its
    statement is sent) for as long as the block runs; the task is awaited at the end."""
    entered, release = asyncio.Event(), asyncio.Event()

    def pause(orm_execute_state: ORMExecuteState) -> None:
        if not release.is_set():
            entered.set()
            await_(release.wait())

    event.listen(session.sync_session, "do_orm_execute", pause)
    holder = asyncio.create_task(session.scalar(select(func.count(User.id))), name="the holder")
    await entered.wait()
    try:
        yield holder
    finally:
        release.set()
        if not holder.cancelled():
            await holder
        event.remove(session.sync_session, "do_orm_execute", pause)


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


# -- bad input (the sync binds and session classes are in test_session.py)


def test_arguments_of_the_wrong_kind_are_named_at_construction(engine: AsyncEngine) -> None:
    assert issubclass(ArgumentTypeError, sa_exc.ArgumentError)
    assert issubclass(ArgumentTypeError, TypeError)
    mistakes: list[tuple[str, Any]] = [
        ("binds must be a mapping .*got a list", lambda: AsyncSession(binds=untyped([engine]))),
        (
            "binds must be a mapping .*got a list",
            lambda: async_sessionmaker(binds=untyped([engine])),
        ),
        ("info must be a mapping .*got a str", lambda: AsyncSession(engine, info=untyped("x"))),
        (
            "info must be a mapping .*got a str",
            lambda: async_sessionmaker(engine, info=untyped("x")),
        ),
        (
            "info must be a mapping .*got a str",
            lambda: async_sessionmaker(engine, info={"a": 1})(info=untyped("x")),
        ),
        (
            r"session_factory must be .* async_sessionmaker\(engine\); got an AsyncEngine",
            lambda: async_scoped_session(untyped(engine), asyncio.current_task),
        ),
        (
            r"session_factory must be .* sessionmaker\(engine\); got an Engine",
            lambda: scoped_session(untyped(engine.sync_engine)),
        ),
    ]
    for message, construct in mistakes:
        with pytest.raises(ArgumentTypeError, match=message):
            construct()


def test_an_async_session_class_as_sync_session_class_is_refused_at_construction(
    engine: AsyncEngine,
) -> None:
    for wrong in (AsyncSession, sqlalchemy_asyncio.AsyncSession):
        with pytest.raises(SessionClassError, match=r"pass it as class_= instead"):
            async_sessionmaker(engine, sync_session_class=untyped(wrong))
        with pytest.raises(SessionClassError, match=r"pass it as class_= instead"):
            AsyncSession(engine, sync_session_class=untyped(wrong))
    with pytest.raises(SessionClassError, match="sync_session_class"):
        async_sessionmaker(engine, sync_session_class=untyped(dict))


async def test_awaiting_or_entering_a_finished_transaction_raises(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        transaction = await session.begin()
        with pytest.raises(async_exc.AsyncContextAlreadyStarted, match="already started"):
            await transaction
        await transaction.commit()
        with pytest.raises(TransactionFinishedError, match="has finished") as finished:
            await transaction
        assert isinstance(finished.value, async_exc.AsyncContextAlreadyStarted)
        with pytest.raises(TransactionFinishedError):
            async with transaction:
                pass
        with pytest.raises(sa_exc.ResourceClosedError, match="closed"):
            await transaction.commit()
        savepoint_owner = await session.begin()
        savepoint = await session.begin_nested()
        await savepoint.rollback()
        with pytest.raises(TransactionFinishedError):
            await savepoint
        await savepoint_owner.rollback()


async def test_a_session_after_invalidate(
    engine: AsyncEngine, maker: Maker, sent: StatementCounter
) -> None:
    user_id = await add_user_with_address(maker)
    session = maker()
    transaction = await session.begin()
    user = await session.get_one(User, user_id)
    await session.invalidate()
    assert checked_out(engine) == 0
    # What the invalidated transaction held is gone: clear errors, no IO attempted.
    before = sent.count
    with pytest.raises(sa_exc.ResourceClosedError, match="transaction is closed"):
        await transaction.commit()
    with pytest.raises(TransactionFinishedError):
        await transaction
    with pytest.raises(orm_exc.DetachedInstanceError, match="addresses"):
        _ = user.addresses
    assert sent.count == before
    # The session itself is reset, as close() leaves it, and starts over on a new connection.
    assert await session.get_one(User, user_id) is not user
    await session.close()

    closed_for_good = maker(close_resets_only=False)
    await closed_for_good.get_one(User, user_id)
    await closed_for_good.invalidate()
    before = sent.count
    with pytest.raises(sa_exc.InvalidRequestError, match="permanently closed"):
        await closed_for_good.get(User, user_id)
    assert sent.count == before and checked_out(engine) == 0


# -- no secret in what sa_async shows


@contextlib.contextmanager
def everything_shown() -> Iterator[list[str]]:
    """Collect the warnings and log records (any logger, DEBUG and up) emitted in the block."""
    shown: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            shown.append(self.format(record))

    handler = Collect(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield shown
        shown.extend(str(warning.message) for warning in caught)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def formatted(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


async def test_the_password_of_the_bind_url_never_appears(
    postgres_url: str, engine_factory: EngineFactory
) -> None:
    secret = "Tr0ub4dor-and-3"
    url = make_url(postgres_url).set(password=secret)
    url_text = url.render_as_string(hide_password=False)
    engine = await engine_factory(url_text)
    other_engine = create_async_engine(url_text)
    shown: list[str] = []
    errors: list[BaseException] = []

    @contextlib.asynccontextmanager
    async def expect(error_class: type[BaseException]) -> AsyncIterator[None]:
        with pytest.raises(error_class) as caught:
            yield
        errors.append(caught.value)

    with everything_shown() as logged:
        maker = async_sessionmaker(engine, info={"url": url})
        scoped = async_scoped_session(maker, asyncio.current_task)
        sync_scoped = scoped_session(sessionmaker(engine.sync_engine))
        session = scoped()
        unstarted = session.begin()
        transaction = await session.begin()
        user = User(name="ann", addresses=[Address(email="a@x")])
        session.add(user)
        await session.flush()
        session.expire(user)
        begin_block = maker.begin()
        shown += [repr(thing) for thing in (maker, scoped, sync_scoped, scoped.registry)]
        shown += [repr(thing) for thing in (session, unstarted, transaction, begin_block)]
        shown += [str(session), str(maker), repr(session.bind), repr(session.binds)]
        shown += [repr(transaction.connections), repr(await session.connection())]

        # Every mistake of this module and of test_session.py's bad-input tests, on that URL.
        async with expect(ImplicitIOError):
            _ = user.name
        async with operation_in_progress(session):
            async with expect(ConcurrentSessionUseError):
                await asyncio.create_task(session.flush())
        async with expect(async_exc.AsyncContextAlreadyStarted):
            await transaction
        async with expect(async_exc.AsyncContextNotStarted):
            await unstarted.commit()
        for wrong_bind in (engine.sync_engine, url, url_text):
            async with expect(SyncBindError):
                AsyncSession(untyped(wrong_bind))
            async with expect(SyncBindError):
                AsyncSession(binds={User: untyped(wrong_bind)})
            async with expect(SyncBindError):
                async_sessionmaker(untyped(wrong_bind))
        async with expect(SyncBindError):
            session.bind_mapper(Address, untyped(engine.sync_engine))
        async with expect(SessionClassError):
            async_sessionmaker(engine, class_=untyped(Session))
        async with expect(SessionClassError):
            AsyncSession(engine, sync_session_class=untyped(AsyncSession))
        async with expect(ScopefuncError):
            async_scoped_session(maker, untyped(url))
        async with expect(async_exc.AsyncBindNotFound):
            # A sync bind set behind the AsyncSession's back has no async counterpart.
            routed = AsyncSession(bind=engine)
            routed.sync_session.bind_mapper(User, other_engine.sync_engine)
            routed.get_async_bind(User)
        scoped_session(untyped(maker))  # warns: async_scoped_session is the right tool
        await transaction.commit()
        async with expect(TransactionFinishedError):
            await transaction
        await scoped.remove()
        async with expect(sa_exc.InvalidRequestError):
            closed = maker(close_resets_only=False)
            await closed.invalidate()
            await closed.execute(select(User))

    await other_engine.dispose()
    shown += logged
    for error in errors:
        shown += formatted(error)
    assert {type(error) for error in errors} == {
        ImplicitIOError,
        ConcurrentSessionUseError,
        async_exc.AsyncContextAlreadyStarted,
        async_exc.AsyncContextNotStarted,
        SyncBindError,
        SessionClassError,
        ScopefuncError,
        async_exc.AsyncBindNotFound,
        TransactionFinishedError,
        sa_exc.InvalidRequestError,
    }
    assert len(errors) == 20 and logged
    leaks = [text_shown for text_shown in shown if secret in text_shown]
    assert leaks == []
    # The URL itself is shown where it helps, its password masked.
    assert any("postgres:***@127.0.0.1" in text_shown for text_shown in shown)


async def test_the_guard_keeps_no_reference_to_a_released_session(maker: Maker) -> None:
    # Timers and tasks started during an operation keep copies of its context: the guard's
    # context variable must not hold the session, which goes as soon as the program drops it.
    session = maker()
    await session.scalar(select(func.count(User.id)))
    await session.rollback()
    released = weakref.ref(session)
    del session
    assert released() is None
