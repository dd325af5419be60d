"""Protocols for code that takes a session or a scoped registry of sessions alike.

``AsyncSessionProtocol`` is what ``AsyncSession`` and ``async_scoped_session`` share, and
``SyncSessionProtocol`` what SQLAlchemy's ``Session`` and ``scoped_session`` share; both are
satisfied structurally. Their members are declared in ``sa_async-stubs/protocols.pyi``: at run
time the classes are names to annotate with (subscriptable, not ``runtime_checkable``).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session
from typing_extensions import TypeVar

_S_co = TypeVar("_S_co", bound=Session, default=Session, covariant=True)


class AsyncSessionProtocol(Protocol[_S_co]):
    """The async session surface shared by AsyncSession and async_scoped_session."""


class SyncSessionProtocol(Protocol):
    """The sync session surface shared by Session and scoped_session."""


__all__ = ["AsyncSessionProtocol", "SyncSessionProtocol"]
