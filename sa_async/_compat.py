"""The only module that touches SQLAlchemy's private names.

Each function here wraps one private SQLAlchemy detail that sa_async needs, so that a change in
SQLAlchemy breaks one place, and ``tests/test_compat.py`` covers every function of this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlalchemy.orm import state as orm_state


def async_connection_for(sync_connection: Connection) -> AsyncConnection:
    """Return SQLAlchemy's AsyncConnection proxy of ``sync_connection``, reusing a live one.

    SQLAlchemy keeps one proxy per sync connection so that identity checks hold; its public
    constructor would create a second proxy.
    """
    proxy: AsyncConnection = AsyncConnection._retrieve_proxy_for_target(sync_connection)
    return proxy


def server_side_cursor_of(result: Result[Any]) -> CursorResult[Any] | None:
    """Return the server-side cursor result behind ``result``, or None if it is buffered."""
    try:
        is_cursor = result._is_cursor
    except AttributeError:
        return None
    cursor_result: CursorResult[Any] | None = (
        result if is_cursor else getattr(result, "raw", None)  # type: ignore[assignment]
    )
    if cursor_result is not None and cursor_result.context._is_server_side:
        return cursor_result
    return None


AsyncSessionProvider = Callable[[Session], Any]


def install_async_session_provider(provider: Callable[[Session], Any | None]) -> None:
    """Make ``InstanceState.async_session`` consult ``provider`` first.

    SQLAlchemy's ``InstanceState.async_session`` asks a module-level hook of ``orm.state`` for the
    async proxy of a sync session. We chain ours in front of SQLAlchemy's own so that objects of
    both kinds of session keep answering.
    """
    previous: AsyncSessionProvider | None = getattr(orm_state, "_async_provider", None)
    if getattr(previous, "__wrapped_by_sa_async__", False):
        return

    def chained_provider(sync_session: Session) -> Any:
        found = provider(sync_session)
        if found is None and previous is not None:
            found = previous(sync_session)
        return found

    chained_provider.__wrapped_by_sa_async__ = True  # type: ignore[attr-defined]
    setattr(orm_state, "_async_provider", chained_provider)  # noqa: B010 - private hook


def support_orm_sessionmaker_begin(
    session_class: type[Any], begin_context: Callable[[Any], Any]
) -> None:
    """Make ``sqlalchemy.orm.sessionmaker(..., class_=session_class).begin()`` work.

    The sync sessionmaker's ``begin()`` builds a session and asks it, through a private method, for
    the context manager to return; ``begin_context(session)`` answers for ``session_class``.
    """

    def maker_context_manager(session: Any) -> Any:
        return begin_context(session)

    session_class._maker_context_manager = maker_context_manager
