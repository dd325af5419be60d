"""Each function of ``sa_async._compat``, the one module touching SQLAlchemy's private names,
proved on a real database: if SQLAlchemy changes a detail we rely on, a test here fails."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import Connection, CursorResult, Result, func, insert, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from sa_async import AsyncConnection, AsyncEngine, AsyncSession, _compat
from sa_async._bridge import run_in_bridge
from tests.conftest import ReadBack, checked_out, untyped
from tests.models import User


async def test_async_connection_for_returns_the_live_proxy_or_one_that_works(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        assert connection.sync_connection is not None
        assert _compat.async_connection_for(connection.sync_connection) is connection

    async with AsyncSession(engine) as session:
        # A sync connection no AsyncConnection was ever made for: the proxy is built, and kept.
        sync_connection: Connection = await session.run_sync(Session.connection)
        proxy = _compat.async_connection_for(sync_connection)
        assert isinstance(proxy, AsyncConnection)
        assert proxy.sync_connection is sync_connection
        assert _compat.async_connection_for(sync_connection) is proxy
        # It runs statements in the session's transaction.
        await proxy.execute(insert(User).values(name="via proxy"))
        assert await session.scalar(select(func.count(User.id))) == 1
        await session.rollback()
        assert await session.scalar(select(func.count(User.id))) == 0


async def test_server_side_cursor_of_finds_only_streamed_cursors(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(User(name="ann"))
        await session.flush()

        def execute(sync_session: Session, stream: bool, core: bool) -> Result[tuple[int]]:
            options = {"stream_results": stream}
            if core:
                return (
                    sync_session.connection().execution_options(**options).execute(select(User.id))
                )
            return sync_session.execute(select(User.id), execution_options=options)

        buffered_orm = await session.run_sync(execute, False, False)
        buffered_core = await session.run_sync(execute, False, True)
        streamed_orm = await session.run_sync(execute, True, False)
        streamed_core = await session.run_sync(execute, True, True)

        assert _compat.server_side_cursor_of(buffered_orm) is None
        assert _compat.server_side_cursor_of(buffered_core) is None
        # An ORM result is answered with the cursor result it reads from.
        found = _compat.server_side_cursor_of(streamed_orm)
        assert isinstance(found, CursorResult) and found is not streamed_orm
        assert _compat.server_side_cursor_of(streamed_core) is streamed_core
        # Results that are not cursor results at all.
        assert _compat.server_side_cursor_of(buffered_orm.freeze()()) is None
        assert _compat.server_side_cursor_of(untyped(buffered_core.scalars())) is None

        await run_in_bridge(streamed_orm.close)
        await run_in_bridge(streamed_core.close)


async def test_install_async_session_provider_chains_ours_before_sqlalchemys_once(
    engine: AsyncEngine,
) -> None:
    ours = AsyncSession(engine)
    theirs = sqlalchemy_asyncio.AsyncSession(engine)
    ann, bob = User(name="ann"), User(name="bob")
    ours.add(ann)
    theirs.add(bob)

    def answers() -> list[object]:
        return [inspect(user).async_session for user in (ann, bob, User(name="transient"))]

    # Installed when sa_async.session was imported.
    assert answers() == [ours, theirs, None]
    # Installing again is a no-op: the chain is not wrapped a second time.
    _compat.install_async_session_provider(lambda sync_session: "a second provider")
    assert answers() == [ours, theirs, None]
    await ours.close()
    await theirs.close()


async def test_support_orm_sessionmaker_begin_makes_sync_sessionmaker_begin_async(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    # SQLAlchemy's stubs type sessionmaker for sync sessions only; at run time it takes ours.
    maker: Any = sessionmaker(untyped(engine), class_=untyped(AsyncSession))
    async with maker.begin() as session:
        assert isinstance(session, AsyncSession)
        session.add(User(name="committed"))
    with pytest.raises(LookupError):
        async with maker.begin() as session:
            session.add(User(name="rolled back"))
            await session.flush()
            raise LookupError
    assert [row.name for row in await read_back("SELECT name FROM users")] == ["committed"]
    assert checked_out(engine) == 0
