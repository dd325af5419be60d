"""async_sessionmaker: a configured factory of async sessions."""

from typing import Any, Generic, TypeAlias, overload

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# SQLAlchemy's class of what async_sessionmaker.begin() returns.
from sqlalchemy.ext.asyncio.session import _AsyncSessionContextManager
from sqlalchemy.orm import Session
from typing_extensions import TypeVar

from .session import AsyncSession

_S2 = TypeVar("_S2", bound=Session)
# Any asyncio session class: sa_async's, SQLAlchemy's, or a subclass of either (SQLModel's).
_AS_co = TypeVar(
    "_AS_co",
    bound=sqlalchemy_asyncio.AsyncSession,
    default=AsyncSession[Session],
    covariant=True,
)

_AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
_InfoType: TypeAlias = dict[Any, Any]

class async_sessionmaker(sqlalchemy_asyncio.async_sessionmaker[Any], Generic[_AS_co]):
    """A configured factory of async sessions.

    ``async_sessionmaker(engine)`` makes ``AsyncSession[Session]`` objects;
    ``class_=MyAsyncSession`` makes ``MyAsyncSession``; ``sync_session_class=Routing`` makes
    ``AsyncSession[Routing]``. Example::

        Session = async_sessionmaker(engine, expire_on_commit=False)
        async with Session() as session: ...
        async with Session.begin() as session: ...  # commits on success
    """

    # Narrower than SQLAlchemy's type[Any]: the class this maker builds (pyright wants mutable attributes invariant).
    class_: type[_AS_co]  # pyright: ignore[reportIncompatibleVariableOverride]
    """The session class this factory builds."""
    kw: dict[str, Any]
    """The keyword arguments passed to every session (``configure()`` updates them)."""

    # Written on __new__ rather than as self-typed __init__ overloads: every checker (ty
    # included) then infers the session type from class_ or sync_session_class alike.
    # class_ first: it names the session class. Then sync_session_class: an AsyncSession of it.
    # Neither: an AsyncSession of Session. Each overload names sync_session_class, so that a
    # value that is no Session class (an AsyncSession class, say) is an error rather than one
    # more keyword for **kw. (The later overloads name class_ too, so that a class_
    # that is no AsyncSession class is an error rather than one more keyword for **kw.)
    @overload
    def __new__(
        cls,
        bind: _AsyncBind | None = None,
        *,
        class_: type[_AS_co],
        sync_session_class: type[Session] | None = None,
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: object,
    ) -> async_sessionmaker[_AS_co]:
        """Configure the factory.

        ``bind`` is the ``AsyncEngine`` (or ``AsyncConnection``) of its sessions; ``class_`` an
        ``AsyncSession`` subclass to build; ``sync_session_class`` the sync ``Session`` class
        they proxy; ``autoflush``, ``expire_on_commit`` and ``info`` configure each session;
        other keyword arguments (``binds``, ``join_transaction_mode``, ...) are passed to
        each session as they are.
        """

    @overload
    def __new__(
        cls,
        bind: _AsyncBind | None = None,
        *,
        class_: type[AsyncSession] = ...,
        sync_session_class: type[_S2],
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: object,
    ) -> async_sessionmaker[AsyncSession[_S2]]: ...
    @overload
    def __new__(
        cls,
        bind: _AsyncBind | None = None,
        *,
        class_: type[AsyncSession] = ...,
        sync_session_class: None = None,
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: object,
    ) -> async_sessionmaker[AsyncSession[Session]]: ...
    def __call__(self, **local_kw: object) -> _AS_co:
        """Create a session; ``local_kw`` overrides the configuration (``info`` is merged)."""

    def begin(self) -> _AsyncSessionContextManager[_AS_co]:
        """Return ``async with maker.begin() as session:``: commit or roll back, then close.

        Example::

            async with Session.begin() as session:
                session.add(user)
        """

    def configure(self, **new_kw: object) -> None:
        """Change the configuration used by sessions created from now on."""

__all__ = ["async_sessionmaker"]
