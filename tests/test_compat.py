"""Each function of ``sa_async._compat``, the one module touching SQLAlchemy's private names,
proved on a real database: if SQLAlchemy changes a detail we rely on, a test here fails."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import Connection, CursorResult, Result, event, func, insert, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm import loading as orm_loading
from sqlalchemy.orm import strategies as orm_strategies

from sa_async import AsyncConnection, AsyncEngine, AsyncSession, _compat
from sa_async._bridge import run_in_bridge
from tests.conftest import untyped
from tests.models import Address, User


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

    # Installed when sa_async was imported.
    assert answers() == [ours, theirs, None]
    # Installing again is a no-op: the chain is not wrapped a second time.
    _compat.install_async_session_provider(lambda sync_session: "a second provider")
    assert answers() == [ours, theirs, None]
    await ours.close()
    await theirs.close()


async def test_find_async_sessions_from_sqlalchemy_chains_in_front_of_its_registry(
    engine: AsyncEngine,
) -> None:
    ours = AsyncSession(engine)
    theirs = sqlalchemy_asyncio.AsyncSession(engine)
    lookup = sqlalchemy_asyncio.AsyncSession._retrieve_proxy_for_target
    # Installed when sa_async was imported: ours are found, SQLAlchemy's still are.
    assert lookup(ours.sync_session, regenerate=False) is ours
    assert lookup(theirs.sync_session, regenerate=False) is theirs
    assert lookup(Session(), regenerate=False) is None
    # Installing again is a no-op: the lookup is not wrapped a second time.
    _compat.find_async_sessions_from_sqlalchemy(lambda sync_session: "a second finder")
    assert (
        sqlalchemy_asyncio.AsyncSession._retrieve_proxy_for_target(
            theirs.sync_session, regenerate=False
        )
        is theirs
    )
    await ours.close()
    await theirs.close()


class RefusedLoad(Exception):
    """Raised by the recording check below, to show that nothing ran after it."""


async def test_install_attribute_load_check_runs_before_each_loads_query(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed once, at import; a second installation keeps the first.
    installed = (orm_strategies._LazyLoader._emit_lazyload, orm_loading._load_on_ident)
    _compat.install_attribute_load_check(lambda *args: None)
    assert (orm_strategies._LazyLoader._emit_lazyload, orm_loading._load_on_ident) == installed
    # Install a recording check on SQLAlchemy's own functions instead, for this test only.
    originals = [cast(Any, function).__wrapped__ for function in installed]
    monkeypatch.setattr(orm_strategies._LazyLoader, "_emit_lazyload", originals[0])
    monkeypatch.setattr(orm_loading, "_load_on_ident", originals[1])
    seen: list[tuple[object, str, tuple[str, ...], str | None, str | None]] = []
    refuse = False

    def record(
        session: Session, state: Any, names: Collection[str], relationship: str | None
    ) -> None:
        accessed = _compat.attribute_being_loaded()
        seen.append((session, state.class_.__name__, tuple(sorted(names)), relationship, accessed))
        if refuse:
            raise RefusedLoad

    _compat.install_attribute_load_check(record)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    async with AsyncSession(engine) as session:
        session.add(User(name="ann", bio="bio", addresses=[Address(email="a@x")]))
        await session.commit()

        def touch(sync_session: Session) -> list[object]:
            user = sync_session.scalars(select(User)).one()
            sync_session.expire(user, ["name"])
            return [user.name, user.bio, len(user.addresses)]

        assert await session.run_sync(touch) == ["ann", "bio", 1]
        sync_session = session.sync_session
        assert [entry[1:] for entry in seen] == [
            ("User", ("name",), None, "name"),  # expired
            ("User", ("bio",), None, "bio"),  # deferred
            ("User", ("addresses",), "addresses", "addresses"),  # lazy relationship
        ]
        assert all(entry[0] is sync_session for entry in seen)

        # An exception from the check stops the load before its query (and its autoflush).
        user = await session.scalar(select(User))
        assert user is not None
        session.expire(user)
        session.add(User(name="pending"))
        refuse, sent_before = True, len(statements)
        for attribute in ("name", "addresses"):
            with pytest.raises(RefusedLoad):
                await session.run_sync(lambda sync_session: getattr(user, attribute))  # noqa: B023
        assert len(statements) == sent_before and len(session.new) == 1


def test_attribute_being_loaded_is_none_outside_an_attribute_access() -> None:
    assert _compat.attribute_being_loaded() is None


def test_looks_up_identities_like_session_spots_overridden_lookups() -> None:
    from sqlalchemy.ext.horizontal_shard import ShardedSession

    class PlainSubclass(Session):
        pass

    class OwnGet(Session):
        def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
            return super().get(entity, ident, **kw)

    assert _compat.looks_up_identities_like_session(Session)
    assert _compat.looks_up_identities_like_session(PlainSubclass)
    assert not _compat.looks_up_identities_like_session(OwnGet)
    # Sharded sessions look identities up per shard through the private hook.
    assert not _compat.looks_up_identities_like_session(ShardedSession)


async def test_closes_without_io_only_for_an_empty_session_without_transaction(
    engine: AsyncEngine,
) -> None:
    class OwnClose(Session):
        def close(self) -> None:
            super().close()

    sync_engine = engine.sync_engine
    assert _compat.closes_without_io(Session(sync_engine))
    assert not _compat.closes_without_io(OwnClose(sync_engine))
    async with AsyncSession(engine) as session:
        sync_session = session.sync_session
        assert _compat.closes_without_io(sync_session)
        session.add(User(name="pending"))
        # Closing would detach the pending object (an event), and end the transaction that
        # add() began (another).
        assert not _compat.closes_without_io(sync_session)
        session.expunge_all()
        assert not _compat.closes_without_io(sync_session)
        await session.scalar(select(func.count(User.id)))
        # A transaction, and its connection, to end.
        assert not _compat.closes_without_io(sync_session)
        await session.commit()
        assert _compat.closes_without_io(sync_session)
        user = User(name="stored")
        session.add(user)
        await session.commit()
        # A persistent object in the identity map to detach.
        assert not _compat.closes_without_io(sync_session)
        assert user in session


def test_the_sqlalchemy_classes_sa_asyncs_private_ones_subclass_are_sqlalchemys() -> None:
    # What async_sessionmaker.begin() returns, and the awaitable_attrs loader.
    assert _compat.SessionContextManager.__module__ == "sqlalchemy.ext.asyncio.session"
    assert _compat.SessionContextManager.__name__ == "_AsyncSessionContextManager"
    assert _compat.AwaitableAttrsLoader is sqlalchemy_asyncio.AsyncAttrs._AsyncAttrGetitem
    engine_less = sqlalchemy_asyncio.async_sessionmaker(class_=AsyncSession)
    assert isinstance(engine_less.begin(), _compat.SessionContextManager)
    assert isinstance(User().awaitable_attrs, _compat.AwaitableAttrsLoader)
