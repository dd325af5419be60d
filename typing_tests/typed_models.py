"""Models and session classes that the type tests share (YAML cases and assert_type files).

The YAML cases import this module by name: ``typing_tests/conftest.py`` puts this directory on
their ``MYPYPATH``.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    attribute_keyed_dict,
    mapped_column,
    relationship,
)

from sa_async import AsyncAttrs, AsyncSession


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    nickname: Mapped[str | None] = mapped_column(String(50))
    addresses: Mapped[list[Address]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User] = relationship(back_populates="addresses")


class Author(Base):
    """Every kind of attribute that ``awaitable_attrs`` loads (test_plugin_awaitable_attrs.yml)."""

    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    bio: Mapped[str] = mapped_column(String(500), deferred=True)
    books: Mapped[list[Book]] = relationship(back_populates="author")
    book_set: Mapped[set[Book]] = relationship(viewonly=True)
    books_by_title: Mapped[dict[str, Book]] = relationship(
        collection_class=attribute_keyed_dict("title"), viewonly=True
    )

    @hybrid_property
    def name_length(self) -> int:
        return len(self.name)

    @property
    def signature(self) -> str:
        return f"-- {self.name}"

    def rename(self, name: str) -> None:
        self.name = name

    @classmethod
    def anonymous(cls) -> Author:
        return cls(name="anonymous")

    @staticmethod
    def normalise(name: str) -> str:
        return name.strip()


class Book(Base):
    """A book whose author may be unknown: an optional many-to-one relationship."""

    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author | None] = relationship(back_populates="books")


audit_log = Table(
    "audit_log",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("message", String(100)),
)
"""A Core table, for the statements that act on tables rather than on mapped classes."""


class RoutingSession(Session):
    """A sync session subclass, as a routing (read/write split) session would be."""


class RoutingAsyncSession(AsyncSession[RoutingSession]):
    """An AsyncSession subclass that proxies a RoutingSession."""

    sync_session_class = RoutingSession
