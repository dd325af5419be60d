"""Scoped sessions: one session per scope (a thread, a task, a request...), used through a registry.

``scoped_session`` (sync sessions, thread-local by default) and ``async_scoped_session`` (async
sessions, scope given by ``scopefunc``) share one core: ``_ScopedSessionBase`` creates,
configures and looks up the current scope's session in a ``ScopeRegistry`` (``registry.py``,
where the sessions of ended scopes are closed). The members that only forward to the current
session are installed from the table in ``_surface.py``; their types and documentation live in
``sa_async-stubs/scoping.pyi``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import orm as sqlalchemy_orm
from sqlalchemy.engine import Engine
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import Session, sessionmaker

from ._completion import RunToCompletion
from ._forwarding import install_registry_members, subscriptable
from ._surface import Registries
from .exc import ArgumentTypeError, ScopefuncError
from .registry import ScopeRegistry, current_thread_scope
from .session import AsyncSession, close_all_sessions


class _ScopedSessionBase:
    """The core of both scoped registries: one session per scope, reached through the registry.

    Each registry class also subclasses SQLAlchemy's, for identity only: every member is
    defined here or installed from the table in ``_surface.py`` (``tests/test_identity.py``).
    """

    session_factory: Any
    registry: Any  # a ScopeRegistry; SQLAlchemy declares its own registry classes

    __class_getitem__ = subscriptable

    def __init__(self, session_factory: Any, scopefunc: Callable[[], Hashable]) -> None:
        if not callable(scopefunc):
            raise ScopefuncError(
                f"scopefunc must be a callable returning the current scope's key (e.g. "
                f"asyncio.current_task), got {scopefunc!r}"
            )
        if not callable(session_factory):
            hint = (
                "async_sessionmaker(engine)"
                if isinstance(session_factory, sqlalchemy_asyncio.AsyncEngine)
                else "sessionmaker(engine)"
                if isinstance(session_factory, Engine)
                else "a sessionmaker"
            )
            raise ArgumentTypeError(
                f"session_factory must be a callable that builds sessions, such as {hint}; got "
                f"an {type(session_factory).__name__}, which is not callable."
            )
        self.session_factory = session_factory
        self.registry = ScopeRegistry(session_factory, scopefunc)

    def __call__(self, **kw: Any) -> Any:
        if not kw:
            return self.registry()
        if self.registry.has():
            # The first sentence is SQLAlchemy's wording, kept for code that matches on it.
            raise sa_exc.InvalidRequestError(
                "Scoped session is already present; no new arguments may be specified. Call "
                "remove() first to start a new session in this scope with other arguments."
            )
        session = self.session_factory(**kw)
        self.registry.set(session)
        return session

    @property
    def _proxied(self) -> Any:
        """The current scope's session (SQLAlchemy's name for it)."""
        return self.registry()

    def configure(self, **kw: Any) -> None:
        if len(self.registry):
            # Warned by hand with a positional category, for SQLAlchemy's test helpers; the first
            # sentence is SQLAlchemy's wording.
            warnings.warn(
                "At least one scoped session is already present. configure() affects only the "
                "sessions created from now on; call remove() in a scope to replace its session.",
                sa_exc.SAWarning,
                stacklevel=2,
            )
        self.session_factory.configure(**kw)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} of {self.session_factory!r}, "
            f"{len(self.registry)} session(s) at {id(self):#x}>"
        )


class _QueryProperty:
    """``query_property()``: ``MyClass.query`` is a Query for MyClass on the current session."""

    __slots__ = ("query_cls", "registry")

    def __init__(self, registry: ScopeRegistry[Any], query_cls: Any) -> None:
        self.registry = registry
        self.query_cls = query_cls

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        session = self.registry()
        if self.query_cls is not None:
            return self.query_cls(owner, session=session)
        return session.query(owner)


def _warn_async_in_scoped_session(factory: object, stacklevel: int) -> None:
    warnings.warn(
        f"scoped_session is the registry of sync sessions, and {factory!r} builds asyncio "
        "sessions: use sa_async.async_scoped_session(session_factory, "
        "scopefunc=asyncio.current_task) instead.",
        sa_exc.SADeprecationWarning,
        stacklevel=stacklevel + 1,
    )


class scoped_session(_ScopedSessionBase, sqlalchemy_orm.scoped_session):  # type: ignore[type-arg]
    """A registry of sync sessions, one per thread unless ``scopefunc`` says otherwise."""

    _support_async = False

    def __init__(
        self, session_factory: Any, scopefunc: Callable[[], Hashable] | None = None
    ) -> None:
        """Create the registry; without ``scopefunc`` the scope is the current thread."""
        super().__init__(session_factory, current_thread_scope if scopefunc is None else scopefunc)
        self._warned_async = isinstance(session_factory, sqlalchemy_asyncio.async_sessionmaker) or (
            isinstance(session_factory, sessionmaker)
            and issubclass(session_factory.class_, sqlalchemy_asyncio.AsyncSession)
        )
        if self._warned_async:
            _warn_async_in_scoped_session(session_factory, stacklevel=2)

    def __call__(self, **kw: Any) -> Any:
        """Return the current scope's session, creating it with ``kw`` if there is none.

        Raises ``InvalidRequestError`` when ``kw`` is given and the scope already has one.
        """
        session = super().__call__(**kw)
        if not self._warned_async and isinstance(session, sqlalchemy_asyncio.AsyncSession):
            _warn_async_in_scoped_session(self.session_factory, stacklevel=2)
        return session

    def remove(self) -> None:
        """Close the current scope's session and forget it; the next use creates a new one."""
        try:
            if self.registry.has():
                self.registry().close()
        finally:
            self.registry.clear()

    def query_property(self, query_cls: Any = None) -> _QueryProperty:
        """Return a class attribute that gives a ``Query`` of its class on the current session.

        Example::

            class User(Base):
                query = Session.query_property()

            User.query.filter_by(name="ed").all()
        """
        return _QueryProperty(self.registry, query_cls)


class async_scoped_session(_ScopedSessionBase, sqlalchemy_asyncio.async_scoped_session):  # type: ignore[type-arg]
    """A registry of async sessions, one per scope as returned by ``scopefunc``."""

    _support_async = True

    def __init__(self, session_factory: Any, scopefunc: Callable[[], Hashable]) -> None:
        """Create the registry; ``scopefunc`` returns the current scope's key.

        ``asyncio.current_task`` gives each task its own session, closed when the task is done.
        """
        super().__init__(session_factory, scopefunc)

    async def remove(self) -> None:
        """Close the current scope's session and forget it; the next use creates a new one.

        The close completes even if the task is cancelled meanwhile.
        """
        try:
            if self.registry.has():
                session = self.registry()
                if isinstance(session, AsyncSession):
                    await session.close()  # runs to its end by itself
                else:
                    await RunToCompletion(session.close())
        finally:
            self.registry.clear()

    @classmethod
    def close_all(cls) -> Coroutine[Any, Any, None]:
        """Close every session in memory (deprecated: use ``close_all_sessions()``)."""
        warnings.warn(
            "The async_scoped_session.close_all() method is deprecated and will be removed in a "
            "future release. Use 'await sa_async.close_all_sessions()' instead.",
            sa_exc.SADeprecationWarning,
            stacklevel=2,
        )
        return close_all_sessions()


install_registry_members(scoped_session, Session, Registries.SCOPED)
install_registry_members(async_scoped_session, AsyncSession, Registries.ASYNC_SCOPED)

__all__ = ["ScopeRegistry", "async_scoped_session", "scoped_session"]
