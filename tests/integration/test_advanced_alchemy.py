"""advanced-alchemy runs on sa_async's session layer, on aiosqlite.

An ``SQLAlchemyAsyncConfig`` given sa_async's ``async_sessionmaker`` and ``AsyncSession`` makes
sa_async's sessions, and still installs its session listeners: advanced-alchemy only does so when
its maker is an instance of SQLAlchemy's ``async_sessionmaker``, which sa_async's is by
subclassing. The listener is shown to run (it alone stamps ``updated_at`` on update), and not to
run when disabled. ``SQLAlchemyAsyncRepository`` then adds, gets, lists, updates, counts and
deletes through sa_async's sessions, plain and scoped, and the database holds what it says.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest
from advanced_alchemy.base import BigIntBase
from advanced_alchemy.config import AsyncSessionConfig, SQLAlchemyAsyncConfig
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import DateTime, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

import sa_async

# What ``updated_at`` holds until something other than the INSERT writes it.
NEVER_UPDATED = datetime.datetime(2000, 1, 1)


class Gadget(BigIntBase):
    """A model whose ``updated_at`` has no ``onupdate``: only advanced-alchemy's
    ``touch_updated_timestamp`` before_flush listener changes it after the INSERT."""

    __tablename__ = "aa_gadget"

    name: Mapped[str] = mapped_column(String(50))
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(), default=NEVER_UPDATED)


class GadgetRepository(SQLAlchemyAsyncRepository[Gadget]):
    model_type = Gadget


class ConfigFactory(Protocol):
    async def __call__(self, *, touch_listener: bool = True) -> SQLAlchemyAsyncConfig: ...


@pytest.fixture
async def make_config(sqlite_url: str) -> AsyncIterator[ConfigFactory]:
    """Build advanced-alchemy configs on sa_async's maker and session class, with the tables
    created; their engines are disposed after the test."""
    configs: list[SQLAlchemyAsyncConfig] = []

    async def make(*, touch_listener: bool = True) -> SQLAlchemyAsyncConfig:
        config = SQLAlchemyAsyncConfig(
            connection_string=sqlite_url,
            session_maker_class=sa_async.async_sessionmaker,
            session_config=AsyncSessionConfig(class_=sa_async.AsyncSession, expire_on_commit=False),
            enable_touch_updated_timestamp_listener=touch_listener,
        )
        configs.append(config)
        async with config.get_engine().begin() as connection:
            await connection.run_sync(Gadget.metadata.create_all)
        return config

    try:
        yield make
    finally:
        for config in configs:
            await config.get_engine().dispose()


@pytest.fixture
async def config(make_config: ConfigFactory) -> SQLAlchemyAsyncConfig:
    """A config with advanced-alchemy's listeners enabled, as by default."""
    return await make_config()


async def database_rows(config: SQLAlchemyAsyncConfig) -> list[tuple[Any, ...]]:
    """The gadgets the database holds, read on a connection of its own (not through a session)."""
    async with config.get_engine().connect() as connection:
        result = await connection.execute(text("SELECT id, name FROM aa_gadget ORDER BY id"))
        return [tuple(row) for row in result]


async def stored_updated_at(config: SQLAlchemyAsyncConfig, gadget_id: int) -> datetime.datetime:
    async with config.get_engine().connect() as connection:
        stamp = await connection.scalar(select(Gadget.updated_at).where(Gadget.id == gadget_id))
    assert stamp is not None
    return stamp


async def rename_through_repository(config: SQLAlchemyAsyncConfig) -> int:
    """Add a gadget, then rename it through the repository; return its id."""
    async with config.get_session() as session:
        repository = GadgetRepository(session=session, auto_commit=True)
        gadget = await repository.add(Gadget(name="before"))
        assert await stored_updated_at(config, gadget.id) == NEVER_UPDATED
        gadget.name = "after"
        await repository.update(gadget)
    return gadget.id


