"""scoped_session and async_scoped_session against each database: one session per scope, every
proxied member reaching the current scope's session, SQLAlchemy's errors and warnings, and the
closing of the sessions whose scope has ended (finished tasks, exited threads, dropped keys)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import Engine, NullPool, event, func, literal, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Query, Session, SessionTransaction, sessionmaker
from sqlalchemy.util import await_, immutabledict

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
from sa_async.exc import ScopeEndedError, ScopefuncError
from sa_async.scoping import ScopeRegistry
from tests.conftest import ReadBack, checked_out, untyped
from tests.models import Address, User
from tests.scoping_support import recorded_problems, sync_sqlite_engine, wait_until_checked_in

AsyncScoped = async_scoped_session[AsyncSession]


@pytest.fixture
def scoped(engine: AsyncEngine) -> AsyncScoped:
    """An async registry scoped by task, on ``engine``."""
    return async_scoped_session(async_sessionmaker(engine), asyncio.current_task)


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


# -- scoped_session across threads (a sync sqlite file)


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


def test_readme_repeats_the_module_paragraph_on_ended_scopes() -> None:
    def words(text: str) -> str:
        return " ".join(text.replace("``", "`").split())

    assert sa_async.scoping.__doc__ is not None
    module_paragraph = sa_async.scoping.__doc__.split(
        "Ended scopes (the README repeats this paragraph). ", 1
    )[1]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    readme_paragraph = readme.split("**Ended scopes.** ", 1)[1].split("\n\n", 1)[0]
    assert words(readme_paragraph) == words(module_paragraph)


def test_password_of_the_bind_url_never_appears_in_reprs_or_warnings() -> None:
    engine = create_async_engine("postgresql+asyncpg://scott:tiger-secret@localhost/db")
    scoped = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    sync_scoped = scoped_session(sessionmaker(engine.sync_engine))
    with pytest.warns(sa_exc.SADeprecationWarning) as caught:
        scoped_session(untyped(async_sessionmaker(engine)))
    for text_shown in (repr(scoped), repr(sync_scoped), repr(scoped.registry), *caught):
        assert "tiger-secret" not in str(text_shown)


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


# -- shutdown


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
