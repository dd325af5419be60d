"""The only module that touches SQLAlchemy's private names.

Each function here wraps one private SQLAlchemy detail that sa_async needs, so that a change in
SQLAlchemy breaks one place, and ``tests/test_compat.py`` covers every function of this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio import session as sqlalchemy_asyncio_session
from sqlalchemy.orm import InstanceState, Session, SessionTransaction
from sqlalchemy.orm import loading as orm_loading
from sqlalchemy.orm import state as orm_state
from sqlalchemy.orm import strategies as orm_strategies


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


# The class of what SQLAlchemy's async_sessionmaker.begin() returns: sa_async's begin context
# subclasses it, so that the type SQLAlchemy declares for begin() holds for sa_async's too.
SessionContextManager = sqlalchemy_asyncio_session._AsyncSessionContextManager
# The class of SQLAlchemy's AsyncAttrs.awaitable_attrs loader, which sa_async's subclasses.
AwaitableAttrsLoader = sqlalchemy_asyncio.AsyncAttrs._AsyncAttrGetitem


def find_async_sessions_from_sqlalchemy(find: Callable[[Session], Any | None]) -> None:
    """Make SQLAlchemy's ``async_session()`` and ``async_object_session()`` find sa_async's
    sessions too.

    They ask SQLAlchemy's ``AsyncSession._retrieve_proxy_for_target`` (a private classmethod of
    its proxy base class, reading a private registry that sa_async's sessions are not in); ours,
    set on SQLAlchemy's class alone, asks ``find`` first and falls back to it.
    """
    sqlalchemy_class = sqlalchemy_asyncio.AsyncSession
    if getattr(
        sqlalchemy_class.__dict__.get("_retrieve_proxy_for_target"),
        "__wrapped_by_sa_async__",
        False,
    ):
        return
    inherited: Callable[..., Any] = getattr(  # noqa: B009 - the function under the classmethod
        sqlalchemy_class._retrieve_proxy_for_target, "__func__"
    )

    def retrieve_proxy_for_target(
        cls: type[Any], /, target: Any, regenerate: bool = True, **additional_kw: Any
    ) -> Any:
        found = find(target)
        if found is not None and isinstance(found, cls):
            return found
        return inherited(cls, target, regenerate, **additional_kw)

    retrieve_proxy_for_target.__wrapped_by_sa_async__ = True  # type: ignore[attr-defined]
    setattr(  # noqa: B010 - a private classmethod of SQLAlchemy's class
        sqlalchemy_class, "_retrieve_proxy_for_target", classmethod(retrieve_proxy_for_target)
    )


AttributeLoadCheck = Callable[[Session, InstanceState[Any], Collection[str], str | None], None]


def install_attribute_load_check(check: AttributeLoadCheck) -> None:
    """Call ``check(session, state, attribute_names, relationship)`` before an attribute load
    queries the database.

    Covers lazy relationship loads (``relationship`` is the attribute's name) and column loads:
    expired and deferred attributes, and ``Session.refresh`` (``relationship`` is None). The
    check runs after SQLAlchemy has decided that a query is needed (an object found in the
    identity map needs none) and before the query's autoflush and connection, so an exception
    from it leaves the session and its connection as they were. SQLAlchemy has no public hook
    at that point; ``do_orm_execute`` is one step later and costs every ORM query of every
    session several microseconds, where these wrappers cost nothing outside attribute loads.
    """
    emit_lazyload: Callable[..., Any] = orm_strategies._LazyLoader._emit_lazyload
    if getattr(emit_lazyload, "__checked_by_sa_async__", False):
        return
    load_on_ident: Callable[..., Any] = orm_loading._load_on_ident

    @functools.wraps(emit_lazyload)
    def checked_emit_lazyload(
        loader: Any, session: Session, state: InstanceState[Any], *args: Any, **kw: Any
    ) -> Any:
        check(session, state, (loader.key,), loader.key)
        return emit_lazyload(loader, session, state, *args, **kw)

    @functools.wraps(load_on_ident)
    def checked_load_on_ident(session: Session, *args: Any, **kw: Any) -> Any:
        state = kw.get("refresh_state")
        if state is not None:
            check(session, state, kw.get("only_load_props") or (), None)
        return load_on_ident(session, *args, **kw)

    checked_emit_lazyload.__checked_by_sa_async__ = True  # type: ignore[attr-defined]
    setattr(orm_strategies._LazyLoader, "_emit_lazyload", checked_emit_lazyload)  # noqa: B010
    setattr(orm_loading, "_load_on_ident", checked_load_on_ident)  # noqa: B010


def attribute_being_loaded() -> str | None:
    """Return the name of the attribute whose access is loading it, from the calling frames.

    For error messages only: a column load reloads every expired attribute at once, and only
    the frame of SQLAlchemy's attribute access knows which one the program asked for.
    """
    frame = sys._getframe(1).f_back
    for _ in range(16):
        if frame is None:
            return None
        code = frame.f_code
        if (
            code.co_name == "_fire_loader_callables"
            and frame.f_globals.get("__name__") == "sqlalchemy.orm.attributes"
        ):
            key = frame.f_locals.get("key")
            return key if isinstance(key, str) else None
        frame = frame.f_back
    return None


def looks_up_identities_like_session(session_class: type[Session]) -> bool:
    """Return True when ``session_class`` finds ``get()``'s objects as ``Session`` does.

    ``Session.get`` consults the identity map through a private hook that sharding sessions
    override; only when neither ``get`` nor that hook is overridden may the identity map be read
    directly.
    """
    return (
        session_class.get is Session.get
        and session_class._identity_lookup is Session._identity_lookup
    )


def closes_without_io(session: Session) -> bool:
    """Return True when ``session.close()`` has nothing to do but reset an empty session.

    That is: no transaction to end (so no connection to release), no object to detach (so no
    ``*_to_detached`` / ``*_to_transient`` event to fire), and ``close`` as ``Session`` does it.
    """
    session_class = type(session)
    return (
        session._transaction is None
        and not session._new
        and not session.identity_map._dict
        and session_class.close is Session.close
        and session_class._close_impl is Session._close_impl
        and session_class.expunge_all is Session.expunge_all
    )


def flushes_before_committing(session: Session, transaction: SessionTransaction) -> bool:
    """Return True when ``session.flush()`` then committing ``transaction`` does just what
    committing it does, and there is something to flush.

    Committing fires ``before_commit`` and then flushes, through the private
    ``SessionTransaction._prepare_impl``: flushing first is the same only without
    ``before_commit`` listeners (which would then see the flush done), with ``commit`` as
    ``Session`` does it, and for the session's innermost transaction while it is active.
    """
    return (
        transaction is session._transaction
        and transaction.is_active
        and not session._is_clean()
        and not session.dispatch.before_commit
        and type(session).commit is Session.commit
    )