async def test_the_config_builds_sa_asyncs_maker_and_its_sessions(
    config: SQLAlchemyAsyncConfig,
) -> None:
    maker = config.create_session_maker()
    assert isinstance(maker, sa_async.async_sessionmaker)
    assert config.session_maker is maker
    async with config.get_session() as session:
        assert type(session) is sa_async.AsyncSession
        assert isinstance(session.sync_session, Session)
        # The session config reached sa_async's maker, and through it the session.
        assert session.sync_session.expire_on_commit is False
        assert session.bind is config.get_engine()


async def test_advanced_alchemys_listener_stamps_updated_at_on_update(
    config: SQLAlchemyAsyncConfig,
) -> None:
    started = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    gadget_id = await rename_through_repository(config)
    assert await database_rows(config) == [(gadget_id, "after")]
    # The listener writes the UTC time; the column stores it without a zone.
    assert await stored_updated_at(config, gadget_id) >= started


async def test_without_the_listener_nothing_else_stamps_updated_at(
    make_config: ConfigFactory,
) -> None:
    # The negative control: with advanced-alchemy's listener disabled the same update leaves
    # updated_at alone, so the stamp above came from the listener, not from the model.
    config = await make_config(touch_listener=False)
    gadget_id = await rename_through_repository(config)
    assert await database_rows(config) == [(gadget_id, "after")]
    assert await stored_updated_at(config, gadget_id) == NEVER_UPDATED


async def test_the_repository_adds_gets_lists_updates_counts_and_deletes(
    config: SQLAlchemyAsyncConfig,
) -> None:
    async with config.get_session() as session:
        repository = GadgetRepository(session=session, auto_commit=True)
        assert repository.session is session

        lamp = await repository.add(Gadget(name="lamp"))
        added = await repository.add_many([Gadget(name="fan"), Gadget(name="kettle")])
        assert await database_rows(config) == [
            (lamp.id, "lamp"),
            (added[0].id, "fan"),
            (added[1].id, "kettle"),
        ]

        assert (await repository.get(lamp.id)).name == "lamp"
        assert await repository.count() == 3
        listed = await repository.get_many(Gadget.name != "fan", order_by=(Gadget.name, False))
        assert [gadget.name for gadget in listed] == ["kettle", "lamp"]

        lamp.name = "desk lamp"
        updated = await repository.update(lamp)
        assert updated.name == "desk lamp"
        assert (lamp.id, "desk lamp") in await database_rows(config)

        deleted = await repository.delete(added[0].id)
        assert deleted.name == "fan"
        assert await repository.count() == 2
        assert await database_rows(config) == [(lamp.id, "desk lamp"), (added[1].id, "kettle")]
        # A missing row surfaces as advanced-alchemy's error, raised from sa_async's execute.
        with pytest.raises(NotFoundError):
            await repository.get(added[0].id)


async def test_without_auto_commit_the_repository_leaves_the_transaction_to_the_session(
    config: SQLAlchemyAsyncConfig,
) -> None:
    async with config.get_session() as session:
        repository = GadgetRepository(session=session)
        await repository.add(Gadget(name="draft"))
        assert await repository.count() == 1
        assert session.in_transaction()
        assert await database_rows(config) == []
        await session.rollback()
        assert await repository.count() == 0


async def test_the_repository_works_through_sa_asyncs_scoped_session(
    config: SQLAlchemyAsyncConfig,
) -> None:
    maker = config.create_session_maker()
    assert isinstance(maker, sa_async.async_sessionmaker)
    registry = sa_async.async_scoped_session(maker, scopefunc=asyncio.current_task)
    try:
        repository = GadgetRepository(session=registry, auto_commit=True)
        gadget = await repository.add(Gadget(name="scoped"))
        assert type(registry()) is sa_async.AsyncSession
        assert await repository.count() == 1
        assert await database_rows(config) == [(gadget.id, "scoped")]
    finally:
        await registry.remove()
