"""sa_async: SQLAlchemy's asyncio session layer, with exact types and clear errors.

Switch ``from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker`` to
``from sa_async import AsyncSession, async_sessionmaker``; the types come from ``sa_async-stubs``.
"""

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncMappingResult,
    AsyncResult,
    AsyncScalarResult,
    AsyncTransaction,
    AsyncTupleResult,
    async_engine_from_config,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from .attrs import AsyncAttrs
from .maker import async_sessionmaker
from .protocols import AsyncSessionProtocol, SyncSessionProtocol
from .scoping import async_scoped_session, scoped_session
from .session import (
    AsyncSession,
    async_object_session,
    async_session,
    close_all_sessions,
)
from .transaction import AsyncSessionTransaction

__version__ = "0.1.0"

__all__ = [
    "AsyncAttrs",
    "AsyncConnection",
    "AsyncEngine",
    "AsyncMappingResult",
    "AsyncResult",
    "AsyncScalarResult",
    "AsyncSession",
    "AsyncSessionProtocol",
    "AsyncSessionTransaction",
    "AsyncTransaction",
    "AsyncTupleResult",
    "Session",
    "SyncSessionProtocol",
    "async_engine_from_config",
    "async_object_session",
    "async_scoped_session",
    "async_session",
    "async_sessionmaker",
    "close_all_sessions",
    "create_async_engine",
    "scoped_session",
    "sessionmaker",
]
