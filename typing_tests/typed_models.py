"""Models and session classes that the type tests share (YAML cases and assert_type files).

The YAML cases import this module by name: ``typing_tests/conftest.py`` puts this directory on
their ``MYPYPATH``.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

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
