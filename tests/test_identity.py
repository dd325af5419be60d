"""sa_async's classes are SQLAlchemy's classes too, and still run only sa_async's code.

Each public class subclasses its SQLAlchemy counterpart, so that other libraries' ``isinstance``,
``issubclass`` and ``__mro__`` checks accept sa_async's objects. Every member that SQLAlchemy's
class defines is defined again by sa_async's, except the names listed in ``INHERITED`` with the
reason they may be; and with every function of SQLAlchemy's classes replaced by one that fails,
a whole workload on sa_async's objects still runs. SQLAlchemy's own helpers that look sessions up
find sa_async's, and SQLAlchemy's makers build and begin them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.ext.asyncio.base import ReversibleProxy, StartableContext
from sqlalchemy.orm import Session, sessionmaker

import sa_async
from sa_async import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_scoped_session,
    async_sessionmaker,
    scoped_session,
)
from tests.conftest import ReadBack, checked_out, untyped
from tests.models import Address, User

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (AsyncSession, sqlalchemy_asyncio.AsyncSession),
    (AsyncSessionTransaction, sqlalchemy_asyncio.AsyncSessionTransaction),
    (async_sessionmaker, sqlalchemy_asyncio.async_sessionmaker),
    (async_scoped_session, sqlalchemy_asyncio.async_scoped_session),
    (scoped_session, sqlalchemy_orm.scoped_session),
    (AsyncAttrs, sqlalchemy_asyncio.AsyncAttrs),
]

# Names of the typing machinery, which every generic class carries and no code of ours calls.
TYPING_NAMES = frozenset(
    {
        "__annotations__",
        "__orig_bases__",
        "__parameters__",
        "__init_subclass__",
        "_is_protocol",
        "__slots__",
        "__abstractmethods__",
        "_abc_impl",
        "__subclasshook__",
        "__class_getitem__",
        "__dict__",
        "__weakref__",
        "__module__",
        "__doc__",
        "__qualname__",
        "__firstlineno__",
        "__static_attributes__",
    }
)

# Members of SQLAlchemy's classes that sa_async's classes may inherit, and why.
INHERITED: dict[tuple[type[Any], str], str] = {
    (ReversibleProxy, "_proxy_objects"): (
        "SQLAlchemy's registry of its own proxies: sa_async's objects are found through the "
        "sync object's attribute, and every method reading the registry is overridden"
    ),
    (sqlalchemy_asyncio.AsyncSessionTransaction, "session"): (
        "a slot of SQLAlchemy's class, which sa_async's transaction uses for its session"
    ),
    (sqlalchemy_asyncio.AsyncSessionTransaction, "sync_transaction"): (
        "a slot, which sa_async's transaction uses for its sync transaction"
    ),
    (sqlalchemy_asyncio.AsyncSessionTransaction, "nested"): (
        "a slot, which sa_async's transaction uses for its nested flag"
    ),
}


def sqlalchemy_members(theirs: type[Any]) -> Iterator[tuple[type[Any], str]]:
    """Each (defining class, name) of ``theirs`` and its bases, but ``object``'s."""
    for klass in theirs.__mro__:
        if klass is object:
            continue
        for name in vars(klass):
            if name not in TYPING_NAMES:
                yield klass, name


def defined_by_sa_async(ours: type[Any], theirs: type[Any], name: str) -> bool:
    """Whether ``name`` resolves, on ``ours``, to a class of sa_async's (not SQLAlchemy's)."""
    for klass in ours.__mro__:
        if klass is theirs:
            return False
        if name in vars(klass):
            return klass.__module__.startswith("sa_async")
    return False


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[pair[1].__name__ for pair in PAIRS])
def test_each_class_is_sqlalchemys_class_too(ours: type[Any], theirs: type[Any]) -> None:
    assert issubclass(ours, theirs)
    assert theirs in ours.__mro__
    assert ours.__module__.startswith("sa_async.")


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[pair[1].__name__ for pair in PAIRS])
def test_every_member_of_sqlalchemys_class_is_defined_by_sa_async(
    ours: type[Any], theirs: type[Any]
) -> None:
    inherited = [
        f"{klass.__name__}.{name}"
        for klass, name in sqlalchemy_members(theirs)
        if not defined_by_sa_async(ours, theirs, name) and (klass, name) not in INHERITED
    ]
    assert inherited == [], f"{ours.__name__} inherits these from SQLAlchemy: {inherited}"


def test_every_inherited_member_listed_is_still_inherited() -> None:
    for (klass, name), reason in INHERITED.items():
        assert name in vars(klass), f"{klass.__name__}.{name} is gone from SQLAlchemy: {reason}"


