"""sa_async's objects are accepted wherever SQLAlchemy's are expected, by every checker.

Libraries annotate their parameters with SQLAlchemy's classes (``session: AsyncSession``,
``session_maker: async_sessionmaker[AsyncSession]``, ``async_scoped_session[...]``,
``scoped_session[Session]``); sa_async's classes subclass SQLAlchemy's, and their stubs say so.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

from sqlalchemy import select
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.orm import scoped_session as sqlalchemy_scoped_session

import sa_async
from sa_async import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_scoped_session,
    async_sessionmaker,
    scoped_session,
)


class Base(sqlalchemy_asyncio.AsyncAttrs, DeclarativeBase):
    """Models on SQLAlchemy's AsyncAttrs, as libraries' base classes are."""


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


# A library's functions, annotated with SQLAlchemy's classes.


async def count_items(session: sqlalchemy_asyncio.AsyncSession) -> int:
    return len((await session.scalars(select(Item))).all())


def library_config(
    session_maker: sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession],
) -> None: ...


def library_registry(
    registry: sqlalchemy_asyncio.async_scoped_session[sqlalchemy_asyncio.AsyncSession],
) -> None: ...


def library_sync_registry(registry: sqlalchemy_scoped_session[Session]) -> None: ...


async def library_transaction(transaction: sqlalchemy_asyncio.AsyncSessionTransaction) -> None:
    await transaction.commit()


async def sa_asyncs_objects_are_accepted(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine)
    library_config(maker)
    async with maker() as session:
        assert_type(await count_items(session), int)
        transaction = session.begin()
        assert_type(transaction, AsyncSessionTransaction)
        await library_transaction(transaction)
    registry = async_scoped_session(maker, scopefunc=asyncio.current_task)
    library_registry(registry)
    library_sync_registry(scoped_session(sessionmaker()))
    session_of_either: sqlalchemy_asyncio.AsyncSession = AsyncSession(engine)
    await session_of_either.close()


def a_maker_of_sqlalchemys_session_class(engine: AsyncEngine) -> None:
    # class_ takes any subclass of SQLAlchemy's AsyncSession, SQLModel's for one.
    maker = async_sessionmaker(engine, class_=sqlalchemy_asyncio.AsyncSession)
    assert_type(maker, async_sessionmaker[sqlalchemy_asyncio.AsyncSession])
    assert_type(maker(), sqlalchemy_asyncio.AsyncSession)


def sa_asyncs_helper_types_its_own_sessions(item: Item) -> None:
    assert_type(sa_async.async_object_session(item), AsyncSession | None)
