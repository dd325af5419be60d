"""sqladmin's admin pages run on an sa_async sessionmaker.

sqladmin decides between its sync and async code paths by looking for SQLAlchemy's
``AsyncSession`` in the maker's ``class_.__mro__``: it finds it in sa_async's, and then builds,
configures and uses sa_async's sessions for every page. The create, edit and delete forms change
what the database holds (read back on a connection of its own), and the list and details pages
show it. Requests go through httpx's ASGI transport on the tests' event loop, where the engine
lives, rather than through Starlette's threaded test client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqladmin import Admin, ModelView
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker
from tests.conftest import ReadBack, checked_out
from tests.integration.conftest import engine_with_tables


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class ItemAdmin(ModelView, model=Item):
    column_list = (Item.id, Item.name)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """The shared fixtures' ``engine`` (which ``read_back`` reads through), on aiosqlite only,
    with this module's table."""
    async with engine_with_tables(sqlite_url, Base.metadata) as engine:
        yield engine


@pytest.fixture
def maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine)


@pytest.fixture
def admin(engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]) -> Admin:
    """The admin of ``Item`` on a Starlette application, with sa_async's maker."""
    admin = Admin(Starlette(), engine=engine, session_maker=maker)
    admin.add_view(ItemAdmin)
    return admin


@pytest.fixture
async def client(admin: Admin, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=admin.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
        yield http_client
    # Every page has closed its session: no connection stays checked out.
    assert checked_out(engine) == 0


async def add_items(maker: async_sessionmaker[AsyncSession], *names: str) -> None:
    async with maker.begin() as session:
        session.add_all([Item(name=name) for name in names])


def test_admin_takes_sa_asyncs_maker_for_an_async_one(
    admin: Admin, maker: async_sessionmaker[AsyncSession]
) -> None:
    assert admin.is_async and ItemAdmin.is_async
    assert admin.session_maker is maker and ItemAdmin.session_maker is maker
    # sqladmin configures the maker it is given: sa_async's configure() took the settings.
    assert maker.kw["autoflush"] is False


async def test_the_create_form_inserts_the_row_and_redirects_to_the_list(
    client: httpx.AsyncClient, read_back: ReadBack
) -> None:
    response = await client.post(
        "/admin/item/create", data={"name": "Ada Lovelace", "save": "Save"}
    )

    assert response.status_code == 302
    assert response.headers["location"] == "http://test/admin/item/list"
    assert await read_back("SELECT id, name FROM items") == [(1, "Ada Lovelace")]


async def test_the_list_page_shows_a_row_created_through_the_form(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/admin/item/create", data={"name": "Ada Lovelace", "save": "Save"})

    response = await client.get("/admin/item/list")

    assert response.status_code == 200
    assert "Ada Lovelace" in response.text


async def test_the_details_page_shows_the_row(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_items(maker, "Ada Lovelace", "Grace Hopper")

    response = await client.get("/admin/item/details/2")

    assert response.status_code == 200
    assert "Grace Hopper" in response.text and "Ada Lovelace" not in response.text


async def test_the_edit_form_updates_the_row(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession], read_back: ReadBack
) -> None:
    await add_items(maker, "Ada Lovelace")

    response = await client.post("/admin/item/edit/1", data={"name": "Ada King", "save": "Save"})

    assert response.status_code == 302
    assert await read_back("SELECT id, name FROM items") == [(1, "Ada King")]


async def test_delete_removes_the_rows_named(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession], read_back: ReadBack
) -> None:
    await add_items(maker, "Ada Lovelace", "Grace Hopper", "Alan Turing")

    response = await client.delete("/admin/item/delete", params={"pks": "1,3"})

    assert response.status_code == 200
    # sqladmin reports a failed deletion in the list URL it answers with.
    assert "error" not in response.text
    assert await read_back("SELECT id, name FROM items") == [(2, "Grace Hopper")]
