"""The fast path of ``AsyncSession.get()`` (``sa_async/_identity.py``) keeps SQLAlchemy's semantics.

An object already in the identity map is returned without SQL and without entering the bridge;
every case where the sync ``Session.get`` would query, refresh or decide otherwise (an expired or
deleted object, ``populate_existing``, options, another class under the same key, a dict
identity, a session class overriding ``get()``, a key of the wrong length) still behaves as it
does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, event, update
from sqlalchemy.orm import Session

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker
from tests.conftest import recorded_bridge_calls, stored_user
from tests.models import Address, User


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_get_hit_returns_the_identity_map_object_without_sql(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with count_statements(engine) as statements:
            assert await session.get(User, user_id) is user
            assert await session.get(User, (user_id,)) is user
        assert statements == []


async def test_get_hit_is_served_without_entering_the_bridge(
    maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with recorded_bridge_calls(monkeypatch) as bridged:
            assert await session.get(User, user_id) is user
            assert bridged == []
            session.expire(user)
            assert await session.get(User, user_id) is user
            assert len(bridged) == 1


async def test_get_of_an_expired_object_still_reloads_it(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker(expire_on_commit=False) as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # ends the read transaction: SQLite would lock the writer out
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="grace"))
        session.expire(user)
        assert await session.get(User, user_id) is user
        assert user.name == "grace"


async def test_get_of_an_object_deleted_elsewhere_and_expired_returns_none(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # expires everything (expire_on_commit)
        async with engine.begin() as connection:
            await connection.execute(delete(User))
        assert await session.get(User, user_id) is None
        assert user not in session


async def test_get_with_populate_existing_still_refreshes(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker(expire_on_commit=False) as session:
        user = await session.get_one(User, user_id)
        await session.commit()  # ends the read transaction: SQLite would lock the writer out
        async with engine.begin() as connection:
            await connection.execute(update(User).values(name="grace"))
        assert user.name == "ada"
        assert await session.get(User, user_id, populate_existing=True) is user
        assert user.name == "grace"


async def test_get_with_options_queries_as_before(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        with count_statements(engine) as statements:
            assert await session.get(User, user_id, with_for_update=True) is user
        assert len(statements) == 1


async def test_get_of_another_class_with_the_same_key_is_not_served(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        await session.get_one(User, user_id)
        assert await session.get(Address, user_id) is None


async def test_get_with_a_dict_identity_takes_the_full_path(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        user = await session.get_one(User, user_id)
        assert await session.get(User, {"id": user_id}) is user


async def test_get_of_a_session_class_overriding_get_goes_through_it(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> None:
    calls: list[object] = []

    class CountingSession(Session):
        def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
            calls.append(ident)
            return super().get(entity, ident, **kw)

    user_id = await stored_user(maker)
    async with AsyncSession(engine, sync_session_class=CountingSession) as session:
        user = await session.get(User, user_id)
        assert await session.get(User, user_id) is user
        assert calls == [user_id, user_id]


async def test_get_of_a_wrong_length_key_still_raises(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await stored_user(maker)
    async with maker() as session:
        await session.get_one(User, user_id)
        with pytest.raises(Exception, match="Incorrect number of values"):
            await session.get(User, (user_id, 2))
