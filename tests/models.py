"""ORM models, and session classes, shared by the runtime tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ClauseElement, Connection, Engine, ForeignKey, String, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, deferred, mapped_column, relationship

from sa_async import AsyncAttrs, AsyncSession


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    bio: Mapped[str | None] = deferred(mapped_column(String(200), nullable=True))
    addresses: Mapped[list[Address]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Address.id"
    )


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User] = relationship(back_populates="addresses")


class Note(Base):
    """Routed to the main database by ``RoutingSession``."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(100))


class AuditEntry(Base):
    """Routed to the audit database by ``RoutingSession``."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(String(100))


class RoutingSession(Session):
    """Sends AuditEntry statements to ``info["sync_engines"]["audit"]``, the rest to "main"."""

    def get_bind(
        self,
        mapper: Any | None = None,
        *,
        clause: ClauseElement | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        engines: dict[str, Engine] = self.info["sync_engines"]
        if mapper is not None and issubclass(inspect(mapper).class_, AuditEntry):
            return engines["audit"]
        return engines["main"]


class TaggedAsyncSession(AsyncSession):
    """A user subclass of AsyncSession, for ``class_=``."""

    tag = "tagged"
