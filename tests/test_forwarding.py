"""Forwarding members (``sa_async/_forwarding.py``): the pass-through members of AsyncSession
and of the scoped registries are compiled with the proxied member's own parameters and call it as
SQLAlchemy's proxies do; those of async_scoped_session keep the concurrent-use guard."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ClassVar

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
import sqlalchemy.orm as sqlalchemy_orm
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    scoped_session,
)
from sa_async.exc import ConcurrentSessionUseError
from tests.models import User


class RecordingSession(Session):
    """Records how the proxies call the sync session."""

    calls: ClassVar[list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = []

    def add(self, instance: object, *args: Any, **kw: Any) -> None:
        type(self).calls.append(("add", args, kw))
        super().add(instance, *args, **kw)

    def is_modified(self, instance: object, *args: Any, **kw: Any) -> bool:
        type(self).calls.append(("is_modified", args, kw))
        return super().is_modified(instance, *args, **kw)

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        type(self).calls.append(("get_bind", (mapper,), kw))
        return super().get_bind(mapper, **kw)

    def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        type(self).calls.append(("get", (), kw))
        return super().get(entity, ident, **kw)


async def test_pass_through_members_call_the_sync_session_as_sqlalchemys_do(
    engine: AsyncEngine,
) -> None:
    def calls_of(session: Any) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        RecordingSession.calls = []
        user = User(name="ann")
        session.add(user)
        session.is_modified(user)
        return RecordingSession.calls

    ours = AsyncSession(engine, sync_session_class=RecordingSession)
    theirs = sqlalchemy_asyncio.AsyncSession(engine, sync_session_class=RecordingSession)
    assert calls_of(ours) == calls_of(theirs)
    await ours.close()
    await theirs.close()
    for name in ("add", "add_all", "expire", "expunge", "is_modified", "__contains__"):
        member = getattr(AsyncSession, name)
        assert inspect.signature(member) == inspect.signature(getattr(Session, name)), name
        assert member.__module__ == "sa_async.session" and member.__name__ == name


def test_scoped_pass_through_members_call_the_session_as_sqlalchemys_do() -> None:
    def calls_of(scoped: Any) -> list[tuple[str, int, list[str]]]:
        RecordingSession.calls = []
        scoped.add(User(name="ann"))
        scoped.get(User, 1)
        scoped.get_bind(User)
        scoped.remove()
        # Each get() builds its own statement: compare the shape of the calls.
        return [(name, len(args), sorted(kw)) for name, args, kw in RecordingSession.calls]

    engine = create_engine("sqlite://")
    User.metadata.create_all(engine)
    factory = sqlalchemy_orm.sessionmaker(engine, class_=RecordingSession)
    ours = calls_of(scoped_session(factory))
    assert ours == calls_of(sqlalchemy_orm.scoped_session(factory))
    assert ("add", 0, ["_warn"]) in ours


async def test_async_scoped_pass_through_members_keep_the_guard(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    scoped = async_scoped_session(maker, scopefunc=lambda: "shared")
    session = scoped()
    started = asyncio.Event()

    def hold(sync_session: Session) -> None:
        started.set()
        await_(asyncio.sleep(0.05))

    holder = asyncio.ensure_future(session.run_sync(hold))
    await started.wait()
    with pytest.raises(ConcurrentSessionUseError, match=r"so add\(\) from"):
        await asyncio.ensure_future(asyncio.to_thread(scoped.add, User(name="x")))
    await holder
    await scoped.remove()
