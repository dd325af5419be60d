"""async_sessionmaker (``sa_async/maker.py``) against each database.

Sessions built with the maker's settings and the caller's (``info`` merged), ``class_`` and
``sync_session_class``, ``configure()`` and ``repr()``; ``async with maker.begin() as session:``
commits (or rolls back) and closes the session, and a commit cancelled midway finishes first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

import sa_async
from sa_async import AsyncEngine, AsyncSession, async_sessionmaker
from sa_async.exc import SessionClassError
from tests.conftest import Maker, ReadBack, add_users, checked_out, stored_names, untyped
from tests.models import RoutingSession, TaggedAsyncSession, User

# -- async_sessionmaker


def test_class_that_is_not_an_async_session_subclass_raises_session_class_error() -> None:
    assert issubclass(SessionClassError, sa_exc.ArgumentError)
    for wrong in (Session, object, AsyncSession(), sqlalchemy_asyncio.AsyncSession()):
        with pytest.raises(SessionClassError, match="class_"):
            async_sessionmaker(class_=untyped(wrong))


async def test_sessionmaker_builds_configured_sessions(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    session = maker()
    assert type(session) is AsyncSession
    assert session.bind is engine
    assert session.sync_session.expire_on_commit is False
    assert session.autoflush is False
    local = maker(autoflush=True)
    assert local.autoflush is True and local.sync_session.expire_on_commit is False
    assert maker.class_ is AsyncSession
    assert maker.kw["expire_on_commit"] is False


def test_sessionmaker_merges_local_info_over_its_own() -> None:
    maker = async_sessionmaker(info={"a": 1, "b": 1})
    assert maker().info == {"a": 1, "b": 1}
    assert maker(info={"b": 2, "c": 3}).info == {"a": 1, "b": 2, "c": 3}
    assert maker.kw["info"] == {"a": 1, "b": 1}
    first, second = maker(), maker()
    first.info["mutated"] = True
    assert "mutated" not in second.info and "mutated" not in maker.kw["info"]


def test_sessionmaker_configure_changes_later_sessions(tmp_path: Path) -> None:
    maker = async_sessionmaker()
    before = maker()
    other = sa_async.create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    maker.configure(bind=other, expire_on_commit=False)
    after = maker()
    assert before.bind is None
    assert after.bind is other and after.sync_session.expire_on_commit is False


def test_sessionmaker_repr_shows_class_and_settings() -> None:
    maker = async_sessionmaker(class_=TaggedAsyncSession, expire_on_commit=False)
    shown = repr(maker)
    assert shown.startswith("async_sessionmaker(class_='TaggedAsyncSession'")
    assert "expire_on_commit=False" in shown and "bind=None" in shown


async def test_sessionmaker_class_and_sync_session_class(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, class_=TaggedAsyncSession)
    session = maker()
    assert type(session) is TaggedAsyncSession and session.tag == "tagged"
    routed = async_sessionmaker(engine, sync_session_class=RoutingSession)()
    assert type(routed) is AsyncSession
    assert type(routed.sync_session) is RoutingSession


# -- maker.begin()


async def test_sessionmaker_begin_commits_and_closes(
    engine: AsyncEngine, maker: Maker, read_back: ReadBack
) -> None:
    async with maker.begin() as session:
        assert isinstance(session, AsyncSession)
        assert session.in_transaction()
        ann = User(name="ann")
        session.add(ann)
    assert await stored_names(read_back) == ["ann"]
    assert not session.in_transaction()
    assert inspect(ann).detached
    assert checked_out(engine) == 0


async def test_sessionmaker_begin_rolls_back_on_error_and_closes(
    engine: AsyncEngine, maker: Maker, read_back: ReadBack
) -> None:
    with pytest.raises(RuntimeError, match="body failed"):
        async with maker.begin() as session:
            ann = User(name="ann")
            session.add(ann)
            await session.flush()
            raise RuntimeError("body failed")
    assert await stored_names(read_back) == []
    assert inspect(ann).transient  # expunged by the rollback
    assert checked_out(engine) == 0


async def test_sessionmaker_begin_reports_a_failed_commit(
    engine: AsyncEngine, maker: Maker, read_back: ReadBack
) -> None:
    (ann_id,) = await add_users(maker, "ann")
    with pytest.raises(sa_exc.IntegrityError):
        async with maker.begin() as session:
            session.add(User(name="new"))
            session.add(User(id=ann_id, name="duplicate key"))
    assert await stored_names(read_back) == ["ann"]
    assert checked_out(engine) == 0


async def test_sessionmaker_begin_completes_a_commit_cancelled_midway(
    engine: AsyncEngine, maker: Maker, read_back: ReadBack
) -> None:
    commit_started = asyncio.Event()

    def slow_before_commit(sync_session: Session) -> None:
        commit_started.set()
        await_(asyncio.sleep(0.05))

    async def body() -> None:
        async with maker.begin() as session:
            event.listen(session.sync_session, "before_commit", slow_before_commit)
            session.add(User(name="committed"))

    task = asyncio.ensure_future(body())
    await commit_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Neither half-committed nor abandoned: the commit finished, then the task was cancelled.
    assert await stored_names(read_back) == ["committed"]
    assert checked_out(engine) == 0
