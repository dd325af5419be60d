from sqlalchemy.ext.asyncio import (
    AsyncConnection as AsyncConnection,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine as AsyncEngine,
)
from sqlalchemy.ext.asyncio import (
    AsyncMappingResult as AsyncMappingResult,
)
from sqlalchemy.ext.asyncio import (
    AsyncResult as AsyncResult,
)
from sqlalchemy.ext.asyncio import (
    AsyncScalarResult as AsyncScalarResult,
)
from sqlalchemy.ext.asyncio import (
    AsyncTransaction as AsyncTransaction,
)
from sqlalchemy.ext.asyncio import (
    AsyncTupleResult as AsyncTupleResult,
)
from sqlalchemy.ext.asyncio import (
    async_engine_from_config as async_engine_from_config,
)
from sqlalchemy.ext.asyncio import (
    create_async_engine as create_async_engine,
)
from sqlalchemy.orm import Session as Session
from sqlalchemy.orm import sessionmaker as sessionmaker

from .attrs import (
    AsyncAttrs as AsyncAttrs,
)
from .maker import (
    async_sessionmaker as async_sessionmaker,
)
from .protocols import (
    AsyncSessionProtocol as AsyncSessionProtocol,
)
from .protocols import (
    SyncSessionProtocol as SyncSessionProtocol,
)
from .scoping import (
    async_scoped_session as async_scoped_session,
)
from .scoping import (
    scoped_session as scoped_session,
)
from .session import (
    AsyncSession as AsyncSession,
)
from .session import (
    async_object_session as async_object_session,
)
from .session import (
    async_session as async_session,
)
from .session import (
    close_all_sessions as close_all_sessions,
)
from .transaction import (
    AsyncSessionTransaction as AsyncSessionTransaction,
)

__version__: str

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
