"""AsyncSessionTransaction (``sa_async/transaction.py``) against each database.

``await session.begin()`` and ``async with session.begin():``, SAVEPOINTs from
``begin_nested()``, a transaction's connections, the errors of a transaction not started or
started twice, and the rollback and close when the task in a ``session.begin()`` or
``maker.begin()`` block is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import SessionTransaction

from sa_async import AsyncEngine, AsyncSession, AsyncSessionTransaction
from tests.conftest import Maker, ReadBack, checked_out, stored_names, wait_forever_in_the_bridge
from tests.models import User

# -- transactions: begin, begin_nested, AsyncSessionTransaction


async def test_awaited_begin_starts_a_transaction_committed_explicitly(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        transaction = await session.begin()
        assert isinstance(transaction, AsyncSessionTransaction)
        assert transaction.session is session
        assert transaction.is_active and not transaction.nested
        assert session.get_transaction() is transaction
        assert isinstance(transaction.sync_transaction, SessionTransaction)
        session.add(User(name="ann"))
        await transaction.commit()
        assert not transaction.is_active
        assert not session.in_transaction()
    assert await stored_names(read_back) == ["ann"]


async def test_begin_context_commits_on_success_and_rolls_back_on_error(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        async with session.begin() as transaction:
            assert transaction.is_active
            session.add(User(name="kept"))
        assert not session.in_transaction()
        with pytest.raises(LookupError):
            async with session.begin():
                session.add(User(name="lost"))
                await session.flush()
                raise LookupError
        assert not session.in_transaction()
    assert await stored_names(read_back) == ["kept"]
    assert checked_out(engine) == 0


async def test_transaction_rollback_discards_its_work(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        transaction = await session.begin()
        session.add(User(name="lost"))
        await session.flush()
        await transaction.rollback()
        assert not transaction.is_active
    assert await stored_names(read_back) == []


async def test_nested_savepoint_rollback_keeps_the_outer_work(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        async with session.begin():
            session.add(User(name="outer"))
            savepoint = await session.begin_nested()
            session.add(User(name="inner, rolled back"))
            await session.flush()
            await savepoint.rollback()
            with pytest.raises(KeyError):
                async with session.begin_nested():
                    session.add(User(name="inner, raised"))
                    await session.flush()
                    raise KeyError
            async with session.begin_nested():
                session.add(User(name="inner, released"))
            assert session.in_transaction() and not session.in_nested_transaction()
    assert await stored_names(read_back) == ["outer", "inner, released"]


async def test_savepoint_recovers_from_an_integrity_error(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        session.add(User(id=1, name="first"))
        await session.flush()
        with pytest.raises(sa_exc.IntegrityError):
            async with session.begin_nested():
                session.add(User(id=1, name="duplicate"))
        session.add(User(id=2, name="second"))
        await session.commit()
    assert await stored_names(read_back) == ["first", "second"]


async def test_transaction_connections_and_bound_connection(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        transaction = await session.begin()
        assert transaction.connections == frozenset()
        connection = await session.connection()
        assert transaction.connections == frozenset({connection})
        assert transaction.bound_connection() is connection
        assert transaction.bound_connection(User) is connection
        assert transaction.bound_connection(bind=engine) is connection
        await transaction.rollback()
        fresh = await session.begin()
        with pytest.raises(sa_exc.InvalidRequestError, match="not acquired a connection"):
            fresh.bound_connection()
        await fresh.rollback()


async def test_transaction_not_started_raises_context_not_started(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        transaction = session.begin()
        assert not session.in_transaction()
        for use in (
            lambda: transaction.is_active,
            lambda: transaction.connections,
            lambda: transaction.bound_connection(),
        ):
            with pytest.raises(async_exc.AsyncContextNotStarted):
                use()
        with pytest.raises(async_exc.AsyncContextNotStarted):
            await transaction.commit()
        with pytest.raises(async_exc.AsyncContextNotStarted):
            await transaction.rollback()
        assert issubclass(async_exc.AsyncContextNotStarted, sa_exc.InvalidRequestError)


async def test_starting_a_transaction_twice_raises(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        transaction = await session.begin()
        with pytest.raises(sa_exc.InvalidRequestError):
            await transaction
        # A second transaction while one is in progress, as with a sync Session.
        with pytest.raises(sa_exc.InvalidRequestError, match="already"):
            await session.begin()
        await transaction.commit()
        with pytest.raises(sa_exc.InvalidRequestError):
            async with transaction:
                pass
        await session.execute(select(User))  # autobegin
        with pytest.raises(sa_exc.InvalidRequestError, match="already"):
            async with session.begin():
                pass


# -- the begin blocks under cancellation


@contextlib.asynccontextmanager
async def session_with_begin(engine: AsyncEngine) -> typing.AsyncIterator[AsyncSession]:
    async with AsyncSession(engine) as session, session.begin():
        yield session


# The two ways of opening a session with a transaction in one `async with`.
BEGIN_CONTEXTS: dict[str, typing.Callable[[AsyncEngine, Maker], typing.Any]] = {
    "session.begin()": lambda engine, maker: session_with_begin(engine),
    "maker.begin()": lambda engine, maker: maker.begin(),
}


@pytest.mark.parametrize("begin_context", BEGIN_CONTEXTS)
async def test_begin_context_rolls_back_and_closes_when_the_task_is_cancelled(
    engine: AsyncEngine, maker: Maker, read_back: ReadBack, begin_context: str
) -> None:
    started = asyncio.Event()

    async def body() -> None:
        async with BEGIN_CONTEXTS[begin_context](engine, maker) as session:
            session.add(User(name="lost"))
            await session.flush()
            await wait_forever_in_the_bridge(session, started)

    task = asyncio.ensure_future(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0
    assert await stored_names(read_back) == []
