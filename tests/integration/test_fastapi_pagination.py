"""fastapi-pagination and sqlakeyset page queries on sa_async's sessions.

fastapi-pagination's ``apaginate`` takes SQLAlchemy's async session types; on sa_async's
``AsyncSession`` and ``async_scoped_session`` its offset pagination counts the rows and fetches
the page asked for, and its cursor pagination, which hands the session to sqlakeyset, follows a
cursor to the next page. sqlakeyset's own ``select_page`` accepts sa_async's session, since it
checks ``isinstance`` against SQLAlchemy's ``AsyncSession``. fastapi-pagination builds its pages
inside SQLAlchemy's greenlet, where the items' relationships load lazily through sa_async's
sessions as they would through SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Unpack

import pytest
from fastapi_pagination import Page, Params, set_page
from fastapi_pagination.cursor import CursorPage, CursorParams
from fastapi_pagination.ext.sqlalchemy import apaginate
from pydantic import BaseModel, ConfigDict
from sqlakeyset.asyncio import select_page
from sqlalchemy import ForeignKey, Select, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
)
from tests.integration.conftest import engine_with_tables

ROWS = 5


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[Tag]] = relationship(order_by="Tag.id")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    label: Mapped[str] = mapped_column(String(20))


class TagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str


class ItemOut(BaseModel):
    """A response model of ``Item``: validating one reads ``Item.tags``, which loads lazily."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    tags: list[TagOut]


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """An aiosqlite engine with this module's tables, holding items 1 to 5 with a tag each."""
    async with engine_with_tables(sqlite_url, Base.metadata) as engine:
        async with async_sessionmaker(engine).begin() as session:
            session.add_all(
                Item(id=n, name=f"item {n}", tags=[Tag(label=f"tag {n}")])
                for n in range(1, ROWS + 1)
            )
        yield engine


@pytest.fixture
def maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine)


async def test_offset_pagination_counts_every_row_and_returns_the_page_asked_for(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    async with maker() as session:
        page: Page[Item] = await apaginate(
            session, select(Item).order_by(Item.id), Params(page=2, size=2)
        )

    assert isinstance(page, Page)
    assert (page.total, page.page, page.pages) == (ROWS, 2, 3)
    assert [item.id for item in page.items] == [3, 4]


async def test_offset_pagination_runs_through_an_async_scoped_session(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    # Offset pagination only: sqlakeyset, which cursor pagination hands the session to, takes
    # sessions, engines and connections but no scoped registry, SQLAlchemy's included.
    registry = async_scoped_session(maker, scopefunc=asyncio.current_task)
    try:
        page: Page[Item] = await apaginate(
            registry, select(Item).order_by(Item.id), Params(page=3, size=2)
        )
        # The items belong to the session of the current task's scope.
        assert all(item in registry() for item in page.items)
    finally:
        await registry.remove()

    assert page.total == ROWS
    assert [item.id for item in page.items] == [5]


async def test_cursor_pagination_follows_the_next_cursor_to_the_following_page(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    statement = select(Item).order_by(Item.id)
    async with maker() as session:
        first: CursorPage[Item] = await apaginate(session, statement, CursorParams(size=2))
        assert isinstance(first, CursorPage)
        assert [item.id for item in first.items] == [1, 2]
        assert first.previous_page is None and first.next_page is not None

        second: CursorPage[Item] = await apaginate(
            session, statement, CursorParams(size=2, cursor=first.next_page)
        )

    assert [item.id for item in second.items] == [3, 4]
    assert second.previous_page is not None and second.next_page is not None


async def test_sqlakeyset_pages_through_an_sa_async_session_itself(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    # sqlakeyset annotates its statement Select[_TP], _TP a tuple type, as SQLAlchemy 2.0's
    # Select was; 2.1's is generic over each column (Select[int, str]): only the gradual form fits.
    statement: Select[Unpack[tuple[Any, ...]]] = select(Item.id, Item.name).order_by(Item.id)
    async with maker() as session:
        first = await select_page(session, statement, per_page=2)
        second = await select_page(session, statement, per_page=2, page=first.paging.bookmark_next)
        last = await select_page(session, statement, per_page=2, page=second.paging.bookmark_next)

    assert [row.id for row in first] == [1, 2]
    assert [(row.id, row.name) for row in second] == [(3, "item 3"), (4, "item 4")]
    assert [row.id for row in last] == [5]
    assert second.paging.has_next and not last.paging.has_next


async def test_page_items_load_their_relationships_lazily_while_the_page_is_built(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    async with maker() as session:
        # The page validates each Item into an ItemOut, inside fastapi-pagination's greenlet.
        with set_page(Page[ItemOut]):
            page: Page[ItemOut] = await apaginate(
                session, select(Item).order_by(Item.id), Params(page=1, size=2)
            )

    assert page.items == [
        ItemOut(name="item 1", tags=[TagOut(label="tag 1")]),
        ItemOut(name="item 2", tags=[TagOut(label="tag 2")]),
    ]
