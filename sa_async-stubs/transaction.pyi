"""AsyncSessionTransaction, and the block of ``async_sessionmaker.begin()``."""

from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeAlias

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# SQLAlchemy's class of what async_sessionmaker.begin() returns; sa_async's subclasses it.
from sqlalchemy.ext.asyncio.session import _AsyncSessionContextManager
from sqlalchemy.orm import Mapper, Session, SessionTransaction
from typing_extensions import TypeVar

from .session import AsyncSession

# Any asyncio session class: sa_async's, SQLAlchemy's, or a subclass of either (SQLModel's).
_AS_co = TypeVar(
    "_AS_co",
    bound=sqlalchemy_asyncio.AsyncSession,
    default=AsyncSession[Session],
    covariant=True,
)

_AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
# Mapper is invariant in its class: Mapper[Any] is the mapper of any class.
_AnyEntityKey: TypeAlias = type[object] | Mapper[Any]

class AsyncSessionTransaction(sqlalchemy_asyncio.AsyncSessionTransaction):
    """A transaction (or SAVEPOINT) of an AsyncSession.

    ``await session.begin()`` starts it; ``async with session.begin():`` also commits it on
    success and rolls it back on error.
    """

    # sa_async's session, a subclass of the one SQLAlchemy's attribute holds.
    session: AsyncSession  # pyright: ignore[reportIncompatibleVariableOverride]
    """The session this transaction belongs to."""
    nested: bool
    """True for a SAVEPOINT."""
    sync_transaction: SessionTransaction | None
    """The sync ``SessionTransaction``, None until started."""
    def __init__(self, session: AsyncSession, nested: bool = False) -> None:
        """Prepare a transaction of ``session``; it starts when awaited or entered."""

    def __await__(self) -> Generator[Any, None, Self]:
        """Start the transaction and return it: ``transaction = await session.begin()``."""

    async def __aenter__(self) -> Self:
        """Start the transaction and return it."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit on success, roll back on error."""

    @property
    def is_active(self) -> bool:
        """True while the transaction can still be used."""

    @property
    def connections(self) -> frozenset[AsyncConnection]:
        """The connections this transaction holds."""

    def bound_connection(
        self,
        bindkey: _AnyEntityKey | None = None,
        *,
        bind: _AsyncBind | None = None,
        **kw: object,
    ) -> AsyncConnection:
        """Return the connection this transaction holds for ``bindkey`` (or ``bind``).

        Acquires none: raises ``InvalidRequestError`` when the transaction has no connection
        for that bind yet.
        """

    async def commit(self) -> None:
        """Commit this transaction (or release this SAVEPOINT)."""

    async def rollback(self) -> None:
        """Roll back this transaction (or to this SAVEPOINT)."""

# SQLAlchemy's base class is invariant in its session: ours is covariant, as the maker is.
class SessionBeginContext(_AsyncSessionContextManager[Any], Generic[_AS_co]):
    """Returned by ``async_sessionmaker.begin()``: a session with a transaction."""

    async_session: _AS_co
    """The new session, returned by ``async with``."""
    # sa_async's transaction, a subclass of the one SQLAlchemy's attribute holds.
    trans: AsyncSessionTransaction  # pyright: ignore[reportIncompatibleVariableOverride]
    """The session's transaction, begun on entering the block."""
    committed: bool
    """True once the block's transaction has committed."""
    def __init__(self, async_session: _AS_co) -> None:
        """Prepare the block for ``async_session``; the transaction begins on entering it."""
    async def __aenter__(self) -> _AS_co:
        """Begin a transaction on the new session and return the session."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit (or roll back on error), then close the session; not stopped by cancellation."""

__all__ = ["AsyncSessionTransaction", "SessionBeginContext"]
