"""Misuse caught early: bad input, and no secret in what sa_async shows. Each mistake raises an
exception naming it before anything reaches the database. One session used by two tasks and
attribute IO outside the bridge are the guard's (test_guard.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm import exc as orm_exc

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
from tests.conftest import (
    EngineFactory,
    Maker,
    StatementCounter,
    add_user_with_address,
    checked_out,
    operation_in_progress,
    untyped,
)
from tests.models import Address, User

# -- bad input (sync binds: test_binds.py; session classes: test_session.py, test_maker.py)


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

        # Every mistake of this module and test_guard.py, and of the bad-input tests of
        # test_binds.py, test_session.py and test_maker.py, on that URL.
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
