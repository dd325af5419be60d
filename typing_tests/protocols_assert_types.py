"""AsyncSessionProtocol and SyncSessionProtocol accept sessions and registries alike.

Checked by ``test_assert_types.py`` with mypy and basedpyright, never run; misuse lines carry
both checkers' ignore comments, which must stay needed.
"""

from __future__ import annotations

import asyncio
from typing import Any, assert_type

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import CursorResult, Result, ScalarResult
from sqlalchemy.orm import Session, sessionmaker
from typing_extensions import Unpack

from sa_async import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionProtocol,
    SyncSessionProtocol,
    async_scoped_session,
    async_sessionmaker,
    scoped_session,
)
from typed_models import RoutingAsyncSession, RoutingSession, User


async def rename(session: AsyncSessionProtocol, user_id: int, name: str) -> int:
    """Library code: one annotation for a session and a scoped registry."""
    result = await session.execute(update(User).where(User.id == user_id).values(name=name))
    assert_type(result, CursorResult[Unpack[tuple[Any, ...]]])
    assert_type(await session.scalars(select(User.name, User.id)), ScalarResult[str])
    assert_type(await session.get(User, user_id), User | None)
    assert_type(session.sync_session, Session)
    return result.rowcount


def route(session: RoutingSession, /, table: str) -> str:
    return table


async def routed(session: AsyncSessionProtocol[RoutingSession]) -> str:
    assert_type(session.sync_session, RoutingSession)
    return await session.run_sync(route, "users")


def count(session: SyncSessionProtocol) -> int:
    assert_type(session.execute(select(User.id, User.name)), Result[int, str])
    assert_type(session.scalars(select(User.name, User.id)), ScalarResult[str])
    return session.query(User).count()


async def every_async_session_kind_is_accepted(engine: AsyncEngine) -> None:
    plain = AsyncSession(engine)
    routing = AsyncSession(engine, sync_session_class=RoutingSession)
    registry = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
    routing_registry = async_scoped_session(
        async_sessionmaker(engine, class_=RoutingAsyncSession), asyncio.current_task
    )
    await rename(plain, 1, "ed")
    await rename(routing, 1, "ed")
    await rename(RoutingAsyncSession(engine), 1, "ed")
    await rename(registry, 1, "ed")
    await rename(routing_registry, 1, "ed")
    await routed(routing)
    await routed(routing_registry)
    await routed(plain)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await routed(registry)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def every_sync_session_kind_is_accepted(engine: Engine, async_engine: AsyncEngine) -> None:
    count(Session(engine))
    count(RoutingSession(engine))
    count(scoped_session(sessionmaker(engine)))
    count(scoped_session(sessionmaker(engine, class_=RoutingSession)))
    count(AsyncSession(async_engine))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
