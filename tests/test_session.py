"""AsyncSession and the module functions, run against each database; what was stored is read
back on a connection of the test's own. ``close()`` of a session without a transaction runs the
sync close on the spot. Its transactions are in test_transaction.py, the sessionmaker in
test_maker.py, AsyncAttrs in test_attrs.py, the binds in test_binds.py."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import typing
import warnings
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import (
    CursorResult,
    Result,
    ScalarResult,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload
from sqlalchemy.util import await_, immutabledict

import sa_async
from sa_async import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
    AsyncSession,
    AsyncSessionTransaction,
    async_object_session,
    async_session,
    async_sessionmaker,
    close_all_sessions,
)
from sa_async._bridge import in_bridge
from sa_async.exc import ConcurrentSessionUseError, SessionClassError
from tests.conftest import (
    Maker,
    ReadBack,
    add_users,
    checked_out,
    raises_implicit_io,
    recorded_bridge_calls,
    recreate_tables,
    stored_names,
    stored_user,
    untyped,
    wait_forever_in_the_bridge,
)
from tests.models import Address, RoutingSession, TaggedAsyncSession, User


class SlowCloseSession(Session):
    """A Session whose close() awaits IO first, so a test can cancel the task meanwhile."""

    def close(self) -> None:
        self.info["close_started"].set()
        await_(asyncio.sleep(0.05))
        super().close()


# -- the package's names


def test_reexports_are_sqlalchemys_own_objects() -> None:
    for name in (
        "create_async_engine",
        "async_engine_from_config",
        "AsyncEngine",
        "AsyncConnection",
        "AsyncTransaction",
        "AsyncResult",
        "AsyncScalarResult",
        "AsyncMappingResult",
        "AsyncTupleResult",
    ):
        assert getattr(sa_async, name) is getattr(sqlalchemy_asyncio, name), name
    assert sa_async.Session is sqlalchemy_orm.Session
    assert sa_async.sessionmaker is sqlalchemy_orm.sessionmaker


def test_all_lists_the_public_runtime_api() -> None:
    assert set(sa_async.__all__) >= {
        "AsyncSession",
        "AsyncSessionTransaction",
        "async_sessionmaker",
        "AsyncAttrs",
        "async_object_session",
        "async_session",
        "close_all_sessions",
        "create_async_engine",
        "async_engine_from_config",
        "AsyncEngine",
        "AsyncConnection",
        "AsyncTransaction",
        "AsyncResult",
        "AsyncScalarResult",
        "AsyncMappingResult",
        "AsyncTupleResult",
        "sessionmaker",
        "Session",
    }
    for name in sa_async.__all__:
        assert hasattr(sa_async, name), name


def test_classes_are_subscriptable_at_run_time() -> None:
    routed = AsyncSession[RoutingSession]
    assert typing.get_origin(routed) is AsyncSession
    assert typing.get_args(routed) == (RoutingSession,)
    assert typing.get_origin(async_sessionmaker[AsyncSession[Session]]) is async_sessionmaker

    def handler(session: AsyncSession[RoutingSession], maker: async_sessionmaker[Any]) -> None:
        del session, maker

    # What FastAPI or pydantic do with a string annotation.
    hints = typing.get_type_hints(handler)
    assert hints["session"] == AsyncSession[RoutingSession]
    assert typing.get_origin(hints["maker"]) is async_sessionmaker


async def test_subscripted_class_still_builds_sessions(engine: AsyncEngine) -> None:
    session = AsyncSession[Session](engine)
    async with session:
        assert type(session) is AsyncSession
        assert await session.scalar(select(func.count(User.id))) == 0


# -- construction and bad input


async def test_session_proxies_a_sync_session_bound_to_the_sync_engine(
    engine: AsyncEngine,
) -> None:
    session = AsyncSession(engine)
    assert type(session.sync_session) is Session
    assert session.sync_session_class is Session
    assert session.sync_session.bind is engine.sync_engine
    assert session.bind is engine
    assert session.get_bind() is engine.sync_engine
    assert session.get_async_bind() is engine
    await session.close()


async def test_keyword_arguments_reach_the_sync_session(engine: AsyncEngine) -> None:
    session = AsyncSession(engine, autoflush=False, expire_on_commit=False, info={"k": 1})
    assert session.sync_session.autoflush is False
    assert session.sync_session.expire_on_commit is False
    assert session.info == {"k": 1}
    async with AsyncSession(engine, autobegin=False) as no_autobegin:
        with pytest.raises(sa_exc.InvalidRequestError, match=r"[Aa]utobegin is disabled"):
            await no_autobegin.execute(select(User))


async def test_bind_to_an_async_connection_joins_its_transaction(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(connection, join_transaction_mode="create_savepoint")
        assert session.bind is connection
        session.add(User(name="inside the outer transaction"))
        await session.commit()
        await session.close()
        assert (await connection.scalars(select(User.name))).all() == [
            "inside the outer transaction"
        ]
        await outer.rollback()
    assert await stored_names(read_back) == []


def test_sync_session_class_that_is_not_a_session_raises_session_class_error() -> None:
    for wrong in (AsyncSession, dict, sqlalchemy_asyncio.AsyncSession):
        with pytest.raises(SessionClassError, match="sync_session_class"):
            AsyncSession(sync_session_class=untyped(wrong))
    with pytest.raises(SessionClassError):
        AsyncSession(sync_session_class=untyped(lambda **kw: object()))

    class BadDefault(AsyncSession):
        sync_session_class = untyped(int)

    with pytest.raises(SessionClassError):
        BadDefault()


async def test_sync_session_class_may_be_a_factory_function(engine: AsyncEngine) -> None:
    built: list[Session] = []

    def factory(**kw: Any) -> Session:
        built.append(Session(**kw))
        return built[-1]

    async with AsyncSession(engine, sync_session_class=untyped(factory)) as session:
        assert session.sync_session is built[0]
        assert await session.scalar(text("SELECT 7")) == 7


async def test_custom_sync_session_class_is_used(engine: AsyncEngine) -> None:
    class CountingSession(Session):
        flushes = 0

        def flush(self, objects: Any = None) -> None:
            CountingSession.flushes += 1
            super().flush(objects)

    async with AsyncSession(engine, sync_session_class=CountingSession) as session:
        assert type(session.sync_session) is CountingSession
        assert session.sync_session_class is CountingSession
        session.add(User(name="x"))
        await session.flush()
    assert CountingSession.flushes == 1

    class CountingAsyncSession(AsyncSession):
        sync_session_class = CountingSession

    async with CountingAsyncSession(engine) as subclassed:
        assert type(subclassed.sync_session) is CountingSession


async def test_repr_names_the_classes(engine: AsyncEngine) -> None:
    session = AsyncSession(engine, sync_session_class=RoutingSession)
    assert repr(session).startswith("<AsyncSession")
    assert "RoutingSession" in repr(session)
    transaction = session.begin()
    assert "AsyncSessionTransaction" in repr(transaction)
    await session.close()


# -- autobegin, statements and results


async def test_autobegin_starts_a_transaction_on_first_use(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        assert not session.in_transaction()
        assert session.get_transaction() is None
        assert checked_out(engine) == 0
        await session.execute(select(User))
        assert session.in_transaction()
        transaction = session.get_transaction()
        assert isinstance(transaction, AsyncSessionTransaction)
        assert transaction.is_active and not transaction.nested
        assert transaction.sync_transaction is session.sync_session.get_transaction()
        assert session.get_transaction() is transaction
        assert checked_out(engine) == 1
        await session.commit()
        assert not session.in_transaction()
        assert checked_out(engine) == 0


async def test_execute_returns_a_buffered_result_usable_after_close(
    engine: AsyncEngine, maker: Maker
) -> None:
    await add_users(maker, "ann", "bob")
    session = maker()
    result = await session.execute(select(User.id, User.name).order_by(User.id))
    assert isinstance(result, Result)
    await session.close()
    assert checked_out(engine) == 0
    assert [name for _, name in result.all()] == ["ann", "bob"]


async def test_execute_with_parameters_and_orm_results(maker: Maker) -> None:
    await add_users(maker, "ann", "bob", "cy")
    async with maker() as session:
        rows = await session.execute(
            text("SELECT name FROM users WHERE name <> :skip ORDER BY id"), {"skip": "bob"}
        )
        assert rows.scalars().all() == ["ann", "cy"]
        users = (await session.execute(select(User).order_by(User.id))).scalars().all()
        assert [user.name for user in users] == ["ann", "bob", "cy"]
        assert all(user in session for user in users)


async def test_execute_dml_returns_a_cursor_result_with_rowcount(
    maker: Maker, read_back: ReadBack
) -> None:
    await add_users(maker, "ann", "bob", "cy")
    async with maker.begin() as session:
        result = await session.execute(
            update(User).where(User.name != "bob").values(name=User.name + "!")
        )
        assert isinstance(result, CursorResult)
        assert result.rowcount == 2
        deleted = await session.execute(delete(User).where(User.name == "bob"))
        assert isinstance(deleted, CursorResult) and deleted.rowcount == 1
    assert await stored_names(read_back) == ["ann!", "cy!"]


async def test_execute_orm_bulk_insert_with_a_list_of_parameters(
    maker: Maker, read_back: ReadBack
) -> None:
    async with maker.begin() as session:
        await session.execute(insert(User), [{"name": "ann"}, {"name": "bob"}])
        returned = await session.scalars(
            insert(User).returning(User), [{"name": "cy"}, {"name": "dee"}]
        )
        assert sorted(user.name for user in returned.all()) == ["cy", "dee"]
    assert await stored_names(read_back) == ["ann", "bob", "cy", "dee"]


async def test_scalar_and_scalars(maker: Maker) -> None:
    ids = await add_users(maker, "ann", "bob")
    async with maker() as session:
        assert await session.scalar(select(func.count(User.id))) == 2
        assert await session.scalar(select(User.name).where(User.id == ids[1])) == "bob"
        assert await session.scalar(select(User.name).where(User.id == -1)) is None
        names = await session.scalars(select(User.name).order_by(User.id))
        assert isinstance(names, ScalarResult)
        assert names.all() == ["ann", "bob"]
        users = await session.scalars(
            select(User).order_by(User.id), execution_options={"populate_existing": True}
        )
        assert [user.id for user in users] == ids


@pytest.mark.parametrize("how", ["execute() argument", "statement option", "scalars() argument"])
async def test_execute_with_stream_results_raises_async_method_required_and_cleans_up(
    engine: AsyncEngine, maker: Maker, how: str
) -> None:
    await add_users(maker, "ann")
    async with maker() as session:
        with pytest.raises(async_exc.AsyncMethodRequired, match="stream"):
            if how == "execute() argument":
                await session.execute(select(User), execution_options={"stream_results": True})
            elif how == "statement option":
                await session.execute(select(User.name).execution_options(stream_results=True))
            else:
                await session.scalars(select(User), execution_options={"stream_results": True})
        # The session and its connection stay usable.
        assert await session.scalar(select(User.name)) == "ann"
    assert checked_out(engine) == 0


async def test_stream_iterates_a_server_side_result(engine: AsyncEngine, maker: Maker) -> None:
    await add_users(maker, *(f"user{n:02}" for n in range(25)))
    async with maker() as session:
        result = await session.stream(select(User.id, User.name).order_by(User.id))
        assert isinstance(result, AsyncResult)
        first = await result.fetchone()
        assert first is not None and first.name == "user00"
        rest = [row.name async for row in result]
        assert rest == [f"user{n:02}" for n in range(1, 25)]

        scalars = await session.stream_scalars(
            select(User).order_by(User.id).execution_options(yield_per=10)
        )
        assert isinstance(scalars, AsyncScalarResult)
        sizes = [len(partition) async for partition in scalars.partitions()]
        assert sizes == [10, 10, 5]
    assert checked_out(engine) == 0


async def test_stream_fifty_thousand_rows_in_partitions_on_postgresql(
    postgresql_engine: AsyncEngine,
) -> None:
    engine = postgresql_engine
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO users (name) SELECT 'u' || n FROM generate_series(1, 50000) n")
        )
    open_portals = text("SELECT count(*) FROM pg_cursors")
    async with AsyncSession(engine) as session:
        before = await session.scalar(open_portals)
        result = await session.stream(
            select(User.id).order_by(User.id).execution_options(yield_per=2000)
        )
        # The rows stay on the server, behind a portal, until fetched.
        assert await session.scalar(open_portals) == before + 1
        count = 0
        partitions = 0
        previous = 0
        async for partition in result.partitions():
            partitions += 1
            assert len(partition) <= 2000
            assert partition[0].id > previous
            previous = partition[-1].id
            count += len(partition)
        assert (count, partitions) == (50000, 25)


async def test_get_and_get_one(maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker() as session:
        ann = await session.get(User, ann_id)
        assert ann is not None and ann.name == "ann"
        assert await session.get(User, ann_id) is ann
        assert await session.get(User, -1) is None
        assert await session.get_one(User, ann_id) is ann
        with pytest.raises(sa_exc.NoResultFound):
            await session.get_one(User, -1)


async def test_get_with_options_and_populate_existing(engine: AsyncEngine, maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker.begin() as session:
        session.add(Address(email="ann@example.com", user_id=ann_id))
    async with maker() as session:
        ann = await session.get(User, ann_id, options=[selectinload(User.addresses)])
        assert ann is not None
        # Eagerly loaded: plain attribute access needs no IO.
        assert [address.email for address in ann.addresses] == ["ann@example.com"]
        await session.commit()
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="renamed"))
        refreshed = await session.get(User, ann_id, populate_existing=True)
        assert refreshed is ann and ann.name == "renamed"
        locked = await session.get(User, ann_id, with_for_update=True)
        assert locked is ann


async def test_refresh_reloads_attributes_and_relationships(
    engine: AsyncEngine, maker: Maker
) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker(expire_on_commit=False) as session:
        ann = await session.get_one(User, ann_id)
        # End the session's transaction: sqlite would block the other connection's write.
        await session.commit()
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="renamed", bio="hello"))
            await connection.execute(insert(Address).values(email="a@b.c", user_id=ann_id))
        await session.refresh(ann, ["name"])
        assert ann.name == "renamed"
        await session.refresh(ann, ["addresses"])
        assert [address.email for address in ann.addresses] == ["a@b.c"]
        assert "bio" not in inspect(ann).dict
        await session.refresh(ann, ["bio"])
        assert ann.bio == "hello"


async def test_delete_cascades_through_an_unloaded_collection(
    maker: Maker, read_back: ReadBack
) -> None:
    (ann_id, bob_id) = await add_users(maker, "ann", "bob")
    async with maker.begin() as session:
        session.add_all([Address(email="1", user_id=ann_id), Address(email="2", user_id=ann_id)])
    async with maker.begin() as session:
        ann = await session.get_one(User, ann_id)
        # Deleting loads the addresses collection (IO) to cascade the delete.
        await session.delete(ann)
        assert ann in session.deleted
    assert await stored_names(read_back) == ["bob"]
    assert await read_back("SELECT id FROM addresses") == []
    async with maker.begin() as session:
        await session.delete_all([await session.get_one(User, bob_id)])
    assert await stored_names(read_back) == []


async def test_merge_and_merge_all(maker: Maker, read_back: ReadBack) -> None:
    (ann_id, bob_id) = await add_users(maker, "ann", "bob")
    async with maker.begin() as session:
        merged = await session.merge(User(id=ann_id, name="ann merged"))
        assert merged.name == "ann merged" and merged in session
        many = await session.merge_all([User(id=bob_id, name="bob merged"), User(name="new")])
        assert [user.name for user in many] == ["bob merged", "new"]
        assert all(user in session for user in many)
    assert await stored_names(read_back) == ["ann merged", "bob merged", "new"]
    async with maker() as session:
        existing = await session.get_one(User, ann_id)
        detached = User(id=ann_id, name="ann merged")
        make_transient_to_detached(detached)
        assert await session.merge(detached, load=False) is existing


async def test_flush_writes_pending_objects_in_the_transaction(
    maker: Maker, read_back: ReadBack
) -> None:
    async with maker() as session:
        ann, bob = User(name="ann"), User(name="bob")
        session.add_all([ann, bob])
        # The objects argument is deprecated in SQLAlchemy 2.1, and still honoured.
        with pytest.warns(sa_exc.SADeprecationWarning, match="objects"):
            await session.flush([ann])
        assert ann.id is not None
        assert bob in session.new and ann not in session.new
        await session.flush()
        assert bob.id is not None
        assert await stored_names(read_back) == []
        await session.commit()
    assert await stored_names(read_back) == ["ann", "bob"]


async def test_connection_returns_the_transactions_async_connection(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    async with AsyncSession(engine) as session:
        connection = await session.connection()
        assert isinstance(connection, AsyncConnection)
        assert connection is await session.connection()
        assert connection.sync_connection is session.sync_session.connection()
        transaction = session.get_transaction()
        assert transaction is not None
        assert transaction.connections == frozenset({connection})
        await connection.execute(insert(User).values(name="via connection"))
        assert await session.scalar(select(User.name)) == "via connection"
        await session.rollback()
    assert await stored_names(read_back) == []


async def test_connection_passes_bind_arguments_and_execution_options(
    engine: AsyncEngine,
) -> None:
    async with AsyncSession(binds={User: engine}) as session:
        connection = await session.connection(
            bind_arguments={"mapper": User},
            execution_options={"isolation_level": "SERIALIZABLE"},
        )
        assert connection.engine is engine
        assert (await connection.get_isolation_level()).upper() == "SERIALIZABLE"


async def test_commit_and_rollback_outcomes_in_the_database(
    maker: Maker, read_back: ReadBack
) -> None:
    async with maker() as session:
        session.add(User(name="committed"))
        await session.commit()
        session.add(User(name="rolled back"))
        await session.flush()
        await session.rollback()
        committed = await session.scalar(select(User))
        assert committed is not None
        committed.name = "changed then rolled back"
        await session.flush()
        await session.rollback()
        assert await committed.awaitable_attrs.name == "committed"
    assert await stored_names(read_back) == ["committed"]


async def test_close_detaches_objects_and_returns_the_connection(
    engine: AsyncEngine, maker: Maker
) -> None:
    await add_users(maker, "ann")
    session = maker()
    ann = await session.scalar(select(User))
    assert checked_out(engine) == 1
    await session.close()
    assert checked_out(engine) == 0
    assert ann is not None and inspect(ann).detached
    assert ann not in session
    # The session is usable again.
    assert await session.scalar(select(User.name)) == "ann"
    await session.aclose()
    assert checked_out(engine) == 0


async def test_aclose_works_with_contextlib_aclosing(engine: AsyncEngine) -> None:
    async with contextlib.aclosing(AsyncSession(engine)) as session:
        await session.execute(select(User))
        assert checked_out(engine) == 1
    assert checked_out(engine) == 0


async def test_reset_keeps_usable_a_session_that_close_would_end(engine: AsyncEngine) -> None:
    session = AsyncSession(engine, close_resets_only=False)
    await session.execute(select(User))
    await session.reset()
    assert checked_out(engine) == 0
    assert await session.scalar(text("SELECT 1")) == 1
    await session.close()
    with pytest.raises(sa_exc.InvalidRequestError):
        await session.execute(select(User))


async def test_invalidate_invalidates_the_connection(engine: AsyncEngine) -> None:
    invalidated: list[object] = []
    event.listen(engine.sync_engine, "invalidate", lambda *args: invalidated.append(args[0]))
    session = AsyncSession(engine)
    connection = await session.connection()
    dbapi_connection = (await connection.get_raw_connection()).dbapi_connection
    await session.invalidate()
    assert invalidated == [dbapi_connection]
    assert checked_out(engine) == 0
    assert await session.scalar(text("SELECT 2")) == 2
    await session.close()


async def test_run_sync_runs_sync_orm_code_with_lazy_loads(maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")

    def add_address(session: Session, user_id: int, *, email: str) -> list[str]:
        user = session.get_one(User, user_id)
        user.addresses.append(Address(email=email))  # lazy load, inside the bridge
        session.flush()
        return [address.email for address in user.addresses]

    async with maker() as session:
        assert await session.run_sync(add_address, ann_id, email="x@y.z") == ["x@y.z"]
        with pytest.raises(ZeroDivisionError):
            await session.run_sync(lambda sync_session: 1 / 0)


# -- sync methods and properties


async def test_add_expunge_and_membership(maker: Maker) -> None:
    async with maker() as session:
        ann, bob = User(name="ann"), User(name="bob")
        session.add(ann)
        session.add_all([bob])
        assert ann in session and bob in session
        assert set(session.new) == {ann, bob}
        assert set(session) == {ann, bob}
        session.expunge(bob)
        assert bob not in session and list(session) == [ann]
        await session.flush()
        session.expunge_all()
        assert list(session) == [] and ann not in session


async def test_dirty_deleted_and_is_modified(maker: Maker) -> None:
    await add_users(maker, "ann", "bob")
    async with maker() as session:
        ann, bob = (await session.scalars(select(User).order_by(User.id))).all()
        assert not session.is_modified(ann)
        ann.name = "ann2"
        assert session.is_modified(ann)
        assert set(session.dirty) == {ann}
        await session.delete(bob)
        assert set(session.deleted) == {bob}
        assert session.is_active


async def test_is_active_is_false_after_a_failed_flush_until_rollback(maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker() as session:
        assert session.is_active
        session.add(User(id=ann_id, name="duplicate key"))
        with pytest.raises(sa_exc.IntegrityError):
            await session.flush()
        assert not session.is_active
        with pytest.raises(sa_exc.PendingRollbackError):
            await session.execute(select(User))
        await session.rollback()
        assert session.is_active
        assert await session.scalar(select(User.name)) == "ann"


async def test_expire_makes_attribute_access_need_io(maker: Maker) -> None:
    await add_users(maker, "ann")
    async with maker() as session:
        ann = await session.scalar(select(User))
        assert ann is not None
        session.expire(ann, ["name"])
        with raises_implicit_io("User.name"):
            _ = ann.name
        assert await ann.awaitable_attrs.name == "ann"
        session.expire_all()
        assert "name" not in inspect(ann).dict
        await session.refresh(ann)
        assert ann.name == "ann"


async def test_expire_on_commit_reloads_via_awaitable_attrs_or_refresh(
    engine: AsyncEngine, maker: Maker
) -> None:
    async with maker() as session:
        ann = User(name="ann")
        session.add(ann)
        await session.commit()
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="renamed"))
        with raises_implicit_io("User.name"):
            _ = ann.name
        assert await ann.awaitable_attrs.name == "renamed"
        await session.commit()
        await session.refresh(ann)
        assert ann.name == "renamed"
    async with maker(expire_on_commit=False) as session:
        bob = User(name="bob")
        session.add(bob)
        await session.commit()
        assert bob.name == "bob"


async def test_identity_map_property_and_setter(maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker() as session:
        ann = await session.get_one(User, ann_id)
        assert session.identity_map is session.sync_session.identity_map
        assert list(session.identity_map.values()) == [ann]
        fresh = type(session.identity_map)()
        session.identity_map = fresh
        assert session.identity_map is fresh
        assert ann not in session
        assert await session.get(User, ann_id) is not ann


async def test_autoflush_property_setter_and_no_autoflush(maker: Maker) -> None:
    async with maker() as session:
        assert session.autoflush is True
        count = select(func.count(User.id))
        session.add(User(name="pending"))
        with session.no_autoflush:
            assert await session.scalar(count) == 0
        session.autoflush = False
        assert session.sync_session.autoflush is False
        assert await session.scalar(count) == 0
        session.autoflush = True
        assert await session.scalar(count) == 1


async def test_info_is_the_sync_sessions_dictionary(engine: AsyncEngine) -> None:
    session = AsyncSession(engine, info={"tenant": "a"})
    assert session.info is session.sync_session.info
    session.info["request"] = 1
    assert session.sync_session.info == {"tenant": "a", "request": 1}


async def test_execution_options_property_and_setter(engine: AsyncEngine, maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker(expire_on_commit=False) as session:
        assert session.execution_options == {}
        ann = await session.get_one(User, ann_id)
        await session.commit()
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="renamed"))
        await session.scalars(select(User))
        assert ann.name == "ann"  # the identity map wins over the new row
        await session.commit()
        session.execution_options = immutabledict({"populate_existing": True})
        assert session.sync_session.execution_options == {"populate_existing": True}
        await session.scalars(select(User))
        assert ann.name == "renamed"


async def test_in_transaction_and_nested_and_their_getters(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        assert not session.in_nested_transaction()
        assert session.get_nested_transaction() is None
        savepoint = await session.begin_nested()
        assert session.in_transaction() and session.in_nested_transaction()
        assert session.get_nested_transaction() is savepoint
        outer = session.get_transaction()
        assert outer is not None and outer is not savepoint and not outer.nested
        assert savepoint.nested
        await savepoint.commit()
        assert not session.in_nested_transaction()


async def test_object_session_and_identity_key_classmethods(maker: Maker) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker() as session:
        ann = await session.get_one(User, ann_id)
        assert AsyncSession.object_session(ann) is session.sync_session
        assert AsyncSession.object_session(User(name="transient")) is None
        assert AsyncSession.identity_key(User, ann_id) == (User, (ann_id,), None)
        assert AsyncSession.identity_key(instance=ann) == (User, (ann_id,), None)


def test_async_session_refuses_event_listeners_as_sqlalchemys_does() -> None:
    for session in (AsyncSession(), TaggedAsyncSession(), sqlalchemy_asyncio.AsyncSession()):
        with pytest.raises(NotImplementedError, match="sync_session"):
            event.listen(session, "before_commit", lambda sync_session: None)
    for cls in (AsyncSession, sqlalchemy_asyncio.AsyncSession):
        with pytest.raises(sa_exc.InvalidRequestError, match="No such event"):
            event.listen(cls, "before_commit", lambda sync_session: None)


async def test_events_on_the_sync_session_fire(engine: AsyncEngine) -> None:
    seen: list[str] = []
    async with AsyncSession(engine) as session:
        event.listen(session.sync_session, "before_commit", lambda s: seen.append("commit"))
        session.add(User(name="ann"))
        await session.commit()
    assert seen == ["commit"]


# -- close() without a transaction, run on the spot


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


# -- async context managers under errors and cancellation


async def test_session_context_closes_when_the_body_raises(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    with pytest.raises(ValueError):
        async with AsyncSession(engine) as session:
            ann = User(name="ann")
            session.add(ann)
            await session.flush()
            assert checked_out(engine) == 1
            raise ValueError
    assert checked_out(engine) == 0
    assert not inspect(ann).persistent and ann not in session
    assert await stored_names(read_back) == []


async def test_session_context_closes_when_the_task_is_cancelled_during_io(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    started = asyncio.Event()

    async def body() -> None:
        async with AsyncSession(engine) as session:
            session.add(User(name="ann"))
            await session.flush()
            await wait_forever_in_the_bridge(session, started)

    task = asyncio.ensure_future(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0
    assert await stored_names(read_back) == []


async def test_session_context_cancelled_during_a_postgresql_query(
    postgresql_engine: AsyncEngine,
) -> None:
    engine = postgresql_engine

    async def body() -> None:
        async with AsyncSession(engine) as session:
            await session.execute(text("SELECT pg_sleep(30)"))

    task = asyncio.ensure_future(body())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0
    async with AsyncSession(engine) as session:
        assert await session.scalar(text("SELECT 3")) == 3


async def test_session_context_finishes_close_when_cancelled_during_it(
    engine: AsyncEngine,
) -> None:
    close_started = asyncio.Event()
    session = AsyncSession(
        engine, sync_session_class=SlowCloseSession, info={"close_started": close_started}
    )
    ann = User(name="ann")

    async def body() -> None:
        async with session:
            session.add(ann)
            await session.flush()

    task = asyncio.ensure_future(body())
    await close_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # close() ran to its end before the cancellation reached the caller.
    assert checked_out(engine) == 0
    assert ann not in session


# -- async_object_session, async_session, InstanceState.async_session


async def test_async_object_session_and_async_session(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        ann = User(name="ann")
        assert async_object_session(ann) is None
        session.add(ann)
        assert async_object_session(ann) is session
        assert async_session(session.sync_session) is session
        assert async_session(Session()) is None
        session.expunge(ann)
        assert async_object_session(ann) is None


async def test_async_session_forgets_a_collected_session(engine: AsyncEngine) -> None:
    session = AsyncSession(engine)
    sync_session = session.sync_session
    ann = User(name="ann")
    session.add(ann)
    del session
    gc.collect()
    assert async_session(sync_session) is None
    assert async_object_session(ann) is None


def test_the_sync_session_holds_its_async_session_weakly(engine: AsyncEngine) -> None:
    session = AsyncSession(engine)
    sync_session = session.sync_session
    assert async_session(sync_session) is session
    del session
    gc.collect()
    assert async_session(sync_session) is None


async def test_instance_state_async_session_for_ours_and_sqlalchemys_at_once(
    engine: AsyncEngine,
) -> None:
    ours = AsyncSession(engine)
    theirs = sqlalchemy_asyncio.AsyncSession(engine)
    ann, bob, cy = User(name="ann"), User(name="bob"), User(name="cy")
    ours.add(ann)
    theirs.add(bob)
    found: list[object] = [inspect(user).async_session for user in (ann, bob, cy)]
    assert found == [ours, theirs, None]
    assert found[0] is ours and found[1] is theirs
    assert async_object_session(bob) is None
    # SQLAlchemy's own helpers find sa_async's sessions too (theirs are SQLAlchemy's class).
    assert sqlalchemy_asyncio.async_object_session(ann) is ours
    assert sqlalchemy_asyncio.async_session(ours.sync_session) is ours
    assert sqlalchemy_asyncio.async_object_session(bob) is theirs
    assert sqlalchemy_asyncio.async_object_session(cy) is None
    await ours.close()
    await theirs.close()


# -- closing every session


async def test_close_all_sessions_closes_ours_and_sqlalchemys(
    engine: AsyncEngine, maker: Maker
) -> None:
    await add_users(maker, "ann")
    ours = AsyncSession(engine)
    theirs = sqlalchemy_asyncio.AsyncSession(engine)
    mine = await ours.scalar(select(User))
    their = await theirs.scalar(select(User))
    assert checked_out(engine) == 2
    await close_all_sessions()
    assert checked_out(engine) == 0
    assert mine is not None and inspect(mine).detached
    assert their is not None and inspect(their).detached


async def test_close_all_classmethod_is_deprecated_and_closes(
    engine: AsyncEngine, maker: Maker
) -> None:
    await add_users(maker, "ann")
    session = AsyncSession(engine)
    ann = await session.scalar(select(User))
    with pytest.warns(sa_exc.SADeprecationWarning, match="close_all"):
        closing = AsyncSession.close_all()
    await closing
    assert checked_out(engine) == 0
    assert ann is not None and inspect(ann).detached


# -- nothing retained after a close, or after the last reference is dropped


def live_sync_sessions() -> int:
    gc.collect()
    return sum(isinstance(item, Session) for item in gc.get_objects())


async def test_closed_sessions_of_concurrent_bursts_are_all_freed(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(
        sa_async.create_async_engine(engine.url, pool_size=100, max_overflow=0, pool_timeout=30)
    )

    async def one_request() -> None:
        async with maker() as session:
            await session.execute(select(User))
            await asyncio.sleep(0.005)  # all of a burst hold their session (and worker) at once

    before = live_sync_sessions()
    for _ in range(5):
        await asyncio.gather(*(one_request() for _ in range(100)))
    assert live_sync_sessions() == before
    await maker.kw["bind"].dispose()


async def test_an_unclosed_dropped_session_gives_its_connection_back(
    database_url: str,
) -> None:
    engine = sa_async.create_async_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=0.5
    )
    await recreate_tables(engine)
    maker = async_sessionmaker(engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            # A transaction holds the pool's only connection; the session is then forgotten.
            forgotten = maker()
            await forgotten.execute(select(User))
            del forgotten
            gc.collect()
            assert checked_out(engine) == 0
    # SQLAlchemy's own warning about a connection that the garbage collector cleaned up.
    assert [warning.category for warning in caught] == [sa_exc.SAWarning] * 2
    assert all("garbage collector" in str(warning.message) for warning in caught)
    async with maker() as session:
        assert (await session.execute(select(func.count(User.id)))).scalar() == 0
    await recreate_tables(engine, create=False)
    await engine.dispose()