@pytest.fixture
def sqlalchemys_implementation_fails(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace every function, property and classmethod of SQLAlchemy's classes with one that
    records the call and fails: what sa_async's objects do must not reach them."""
    reached: list[str] = []
    classes = {
        klass
        for _, theirs in PAIRS
        for klass in theirs.__mro__
        if klass.__module__.startswith("sqlalchemy")
    } | {ReversibleProxy, StartableContext}
    for klass in classes:
        for name, member in list(vars(klass).items()):
            if name in TYPING_NAMES or name == "_retrieve_proxy_for_target":
                continue
            label = f"{klass.__name__}.{name}"

            def fail(*args: Any, _label: str = label, **kw: Any) -> Any:
                reached.append(_label)
                raise AssertionError(f"SQLAlchemy's {_label} was called")

            if isinstance(member, property):
                monkeypatch.setattr(klass, name, property(fail, fail))
            elif isinstance(member, classmethod | staticmethod):
                monkeypatch.setattr(klass, name, classmethod(fail))
            elif inspect.isfunction(member):
                monkeypatch.setattr(klass, name, fail)
    return reached


async def test_a_whole_workload_never_reaches_sqlalchemys_implementation(
    engine: AsyncEngine, sqlalchemys_implementation_fails: list[str]
) -> None:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    assert repr(maker).startswith("async_sessionmaker(")
    maker.configure(autoflush=True)
    async with maker.begin() as session:
        session.add(User(name="ann", addresses=[Address(email="ann@x")]))
    async with maker() as session:
        transaction = await session.begin()
        assert session.get_transaction() is transaction and transaction.is_active
        ann = await session.scalar(select(User).where(User.name == "ann"))
        assert ann is not None
        assert [address.email for address in await ann.awaitable_attrs.addresses] == ["ann@x"]
        async with session.begin_nested():
            session.add(User(name="bob"))
        assert await session.scalar(select(func.count(User.id))) == 2
        await transaction.commit()
        assert session.bind is engine and dict(session.binds) == {}
        assert sa_async.async_object_session(ann) is session
        await session.run_sync(lambda sync_session: sync_session.expire_all())
    registry = async_scoped_session(maker, scopefunc=asyncio.current_task)
    assert await registry.scalar(select(func.count(User.id))) == 2
    registry.add(User(name="cy"))
    await registry.commit()
    await registry.remove()
    assert sqlalchemys_implementation_fails == []


async def test_sqlalchemys_helpers_find_sa_asyncs_sessions(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        ann = User(name="ann")
        session.add(ann)
        assert sqlalchemy_asyncio.async_object_session(ann) is session
        assert sqlalchemy_asyncio.async_session(session.sync_session) is session
        assert sqlalchemy_orm.object_session(ann) is session.sync_session
        assert inspect_async_session(ann) is session
        await session.flush()
        assert checked_out(engine) == 1
        await sqlalchemy_asyncio.close_all_sessions()
        assert checked_out(engine) == 0 and ann not in session


def inspect_async_session(instance: object) -> object:
    from sqlalchemy import inspect as sa_inspect

    return sa_inspect(instance).async_session


class SQLModelLikeSession(sqlalchemy_asyncio.AsyncSession):
    """A subclass of SQLAlchemy's AsyncSession, as SQLModel's AsyncSession is."""


@pytest.mark.parametrize(
    "class_",
    [sqlalchemy_asyncio.AsyncSession, SQLModelLikeSession],
    ids=["SQLAlchemy's AsyncSession", "a subclass of it"],
)
async def test_sa_asyncs_maker_builds_and_begins_any_sqlalchemy_async_session_class(
    engine: AsyncEngine, read_back: ReadBack, class_: type[sqlalchemy_asyncio.AsyncSession]
) -> None:
    maker = async_sessionmaker(engine, class_=class_)
    session = maker()
    assert type(session) is class_
    await session.close()
    async with maker.begin() as begun:
        assert type(begun) is class_
        begun.add(User(name="committed"))
    assert await read_back("SELECT name FROM users") == [("committed",)]
    assert checked_out(engine) == 0


async def test_sqlalchemys_makers_build_and_begin_sa_asyncs_sessions(
    engine: AsyncEngine, read_back: ReadBack
) -> None:
    theirs = sqlalchemy_asyncio.async_sessionmaker(engine, class_=AsyncSession)
    async with theirs.begin() as session:
        assert type(session) is AsyncSession
        session.add(User(name="through SQLAlchemy's async maker"))
    # SQLAlchemy's stubs type sessionmaker for sync sessions only; at run time it takes ours.
    sync_maker: Any = sessionmaker(untyped(engine), class_=untyped(AsyncSession))
    async with sync_maker.begin() as session:
        assert isinstance(session, AsyncSession)
        session.add(User(name="through sessionmaker"))
    with pytest.raises(LookupError):
        async with sync_maker.begin() as session:
            session.add(User(name="rolled back"))
            await session.flush()
            raise LookupError
    assert sorted(row.name for row in await read_back("SELECT name FROM users")) == [
        "through SQLAlchemy's async maker",
        "through sessionmaker",
    ]
    assert checked_out(engine) == 0


def test_session_events_listen_on_the_sync_registry_as_on_sqlalchemys() -> None:
    flushed: list[int] = []

    def before_flush(session: Session, context: object, objects: object) -> None:
        flushed.append(len(session.new))

    engine = create_engine("sqlite://")
    User.metadata.create_all(engine)
    registry = scoped_session(sessionmaker(engine))
    # SQLAlchemy's event system takes a scoped_session of a sessionmaker: ours is one.
    event.listen(registry, "before_flush", before_flush)
    try:
        registry.add(User(name="ann"))
        registry.flush()
        assert flushed == [1]
    finally:
        event.remove(registry, "before_flush", before_flush)
        registry.remove()
        engine.dispose()


def test_async_attrs_is_sqlalchemys_and_loads_through_sa_async() -> None:
    assert issubclass(User, sqlalchemy_asyncio.AsyncAttrs)
    loader = User(name="ann").awaitable_attrs
    assert type(loader).__module__ == "sa_async.attrs"
