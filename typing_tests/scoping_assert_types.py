"""What type checkers infer for scoped_session and async_scoped_session (checked, never run).

``test_assert_types.py`` runs ``mypy --strict`` (with and without the plugin) and basedpyright
on this file. Each ``assert_type`` states the type a user sees; each line carrying both
``# type: ignore[code]`` and ``# pyright: ignore[rule]`` is a misuse that must stay an error
(both checkers report an ignore that is no longer needed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, assert_type

from sqlalchemy import Connection, Engine, String, create_engine, select, text, update
from sqlalchemy.engine import CursorResult, Result, ScalarResult
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Query,
    Session,
    SessionTransaction,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.orm.query import RowReturningQuery
from sqlalchemy.util import IdentitySet, immutabledict
from typing_extensions import Unpack

from sa_async import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
    AsyncSession,
    AsyncSessionTransaction,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
    scoped_session,
)
from sa_async.scoping import ScopeRegistry


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class RoutingSession(Session):
    pass


class MyAsyncSession(AsyncSession[RoutingSession]):
    pass


def scope_of_request() -> Hashable:
    return "request-1"


def scoped_session_carries_the_session_type(engine: Engine) -> None:
    plain = scoped_session(sessionmaker(engine))
    assert_type(plain, scoped_session[Session])
    assert_type(plain(), Session)

    routing = scoped_session(sessionmaker(engine, class_=RoutingSession), scope_of_request)
    assert_type(routing, scoped_session[RoutingSession])
    assert_type(routing(), RoutingSession)
    assert_type(routing(autoflush=False), RoutingSession)
    assert_type(routing.session_factory, sessionmaker[RoutingSession])
    assert_type(routing.registry, ScopeRegistry[RoutingSession])
    assert_type(routing.registry(), RoutingSession)
    assert_type(routing.registry.has(), bool)
    assert_type(len(routing.registry), int)
    assert_type(routing.no_autoflush, AbstractContextManager[RoutingSession, None])
    assert_type(routing.remove(), None)
    assert_type(routing.configure(expire_on_commit=False), None)


def scoped_session_proxies_are_typed_as_session_members(
    Scoped: scoped_session[Session], user: User
) -> None:
    assert_type(Scoped.execute(select(User.id, User.name)), Result[int, str])
    assert_type(Scoped.execute(text("SELECT 1")), CursorResult[Unpack[tuple[Any, ...]]])
    assert_type(Scoped.scalars(select(User)), ScalarResult[User])
    assert_type(Scoped.scalar(select(User.id)), int | None)
    assert_type(Scoped.get(User, 1), User | None)
    assert_type(Scoped.get_one(User, 1), User)
    assert_type(Scoped.merge(user), User)
    assert_type(Scoped.merge_all([user]), Sequence[User])
    assert_type(Scoped.query(User), Query[User])
    assert_type(Scoped.query(User.id, User.name), RowReturningQuery[int, str])
    assert_type(Scoped.begin(), SessionTransaction)
    assert_type(Scoped.begin_nested(), SessionTransaction)
    assert_type(Scoped.get_transaction(), SessionTransaction | None)
    assert_type(Scoped.in_transaction(), bool)
    assert_type(Scoped.connection(), Connection)
    assert_type(Scoped.get_bind(), Engine | Connection)
    assert_type(Scoped.bind, Engine | Connection | None)
    assert_type(Scoped.dirty, IdentitySet)
    assert_type(Scoped.info, dict[Any, Any])
    assert_type(Scoped.autoflush, bool)
    assert_type(Scoped.execution_options, immutabledict[str, Any])
    assert_type(user in Scoped, bool)
    assert_type(iter(Scoped), Iterator[object])
    assert_type(Scoped.add(user), None)
    assert_type(Scoped.bulk_save_objects([user]), None)
    assert_type(Scoped.object_session(user), Session | None)
    assert_type(scoped_session.object_session(user), Session | None)
    assert_type(
        scoped_session.identity_key(User, 1), tuple[type[object], tuple[object, ...], object]
    )
    Scoped.autoflush = False
    Scoped.bind = None


def query_property_gives_a_query_of_its_class(Scoped: scoped_session[Session]) -> None:
    class Address(Base):
        __tablename__ = "addresses"

        id: Mapped[int] = mapped_column(primary_key=True)
        query = Scoped.query_property()

    assert_type(Address.query, Query[Address])


def scoped_session_refuses_an_async_sessionmaker(engine: AsyncEngine) -> None:
    scoped_session(async_sessionmaker(engine))  # type: ignore[arg-type, sa-async-registry, unused-ignore]  # pyright: ignore[reportArgumentType]


def async_scoped_session_carries_the_session_type(engine: AsyncEngine) -> None:
    plain = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    assert_type(plain, async_scoped_session[AsyncSession[Session]])
    assert_type(plain(), AsyncSession[Session])

    routing = async_scoped_session(
        async_sessionmaker(engine, sync_session_class=RoutingSession),
        scopefunc=asyncio.current_task,
    )
    assert_type(routing, async_scoped_session[AsyncSession[RoutingSession]])
    assert_type(routing.sync_session, RoutingSession)
    assert_type(routing.no_autoflush, AbstractContextManager[RoutingSession, None])

    custom = async_scoped_session(
        async_sessionmaker(engine, class_=MyAsyncSession), asyncio.current_task
    )
    assert_type(custom, async_scoped_session[MyAsyncSession])
    assert_type(custom(), MyAsyncSession)
    assert_type(custom.session_factory, async_sessionmaker[MyAsyncSession])
    assert_type(custom.registry, ScopeRegistry[MyAsyncSession])
    # Found through MyAsyncSession's base, AsyncSession[RoutingSession].
    assert_type(custom.sync_session, RoutingSession)


def async_scoped_session_needs_a_scopefunc(engine: AsyncEngine) -> None:
    async_scoped_session(async_sessionmaker(engine))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


async def async_scoped_session_proxies_stay_awaitable(
    Scoped: async_scoped_session[AsyncSession[RoutingSession]], user: User
) -> None:
    assert_type(await Scoped.execute(select(User.id, User.name)), Result[int, str])
    assert_type(
        await Scoped.execute(update(User).values(name="x")),
        CursorResult[Unpack[tuple[Any, ...]]],
    )
    assert_type(await Scoped.scalars(select(User)), ScalarResult[User])
    assert_type(await Scoped.scalar(select(User.id)), int | None)
    assert_type(await Scoped.stream(select(User.id, User.name)), AsyncResult[int, str])
    assert_type(await Scoped.stream_scalars(select(User.id)), AsyncScalarResult[int])
    assert_type(await Scoped.get(User, 1), User | None)
    assert_type(await Scoped.get_one(User, 1), User)
    assert_type(await Scoped.merge(user), User)
    assert_type(await Scoped.connection(), AsyncConnection)
    assert_type(await Scoped.flush(), None)
    assert_type(await Scoped.commit(), None)
    assert_type(await Scoped.remove(), None)

    def count_users(session: RoutingSession, name: str) -> int:
        return len(session.query(User).filter_by(name=name).all())

    assert_type(await Scoped.run_sync(count_users, "ed"), int)
    await Scoped.run_sync(count_users, 1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

    assert_type(Scoped.begin(), AsyncSessionTransaction)
    assert_type(Scoped.get_transaction(), AsyncSessionTransaction | None)
    assert_type(Scoped.get_async_bind(), AsyncEngine | AsyncConnection)
    assert_type(Scoped.bind, AsyncEngine | AsyncConnection | None)
    assert_type(Scoped.get_bind(), Engine | Connection)
    assert_type(Scoped.add(user), None)
    assert_type(user in Scoped, bool)
    assert_type(Scoped.object_session(user), Session | None)
    assert_type(async_scoped_session.object_session(user), Session | None)
    async with Scoped.begin() as transaction:
        assert_type(transaction, AsyncSessionTransaction)


def sessions_of_other_makers(engine: AsyncEngine) -> None:
    # Any callable scope key works, e.g. a request id from a context variable.
    by_request = async_scoped_session(async_sessionmaker(engine), scope_of_request)
    assert_type(by_request, async_scoped_session[AsyncSession[Session]])
    assert_type(create_async_engine("sqlite+aiosqlite://"), AsyncEngine)
    assert_type(create_engine("sqlite://"), Engine)
