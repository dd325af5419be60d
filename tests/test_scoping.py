"""scoped_session and async_scoped_session against each database: one session per scope, every
proxied member reaching the current scope's session, ``remove()``, SQLAlchemy's errors and
warnings. The registry they keep their sessions in, and the closing of the sessions whose scope
has ended, are in test_registry.py; the refusal of such a session, in test_guard.py."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.orm import Query, Session, SessionTransaction, sessionmaker
from sqlalchemy.util import immutabledict

import sa_async
from sa_async import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
    scoped_session,
)
from sa_async._bridge import run_in_bridge
from sa_async.exc import ScopefuncError
from sa_async.scoping import ScopeRegistry
from tests.conftest import AsyncScoped, ReadBack, checked_out, untyped
from tests.models import Address, User
from tests.scoping_support import wait_until_checked_in

# -- the public surface


def test_both_registries_are_exported_and_are_sqlalchemys_classes_too() -> None:
    assert sa_async.scoped_session is scoped_session
    assert sa_async.async_scoped_session is async_scoped_session
    for ours, theirs in (
        (scoped_session, sqlalchemy_orm.scoped_session),
        (async_scoped_session, sqlalchemy_asyncio.async_scoped_session),
    ):
        assert ours.__module__ == "sa_async.scoping"
        assert theirs in ours.__mro__  # for identity; the members are ours (test_identity.py)
    assert {"scoped_session", "async_scoped_session"} <= set(sa_async.__all__)


def test_every_public_member_of_the_sessions_is_proxied() -> None:
    session_members = {
        name for cls in Session.__mro__ for name in vars(cls) if not name.startswith("_")
    } - {"connection_callable", "dispatch"}
    assert sorted(session_members - set(dir(scoped_session))) == []
    async_members = {
        name for cls in AsyncSession.__mro__ for name in vars(cls) if not name.startswith("_")
    } - {"sync_session_class"}
    assert sorted(async_members - set(dir(async_scoped_session))) == []
    assert "__contains__" in vars(scoped_session) and "__iter__" in vars(async_scoped_session)


def test_async_members_of_async_scoped_session_stay_coroutine_functions() -> None:
    for name in ("execute", "scalar", "stream", "get", "commit", "close", "run_sync", "flush"):
        assert inspect.iscoroutinefunction(getattr(async_scoped_session, name)), name
    for name in ("add", "begin", "get_bind", "in_transaction", "expunge"):
        assert not inspect.iscoroutinefunction(getattr(async_scoped_session, name)), name
    assert inspect.iscoroutinefunction(async_scoped_session.remove)
    assert not inspect.iscoroutinefunction(scoped_session.remove)


def test_proxies_carry_the_sessions_signatures() -> None:
    assert inspect.signature(scoped_session.get) == inspect.signature(Session.get)
    assert inspect.signature(async_scoped_session.execute) == inspect.signature(
        AsyncSession.execute
    )
    assert scoped_session.add.__qualname__ == "scoped_session.add"


def test_classes_are_subscriptable_at_run_time() -> None:
    assert scoped_session[Session].__origin__ is scoped_session  # type: ignore[attr-defined]
    assert async_scoped_session[AsyncSession].__args__ == (AsyncSession,)  # type: ignore[attr-defined]
    assert ScopeRegistry[int].__origin__ is ScopeRegistry  # type: ignore[attr-defined]


def test_scopefunc_is_required_and_must_be_callable() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(TypeError, match="scopefunc"):
        untyped(async_scoped_session)(async_sessionmaker(engine))
    with pytest.raises(ScopefuncError, match="scopefunc must be a callable"):
        async_scoped_session(async_sessionmaker(engine), untyped("current_task"))
    with pytest.raises(ScopefuncError, match="scopefunc must be a callable"):
        async_scoped_session(async_sessionmaker(engine), untyped(None))
    with pytest.raises(ScopefuncError, match="scopefunc must be a callable"):
        scoped_session(sessionmaker(), untyped(42))
    # Code that caught SQLAlchemy's TypeError keeps catching it.
    assert issubclass(ScopefuncError, TypeError)
    assert issubclass(ScopefuncError, sa_exc.ArgumentError)


def test_scoped_session_given_an_async_sessionmaker_points_at_async_scoped_session() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    for factory in (
        async_sessionmaker(engine),
        sqlalchemy_asyncio.async_sessionmaker(engine),
        sessionmaker(class_=untyped(AsyncSession)),
    ):
        with pytest.warns(sa_exc.SADeprecationWarning, match="async_scoped_session") as caught:
            scoped_session(untyped(factory))
        assert issubclass(caught[0].category, DeprecationWarning)
        assert caught[0].filename == __file__


def test_scoped_session_warns_when_a_plain_callable_turns_out_async() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    registry = scoped_session(untyped(lambda: AsyncSession(engine)))
    with pytest.warns(sa_exc.SADeprecationWarning, match="async_scoped_session"):
        registry()


def test_password_of_the_bind_url_never_appears_in_reprs_or_warnings() -> None:
    engine = create_async_engine("postgresql+asyncpg://scott:tiger-secret@localhost/db")
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    sync_scoped = scoped_session(sessionmaker(engine.sync_engine))
    with pytest.warns(sa_exc.SADeprecationWarning) as caught:
        scoped_session(untyped(async_sessionmaker(engine)))
    for text_shown in (repr(scoped), repr(sync_scoped), repr(scoped.registry), *caught):
        assert "tiger-secret" not in str(text_shown)


# -- async_scoped_session


async def test_one_session_per_task(scoped: AsyncScoped) -> None:
    async def session_of_a_task() -> AsyncSession:
        session = scoped()
        await asyncio.sleep(0)
        assert scoped() is session
        return session

    mine = scoped()
    assert scoped() is mine
    assert scoped.registry() is mine
    others = await asyncio.gather(session_of_a_task(), session_of_a_task())
    assert len({id(mine), *map(id, others)}) == 3
    assert isinstance(mine, AsyncSession) and mine.bind is scoped.session_factory.kw["bind"]
    await scoped.remove()


async def test_proxies_reach_the_current_session_and_stay_awaitable(
    scoped: AsyncScoped, read_back: ReadBack
) -> None:
    user = User(name="ed", addresses=[Address(email="ed@example.com")])
    scoped.add(user)
    assert user in scoped and user in scoped() and list(scoped) == [user, *user.addresses]
    assert scoped.new and not scoped.dirty and not scoped.deleted
    await scoped.flush()
    assert scoped.in_transaction() and isinstance(scoped.get_transaction(), AsyncSessionTransaction)
    assert await scoped.scalar(select(func.count(User.id))) == 1
    assert (await scoped.scalars(select(User.name))).all() == ["ed"]
    assert (await scoped.execute(select(User.name))).all() == [("ed",)]
    assert [name async for name in await scoped.stream_scalars(select(User.name))] == ["ed"]
    assert await scoped.get(User, user.id) is user
    assert await scoped.get_one(User, user.id) is user
    assert scoped.identity_map[scoped.identity_key(User, user.id)] is user
    assert async_scoped_session.object_session(user) is scoped().sync_session
    assert scoped.sync_session is scoped().sync_session
    assert await scoped.run_sync(lambda session: session.get_one(User, user.id).name) == "ed"
    connection = await scoped.connection()
    assert await connection.scalar(select(func.count(User.id))) == 1
    assert scoped.get_async_bind() is scoped().bind
    await scoped.commit()
    assert await read_back("SELECT name FROM users") == [("ed",)]

    user.name = "edward"
    assert scoped.is_modified(user) and user in scoped.dirty
    await scoped.refresh(user)
    assert user.name == "ed"
    merged = await scoped.merge(User(id=user.id, name="eddie"))
    assert merged is user and user.name == "eddie"
    await scoped.delete(user)
    assert user in scoped.deleted
    await scoped.rollback()
    user_id = await scoped.run_sync(lambda session: user.id)
    scoped.expire_all()
    assert await scoped.get(User, user_id) is user
    scoped.expunge(user)
    assert user not in scoped
    await scoped.remove()
    assert checked_out(scoped.session_factory.kw["bind"]) == 0


async def test_settable_attributes_set_the_current_session(scoped: AsyncScoped) -> None:
    scoped.autoflush = False
    assert scoped().autoflush is False and scoped.autoflush is False
    # Session executes with execution_options.union(...): an immutabledict, as the stubs ask.
    scoped.execution_options = immutabledict({"populate_existing": True})
    assert scoped().execution_options == {"populate_existing": True}
    scoped.info["request"] = 7
    assert scoped().info == {"request": 7}
    with scoped.no_autoflush as session:
        assert session is scoped().sync_session
    engine = scoped().bind
    scoped.bind = None
    assert scoped().bind is None and scoped.bind is None
    scoped.bind = engine
    assert scoped.binds == {}
    await scoped.remove()


async def test_begin_through_the_registry_commits_the_current_session(
    scoped: AsyncScoped, read_back: ReadBack
) -> None:
    async with scoped.begin() as transaction:
        assert transaction.session is scoped()
        scoped.add(User(name="in-transaction"))
    async with scoped.begin():
        async with scoped.begin_nested():
            assert scoped.in_nested_transaction()
            scoped.add(User(name="in-savepoint"))
        assert scoped.get_nested_transaction() is None
    assert await read_back("SELECT name FROM users ORDER BY id") == [
        ("in-transaction",),
        ("in-savepoint",),
    ]
    await scoped.remove()


async def test_calling_with_arguments_creates_the_session_or_refuses(
    scoped: AsyncScoped,
) -> None:
    session = scoped(autoflush=False)
    assert session.autoflush is False and scoped() is session
    with pytest.raises(sa_exc.InvalidRequestError, match="Scoped session is already present"):
        scoped(autoflush=True)
    await scoped.remove()
    assert scoped(autoflush=True).autoflush is True
    await scoped.remove()


async def test_configure_applies_to_new_sessions_and_warns_when_some_exist(
    scoped: AsyncScoped,
) -> None:
    scoped.configure(expire_on_commit=False)
    first = scoped()
    assert first.sync_session.expire_on_commit is False
    with pytest.warns(sa_exc.SAWarning, match="At least one scoped session is already present. "):
        scoped.configure(expire_on_commit=True)
    assert first.sync_session.expire_on_commit is False
    await scoped.remove()
    assert scoped().sync_session.expire_on_commit is True
    await scoped.remove()


async def test_remove_closes_then_forgets(scoped: AsyncScoped, engine: AsyncEngine) -> None:
    session = scoped()
    user = User(name="pending")
    scoped.add(user)
    await scoped.execute(select(1))
    assert checked_out(engine) == 1 and len(scoped.registry) == 1
    await scoped.remove()
    assert checked_out(engine) == 0 and len(scoped.registry) == 0
    assert user not in session and not session.in_transaction()
    assert scoped() is not session
    await scoped.remove()
    await scoped.remove()  # nothing left: a no-op


async def test_remove_completes_the_close_when_the_task_is_cancelled(
    scoped: AsyncScoped, engine: AsyncEngine
) -> None:
    started = asyncio.Event()

    async def use_then_remove() -> None:
        await scoped.execute(select(1))
        started.set()
        await scoped.remove()

    task = asyncio.create_task(use_then_remove())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_checked_in(engine)
    assert len(scoped.registry) == 0


async def test_class_level_members(scoped: AsyncScoped) -> None:
    user = User(name="ed")
    scoped.add(user)
    assert async_scoped_session.object_session(user) is scoped().sync_session
    assert async_scoped_session.identity_key(User, 5) == (User, (5,), None)
    with pytest.warns(sa_exc.SADeprecationWarning, match="close_all_sessions"):
        await async_scoped_session.close_all()
    assert user not in scoped()
    await scoped.remove()


async def test_sync_sessionmaker_of_async_sessions_works_too(engine: AsyncEngine) -> None:
    scoped = async_scoped_session(
        untyped(sessionmaker(untyped(engine), class_=untyped(AsyncSession))), asyncio.current_task
    )
    session = scoped()
    assert isinstance(session, AsyncSession) and session.bind is engine
    assert await scoped.scalar(select(1)) == 1
    await scoped.remove()


# -- scoped_session, on each database through the greenlet bridge


async def test_scoped_session_proxies_sync_sessions(
    engine: AsyncEngine, read_back: ReadBack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scoped = scoped_session(sessionmaker(engine.sync_engine))

    class CustomQuery(Query[Any]):
        pass

    monkeypatch.setattr(User, "query", scoped.query_property(), raising=False)
    monkeypatch.setattr(User, "custom", scoped.query_property(CustomQuery), raising=False)

    def work() -> None:
        session = scoped()
        assert scoped() is session and isinstance(session, Session)
        scoped.add(User(name="ed"))
        scoped.add_all([User(name="wendy")])
        assert isinstance(scoped.begin_nested(), SessionTransaction)
        scoped.flush()
        scoped.commit()
        assert scoped.query(User.name).order_by(User.name).all() == [("ed",), ("wendy",)]
        query_of_users: Query[User] = untyped(User).query
        assert [user.name for user in query_of_users.order_by(User.id)] == ["ed", "wendy"]
        assert type(query_of_users) is Query and query_of_users.session is session
        assert isinstance(untyped(User).custom, CustomQuery)
        assert untyped(User).custom.count() == 2
        assert scoped.scalars(select(User.name).order_by(User.id)).all() == ["ed", "wendy"]
        assert scoped.execute(text("SELECT count(*) FROM users")).scalar() == 2
        ed = scoped.scalars(select(User).filter_by(name="ed")).one()
        assert scoped.get(User, ed.id) is ed and scoped.get_one(User, ed.id) is ed
        assert scoped_session.object_session(ed) is session
        assert scoped.identity_key(instance=ed) == (User, (ed.id,), None)
        scoped.bulk_insert_mappings(User, [{"name": "bulk"}])
        scoped.delete_all([ed])
        (merged,) = scoped.merge_all([User(id=ed.id + 100, name="merged")])
        assert merged in scoped.new
        scoped.commit()
        assert scoped.connection().engine is engine.sync_engine
        assert scoped.get_bind() is engine.sync_engine and scoped.bind is engine.sync_engine
        scoped.remove()

    await run_in_bridge(work)
    assert await read_back("SELECT name FROM users ORDER BY name") == [
        ("bulk",),
        ("merged",),
        ("wendy",),
    ]
    assert checked_out(engine) == 0 and len(scoped.registry) == 0


async def test_scoped_session_remove_closes_then_forgets(engine: AsyncEngine) -> None:
    scoped = scoped_session(sessionmaker(engine.sync_engine))

    def open_a_transaction() -> Session:
        scoped.execute(select(1))
        return scoped()

    session = await run_in_bridge(open_a_transaction)
    assert checked_out(engine) == 1
    await run_in_bridge(scoped.remove)
    assert checked_out(engine) == 0 and not session.in_transaction()
    assert len(scoped.registry) == 0 and scoped() is not session


def test_scoped_session_arguments_configure_and_custom_scopes() -> None:
    scopes = iter([1, 1, 2, 2, 2])
    scoped = scoped_session(sessionmaker(), lambda: next(scopes))
    assert scoped().autoflush is True
    with pytest.raises(sa_exc.InvalidRequestError, match="Scoped session is already present"):
        scoped(autoflush=False)
    assert scoped(autoflush=False).autoflush is False
    with pytest.warns(sa_exc.SAWarning, match="At least one scoped session is already present. "):
        scoped.configure(autoflush=False)
    assert len(scoped.registry) == 2
