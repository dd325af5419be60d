"""fastapi-users' SQLAlchemy adapter stores its users through sa_async's sessions.

``SQLAlchemyUserDatabase`` is written and typed for SQLAlchemy's ``AsyncSession``; handed
sa_async's, each of its operations (create, get, get_by_email, update, delete) runs and commits
through it, and what it returns agrees with what the database holds, read on a connection of
its own.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import String
from sqlalchemy.exc import SADeprecationWarning
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker
from tests.conftest import ReadBack, checked_out
from tests.integration.conftest import engine_with_tables

# The adapter's module decorates its mixins with declarative_mixin, which SQLAlchemy 2.1
# deprecates on import; that is the library's to drop, and says nothing about sa_async.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The declarative_mixin decorator", SADeprecationWarning)
    from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
    from fastapi_users_db_sqlalchemy.generics import GUID


class Base(DeclarativeBase):
    pass


class User(Base):
    """fastapi-users' user table. Its ``SQLAlchemyBaseUserTableUUID`` mixin annotates plain
    ``Column`` attributes without ``Mapped[]``, which SQLAlchemy 2.1 refuses to map (even with
    ``__allow_unmapped__``), so the same columns are declared here."""

    __tablename__ = "user"

    # fastapi-users' UserProtocol has plain mutable attributes (``email: str``), which checkers
    # do not match with ``Mapped[str]`` descriptors; the library's own mixins declare them
    # plainly for checkers too.
    if TYPE_CHECKING:
        id: uuid.UUID
        email: str
        hashed_password: str
        is_active: bool
        is_superuser: bool
        is_verified: bool
    else:
        id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid.uuid4)
        email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
        hashed_password: Mapped[str] = mapped_column(String(1024))
        is_active: Mapped[bool] = mapped_column(default=True)
        is_superuser: Mapped[bool] = mapped_column(default=False)
        is_verified: Mapped[bool] = mapped_column(default=False)


UserDatabase = SQLAlchemyUserDatabase[User, uuid.UUID]


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """The shared fixtures' ``engine`` (which ``read_back`` reads through), on aiosqlite only,
    with this module's table."""
    async with engine_with_tables(sqlite_url, Base.metadata) as engine:
        yield engine


@pytest.fixture
async def user_db(engine: AsyncEngine) -> AsyncIterator[UserDatabase]:
    """The adapter on an sa_async session, built as fastapi-users' documentation builds it
    (``expire_on_commit=False``); every connection is returned to the pool afterwards."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield SQLAlchemyUserDatabase(session, User)
    assert checked_out(engine) == 0


async def test_the_adapter_holds_sa_asyncs_session(user_db: UserDatabase) -> None:
    assert type(user_db.session) is AsyncSession


async def test_create_commits_the_user_and_returns_it_with_its_defaults(
    user_db: UserDatabase, read_back: ReadBack
) -> None:
    user = await user_db.create({"email": "Ann@Example.com", "hashed_password": "hash"})

    assert isinstance(user.id, uuid.UUID)
    assert (user.email, user.is_active, user.is_superuser, user.is_verified) == (
        "Ann@Example.com",
        True,
        False,
        False,
    )
    # The GUID column stores the UUID as text on SQLite.
    assert await read_back('SELECT id, email, is_active FROM "user"') == [
        (str(user.id), "Ann@Example.com", 1)
    ]


async def test_get_finds_a_user_by_id_and_none_for_an_unknown_id(user_db: UserDatabase) -> None:
    user = await user_db.create({"email": "ann@example.com", "hashed_password": "hash"})

    assert await user_db.get(user.id) is user
    assert await user_db.get(uuid.uuid4()) is None


async def test_get_by_email_ignores_case(user_db: UserDatabase) -> None:
    user = await user_db.create({"email": "Ann@Example.com", "hashed_password": "hash"})
    await user_db.create({"email": "bob@example.com", "hashed_password": "hash"})

    assert await user_db.get_by_email("ann@example.COM") is user
    assert await user_db.get_by_email("cy@example.com") is None


async def test_update_commits_the_changed_fields(
    user_db: UserDatabase, read_back: ReadBack
) -> None:
    user = await user_db.create({"email": "ann@example.com", "hashed_password": "hash"})

    updated = await user_db.update(user, {"is_verified": True, "hashed_password": "new hash"})

    assert updated is user and updated.is_verified and updated.hashed_password == "new hash"
    assert await read_back('SELECT email, hashed_password, is_verified FROM "user"') == [
        ("ann@example.com", "new hash", 1)
    ]


async def test_delete_commits_the_removal(user_db: UserDatabase, read_back: ReadBack) -> None:
    ann = await user_db.create({"email": "ann@example.com", "hashed_password": "hash"})
    await user_db.create({"email": "bob@example.com", "hashed_password": "hash"})

    await user_db.delete(ann)

    assert await user_db.get(ann.id) is None
    assert await read_back('SELECT email FROM "user"') == [("bob@example.com",)]
