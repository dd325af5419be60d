"""What type checkers infer for AsyncSession and async_sessionmaker (checked, never run).

``test_assert_types.py`` runs ``mypy --strict`` (with and without the plugin) and basedpyright
on this file. Each ``assert_type`` states the type a user sees; each line carrying both
``# type: ignore[code]`` and ``# pyright: ignore[rule]`` is a misuse that must stay an error
(both checkers report an ignore that is no longer needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, assert_type

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    column,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult, Result, ScalarResult
from sqlalchemy.ext.horizontal_shard import ShardedSession
from sqlalchemy.orm import Mapper, ORMExecuteState, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import IdentitySet, immutabledict
from typing_extensions import Unpack

from sa_async import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
    AsyncSession,
    AsyncSessionTransaction,
    async_object_session,
    async_sessionmaker,
)
from typed_models import RoutingAsyncSession, RoutingSession, User, audit_log


def the_session_type_follows_the_sync_session_class(engine: AsyncEngine) -> None:
    assert_type(AsyncSession(engine), AsyncSession[Session])
    routing = AsyncSession(engine, sync_session_class=RoutingSession)
    assert_type(routing, AsyncSession[RoutingSession])
    assert_type(routing.sync_session, RoutingSession)
    assert_type(routing.sync_session_class, type[RoutingSession])
    assert_type(RoutingAsyncSession(engine), RoutingAsyncSession)
    assert_type(RoutingAsyncSession(engine).sync_session, RoutingSession)
    # A plain AsyncSession annotation takes sessions of any sync session class.
    takes_any_session(routing)
    takes_any_session(RoutingAsyncSession(engine))


def takes_any_session(session: AsyncSession) -> None:
    assert_type(session, AsyncSession[Session])


def misuse_of_the_constructor_is_an_error(engine: AsyncEngine) -> None:
    AsyncSession(create_engine("sqlite://"))  # type: ignore[call-overload, sa-async-sync-bind, unused-ignore]  # pyright: ignore[reportArgumentType]
    AsyncSession(engine, sync_session_class=dict)  # type: ignore[type-var]  # pyright: ignore[reportCallIssue, reportArgumentType]
    _routing: AsyncSession[RoutingSession] = AsyncSession(engine)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]


async def typed_statements_give_typed_results(session: AsyncSession) -> None:
    assert_type(await session.execute(select(User.id, User.name)), Result[int, str])
    assert_type(await session.execute(select(User)), Result[User])
    assert_type(await session.execute(insert(User).returning(User.id)), Result[int])
    assert_type(
        await session.execute(update(User).returning(User.id, User.name), [{"id": 1}]),
        Result[int, str],
    )


async def dml_without_returning_gives_a_cursor_result_where_the_runtime_does(
    session: AsyncSession, params: dict[str, Any], many: list[dict[str, Any]]
) -> None:
    assert_type(
        await session.execute(insert(User).values(name="ed")), CursorResult[Unpack[tuple[Any, ...]]]
    )
    assert_type(
        await session.execute(update(User).values(name="ed")), CursorResult[Unpack[tuple[Any, ...]]]
    )
    assert_type(await session.execute(update(User), params), CursorResult[Unpack[tuple[Any, ...]]])
    assert_type(await session.execute(delete(User)), CursorResult[Unpack[tuple[Any, ...]]])
    by_id = delete(audit_log).where(audit_log.c.id == bindparam("entry_id"))
    assert_type(await session.execute(by_id, many), CursorResult[Unpack[tuple[Any, ...]]])
    assert_type((await session.execute(delete(User))).rowcount, int)
    # The ORM bulk forms: no CursorResult at run time.
    assert_type(await session.execute(insert(User), params), Result[Unpack[tuple[Any, ...]]])
    assert_type(await session.execute(insert(User), many), Result[Unpack[tuple[Any, ...]]])
    assert_type(await session.execute(update(User), many), Result[Unpack[tuple[Any, ...]]])
    _ = (await session.execute(update(User), many)).rowcount  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]


async def untyped_statements_give_the_any_forms(session: AsyncSession) -> None:
    assert_type(
        await session.execute(text("DELETE FROM users")), CursorResult[Unpack[tuple[Any, ...]]]
    )
    statement = text("SELECT id FROM users").columns(column("id"))
    assert_type(await session.execute(statement), Result[Unpack[tuple[Any, ...]]])
    assert_type(await session.scalar(text("SELECT 1")), Any)
    assert_type(await session.scalars(text("SELECT 1")), ScalarResult[Any])
    assert_type(await session.stream(text("SELECT 1")), AsyncResult[Unpack[tuple[Any, ...]]])
    assert_type(await session.stream_scalars(text("SELECT 1")), AsyncScalarResult[Any])


async def scalar_forms_give_the_first_column(session: AsyncSession) -> None:
    assert_type(await session.scalar(select(User.id)), int | None)
    assert_type(await session.scalar(select(User.name, User.id)), str | None)
    assert_type(await session.scalar(select(func.count()).select_from(User)), int | None)
    assert_type(await session.scalars(select(User)), ScalarResult[User])
    assert_type(await session.scalars(select(User.name, User.id)), ScalarResult[str])
    assert_type(await session.stream(select(User.id, User.name)), AsyncResult[int, str])
    assert_type(await session.stream_scalars(select(User.id, User.name)), AsyncScalarResult[int])


async def entity_members_keep_the_entity_type(session: AsyncSession, detached: User) -> None:
    assert_type(await session.get(User, 1), User | None)
    assert_type(await session.get_one(User, (1,)), User)
    assert_type(await session.merge(detached), User)
    assert_type(await session.merge_all([detached]), Sequence[User])
    await session.get(detached, 1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def count_named(session: Session, name: str) -> int:
    return session.query(User).filter_by(name=name).count()


def route(session: RoutingSession, /) -> str:
    return "primary"


async def run_sync_is_typed_from_the_sync_session_class(
    plain: AsyncSession, routing: AsyncSession[RoutingSession]
) -> None:
    assert_type(await plain.run_sync(count_named, "ed"), int)
    assert_type(await routing.run_sync(count_named, "ed"), int)
    assert_type(await routing.run_sync(route), str)
    await plain.run_sync(count_named, 1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await plain.run_sync(route)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


async def properties_and_transactions_are_typed(session: AsyncSession[RoutingSession]) -> None:
    assert_type(session.no_autoflush, AbstractContextManager[RoutingSession, None])
    assert_type(session.info, dict[Any, Any])
    assert_type(session.execution_options, immutabledict[str, Any])
    assert_type(session.dirty, IdentitySet)
    assert_type(session.bind, AsyncEngine | AsyncConnection | None)
    assert_type(session.get_async_bind(), AsyncEngine | AsyncConnection)
    assert_type(session.get_bind(), Engine | Connection)
    assert_type(session.is_active, bool)
    assert_type(session.begin(), AsyncSessionTransaction)
    # pyright types an await by the Awaitable base SQLAlchemy's transaction class declares, and
    # sees SQLAlchemy's AsyncSessionTransaction (the same members); mypy sees sa_async's.
    assert_type(await session.begin_nested(), AsyncSessionTransaction)  # pyright: ignore[reportAssertTypeFailure]
    assert_type(session.get_transaction(), AsyncSessionTransaction | None)
    assert_type(await session.connection(), AsyncConnection)
    assert_type(AsyncSession.object_session(User()), Session | None)
    assert_type(async_object_session(User()), AsyncSession | None)
    async with session.begin() as transaction:
        assert_type(transaction, AsyncSessionTransaction)
    async with session as entered:
        assert_type(entered, AsyncSession[RoutingSession])
    session.execution_options = {"yield_per": 10}  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
    session.is_active = True  # type: ignore[misc]  # pyright: ignore[reportAttributeAccessIssue]


def sessionmakers_carry_the_session_type(engine: AsyncEngine) -> None:
    plain = async_sessionmaker(engine, expire_on_commit=False)
    assert_type(plain, async_sessionmaker[AsyncSession[Session]])
    assert_type(plain(), AsyncSession[Session])
    custom = async_sessionmaker(engine, class_=RoutingAsyncSession)
    assert_type(custom, async_sessionmaker[RoutingAsyncSession])
    assert_type(custom(), RoutingAsyncSession)
    assert_type(custom.class_, type[RoutingAsyncSession])
    routing = async_sessionmaker(engine, sync_session_class=RoutingSession)
    assert_type(routing, async_sessionmaker[AsyncSession[RoutingSession]])
    assert_type(routing(autoflush=False).sync_session, RoutingSession)
    assert_type(async_sessionmaker(), async_sessionmaker[AsyncSession[Session]])
    # SQLAlchemy-style annotations, and a sessionmaker of a subclass where one of the base fits.
    annotated: async_sessionmaker[AsyncSession] = plain
    widened: async_sessionmaker[AsyncSession] = custom
    del annotated, widened
    async_sessionmaker(engine, class_=Session)  # type: ignore[type-var, sa-async-session-class, unused-ignore]  # pyright: ignore[reportCallIssue, reportArgumentType]
    async_sessionmaker(create_engine("sqlite://"))  # type: ignore[call-overload, sa-async-sync-bind, unused-ignore]  # pyright: ignore[reportArgumentType]


async def begin_gives_the_session_type(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, sync_session_class=RoutingSession)
    async with maker.begin() as session:
        assert_type(session, AsyncSession[RoutingSession])


def _shard_of(mapper: Mapper[Any] | None, instance: object, clause: ClauseElement | None) -> str:
    return "a"


def _shards_of_identity(
    mapper: Mapper[Any],
    primary_key: Any,
    *,
    lazy_loaded_from: Any,
    execution_options: Any,
    **kw: Any,
) -> list[str]:
    return ["a", "b"]


def _shards_of_statement(orm_context: ORMExecuteState) -> list[str]:
    return ["a", "b"]


def _count_per_shard(session: ShardedSession, table: str) -> dict[str, int]:
    return {}


async def sharded_sessions_are_typed_end_to_end(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(
        sync_session_class=ShardedSession,
        shards={"a": engine.sync_engine, "b": engine.sync_engine},
        shard_chooser=_shard_of,
        identity_chooser=_shards_of_identity,
        execute_chooser=_shards_of_statement,
    )
    assert_type(maker, async_sessionmaker[AsyncSession[ShardedSession]])
    async with maker() as session:
        assert_type(session.sync_session, ShardedSession)
        assert_type(await session.run_sync(_count_per_shard, "users"), dict[str, int])
        await session.run_sync(count_named, "ada")  # a function of any Session accepts it
        await session.run_sync(route)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    routing = async_sessionmaker(engine, sync_session_class=RoutingSession)
    async with routing() as routed:
        assert_type(await routed.run_sync(route), str)
        await routed.run_sync(_count_per_shard, "users")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
