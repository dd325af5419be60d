"""AsyncSession: the asyncio proxy of a sync ``Session``.

The members that only forward to the sync session are installed from the table in
``_surface.py``; what is written out here is the real logic: statements run in the greenlet
bridge and their results buffered or streamed, binds translated, transactions begun, commits
and closes run to their end. The concurrent-use guard is ``_guard.py``'s, the bind translation
``_binds.py``'s; the exact signatures and the documentation live in ``sa_async-stubs``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Result, ScalarResult
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, AsyncScalarResult
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import Session, SessionTransaction, object_session
from sqlalchemy.orm import close_all_sessions as close_all_sync_sessions
from sqlalchemy.util import immutabledict

from . import _compat
from ._binds import (
    AsyncBind,
    BindTranslation,
    SessionFactory,
    SyncBind,
    check_mapping,
    check_sync_session_class,
    sync_bind_of,
)
from ._bridge import run_in_bridge
from ._completion import RunToCompletion, note_if_committed
from ._forwarding import install_session_members, subscriptable
from ._guard import SCOPE_ENDED, GuardedSession
from ._identity import identity_map_hit
from ._proxies import async_session, attach_session_proxy
from .exc import SessionClassError
from .transaction import AsyncSessionTransaction, SessionBeginContext

_T = TypeVar("_T")

# immutabledict, the class the sync Session merges options into: any other mapping is copied into
# one on every statement.
_EXECUTE_OPTIONS: immutabledict[str, Any] = immutabledict({"prebuffer_rows": True})
_STREAM_OPTIONS: immutabledict[str, Any] = immutabledict({"stream_results": True})


def _with_options(
    execution_options: Mapping[str, Any] | None, forced: immutabledict[str, Any]
) -> immutabledict[str, Any]:
    if not execution_options:
        return forced
    merged: immutabledict[str, Any] = immutabledict(execution_options).union(forced)
    return merged


# SQLAlchemy's class declares _translate_binds as an attribute, ours is a property.
class AsyncSession(GuardedSession, BindTranslation, sqlalchemy_asyncio.AsyncSession):  # type: ignore[misc]
    """Asyncio proxy of a sync ``Session``; see the stubs for each member's documentation.

    A subclass of SQLAlchemy's ``AsyncSession`` for identity only (``isinstance`` checks and
    annotations of other libraries accept it): every member is defined here, none of SQLAlchemy's
    implementation runs (``tests/test_identity.py`` lists the few inherited names and why).
    """

    # A Session subclass or any callable building one, as SQLAlchemy's documentation allows.
    sync_session_class: SessionFactory = Session  # type: ignore[assignment]
    sync_session: Session

    # SQLAlchemy's event registry and scoped_session look for these two names on async sessions.
    _is_asyncio = True

    @classmethod
    def _no_async_engine_events(cls) -> NoReturn:
        # The first sentence is SQLAlchemy's wording, kept for code that matches on it.
        raise NotImplementedError(
            "asynchronous events are not implemented at this time.  Apply synchronous "
            f"listeners to the AsyncSession.sync_session. {cls.__name__} has no events of its "
            "own; listen on its sync_session, on the sync Session class, or on the sessionmaker "
            "that builds the sync sessions."
        )

    __class_getitem__ = subscriptable

    def __init__(
        self,
        bind: AsyncBind | None = None,
        *,
        binds: Mapping[Any, AsyncBind] | None = None,
        sync_session_class: SessionFactory | None = None,
        **kw: Any,
    ) -> None:
        """Create a session on ``bind`` (an ``AsyncEngine`` or ``AsyncConnection``).

        ``binds`` maps mapped classes, mappers, tables or names to their own async binds;
        ``sync_session_class`` picks the sync ``Session`` subclass (and the session's type,
        ``AsyncSession[ThatClass]``); other keyword arguments go to the sync session
        (``autoflush``, ``expire_on_commit``, ``info``, ...). Example::

            async with AsyncSession(engine, expire_on_commit=False) as session: ...
        """
        if sync_session_class is not None:
            self.sync_session_class = sync_session_class
        session_factory = self.sync_session_class
        if session_factory is not Session:
            check_sync_session_class(session_factory)
        if binds is not None:
            check_mapping("binds", binds, "e.g. binds={User: engine, Order: other_engine}")
        if "info" in kw and kw["info"] is not None:
            check_mapping("info", kw["info"], "the session's info dictionary, e.g. info={}")
        sync_bind: SyncBind | None
        if bind is None or type(bind) is AsyncEngine:  # the common cases, without a call
            sync_bind = None if bind is None else bind.sync_engine
        else:
            sync_bind = sync_bind_of(bind)
        sync_binds = (
            {key: sync_bind_of(value, f"binds[{key!r}]") for key, value in binds.items()}
            if binds
            else None
        )
        self._async_bind = bind
        self._async_binds = dict(binds) if binds else {}
        self._translation = None
        self._operation = None
        self._ended_scope = None
        sync_session = session_factory(bind=sync_bind, binds=sync_binds, **kw)
        if not isinstance(sync_session, Session):
            raise SessionClassError(
                f"sync_session_class returned {type(sync_session).__name__}, not a "
                "sqlalchemy.orm.Session; it must build a Session (or subclass) instance."
            )
        self.sync_session = self._assign_proxied(sync_session)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.sync_session).__name__} at {id(self):#x}>"

    # -- the sync session -> AsyncSession lookup (_proxies.py), under SQLAlchemy's names:
    # async_session(), InstanceState.async_session and SQLAlchemy's own helpers use them.

    @property
    def _proxied(self) -> Session:
        return self.sync_session

    @_proxied.setter
    def _proxied(self, sync_session: Session) -> None:
        self.sync_session = self._assign_proxied(sync_session)

    def _assign_proxied(self, target: Any) -> Any:
        if target is not None:
            attach_session_proxy(target, self)
        return target

    @classmethod
    def _target_gced(cls, ref: Any, proxy_ref: Any = None) -> None:
        """Nothing to forget: the weak reference lives on the sync session."""

    @classmethod
    def _retrieve_proxy_for_target(
        cls, target: Session, regenerate: bool = True, **additional_kw: Any
    ) -> Any:
        proxy = async_session(target)
        if proxy is None and regenerate:
            return cls._regenerate_proxy_for_target(target, **additional_kw)
        return proxy

    @classmethod
    def _regenerate_proxy_for_target(cls, target: Session, **additional_kw: Any) -> Any:
        raise NotImplementedError(
            f"{cls.__name__} cannot be rebuilt around an existing sync Session: create the "
            f"{cls.__name__} first, and use its sync_session."
        )

    def _maker_context_manager(self) -> SessionBeginContext:
        """What ``sessionmaker.begin()`` and ``async_sessionmaker.begin()`` return."""
        return SessionBeginContext(self)

    # -- binds: the sync session holds sync binds, translated back to their async objects

    @property
    def bind(self) -> AsyncBind | None:
        """The session's default async bind, or None."""
        found: AsyncBind | None = self._translate_for_bind(self.sync_session.bind)
        return found

    @bind.setter
    def bind(self, bind: AsyncBind | None) -> None:
        self.sync_session.bind = None if bind is None else sync_bind_of(bind)
        self._async_bind = bind
        self._invalidate_translate_binds()

    @property
    def binds(self) -> Mapping[Any, AsyncBind]:
        """The per-entity binds (read-only), translated back to their async objects."""
        # SQLAlchemy's read-only mapping type, as Session.binds returns.
        return immutabledict(
            {key: self._translate_for_bind(value) for key, value in self.sync_session.binds.items()}
        )

    def bind_mapper(self, mapper: Any, bind: AsyncBind) -> None:
        """Route statements for ``mapper`` (a mapped class or Mapper) to ``bind``."""
        self.sync_session.bind_mapper(mapper, sync_bind_of(bind))
        self._register_async_bind(mapper, bind)

    def bind_table(self, table: Any, bind: AsyncBind) -> None:
        """Route statements on ``table`` to ``bind``."""
        self.sync_session.bind_table(table, sync_bind_of(bind))
        self._register_async_bind(table, bind)

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: SyncBind | None = None,
        **kw: Any,
    ) -> SyncBind:
        """Return the sync Engine or Connection that a statement would use.

        Calls ``sync_session.get_bind``, so a sync session class that overrides ``get_bind``
        (a routing session) decides here too.
        """
        # By keyword, as SQLAlchemy's AsyncSession calls it: routing sessions override get_bind
        # with parameters of their own.
        found: SyncBind = self.sync_session.get_bind(mapper=mapper, clause=clause, bind=bind, **kw)
        return found

    def get_async_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: AsyncBind | None = None,
        **kw: Any,
    ) -> AsyncBind:
        """Return the async bind that a statement would use (``get_bind`` translated back)."""
        sync_bind = None if bind is None else sync_bind_of(bind)
        resolved = self.sync_session.get_bind(mapper=mapper, clause=clause, bind=sync_bind, **kw)
        if bind is not None and resolved is sync_bind:
            return bind
        found: AsyncBind | None = self._translate_for_bind(resolved)
        assert found is not None
        return found

    # -- statements

    async def execute(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
        bind_arguments: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Result[Any]:
        """Execute a statement and return its fully buffered result.

        Typed statements give typed rows: ``select(User.id, User.name)`` gives
        ``Result[int, str]``. INSERT without parameters, UPDATE with one parameter set at most,
        DELETE and ``text()`` give a ``CursorResult`` (``.rowcount``); INSERT with parameters
        and UPDATE with a list of parameter sets run the ORM bulk path, which returns a plain
        ``Result``. Example::

            result = await session.execute(select(User.id, User.name))
            for user_id, name in result: ...

        For a server-side cursor use ``stream()``.
        """
        running = self._enter("execute()")
        try:
            result: Result[Any] = await run_in_bridge(
                self.sync_session.execute,
                statement,
                params=params,
                execution_options=_with_options(execution_options, _EXECUTE_OPTIONS),
                bind_arguments=bind_arguments,
                **kw,
            )
            server_side = _compat.server_side_cursor_of(result)
            if server_side is not None:
                await run_in_bridge(server_side.close)
        finally:
            self._operation = running
        if server_side is not None:
            # Worded as SQLAlchemy's message, for code that matches on it.
            name = type(self).__name__
            raise async_exc.AsyncMethodRequired(
                f"Can't use the {name}.execute() method with a server-side cursor. Use the "
                f"{name}.stream() method for an async streaming result set: execute() buffers "
                "the whole result, so stream_results cannot apply to it."
            )
        return result

    async def scalar(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
        bind_arguments: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        """Execute a statement and return the first column of its first row, or None.

        Example::

            count = await session.scalar(select(func.count()).select_from(User))
        """
        running = self._enter("scalar()")
        try:
            return await run_in_bridge(
                self.sync_session.scalar,
                statement,
                params=params,
                execution_options=_with_options(execution_options, _EXECUTE_OPTIONS),
                bind_arguments=bind_arguments,
                **kw,
            )
        finally:
            self._operation = running

    async def scalars(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
        bind_arguments: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> ScalarResult[Any]:
        """Execute a statement and return the first column of each row, buffered.

        Example::

            users = (await session.scalars(select(User))).all()
        """
        result = await self.execute(
            statement,
            params,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
            **kw,
        )
        return result.scalars()

    async def stream(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
        bind_arguments: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> AsyncResult[Any]:
        """Execute a statement on a server-side cursor and return an async result.

        Rows are fetched as you iterate. Example::

            result = await session.stream(select(User))
            async for partition in result.scalars().partitions(500): ...
        """
        running = self._enter("stream()")
        try:
            result: Result[Any] = await run_in_bridge(
                self.sync_session.execute,
                statement,
                params=params,
                execution_options=_with_options(execution_options, _STREAM_OPTIONS),
                bind_arguments=bind_arguments,
                **kw,
            )
        finally:
            self._operation = running
        return AsyncResult(result)

    async def stream_scalars(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
        bind_arguments: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> AsyncScalarResult[Any]:
        """Execute a statement on a server-side cursor and return its first column, async.

        Example::

            async for user in await session.stream_scalars(select(User)): ...
        """
        result = await self.stream(
            statement,
            params,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
            **kw,
        )
        return result.scalars()

    async def get(self, entity: Any, ident: Any, **options: Any) -> Any:
        """Return the instance of ``entity`` with primary key ``ident``, or None.

        Served from the identity map when present; otherwise loaded with a SELECT. A composite
        key is a tuple (or a dict by attribute name).
        """
        if not options and self._operation is None:
            found = identity_map_hit(self.sync_session, entity, ident)
            if found is not None:
                return found
        running = self._enter("get()")
        try:
            return await run_in_bridge(self.sync_session.get, entity, ident, **options)
        finally:
            self._operation = running

    async def run_sync(self, fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
        """Call ``fn(sync_session, *args, **kw)`` inside the greenlet bridge; return its result.

        Lets sync ORM code (lazy loads included) run unchanged. Example::

            def count_addresses(session: Session, user_id: int) -> int:
                return len(session.get_one(User, user_id).addresses)

            count = await session.run_sync(count_addresses, 5)
        """
        running = self._enter("run_sync()")
        try:
            return await run_in_bridge(fn, self.sync_session, *args, **kw)
        finally:
            self._operation = running

    async def connection(
        self,
        bind_arguments: Mapping[str, Any] | None = None,
        execution_options: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> AsyncConnection:
        """Return the AsyncConnection of the current transaction, beginning one if needed."""
        running = self._enter("connection()")
        try:
            sync_connection = await run_in_bridge(
                self.sync_session.connection,
                bind_arguments=bind_arguments,
                execution_options=execution_options,
                **kw,
            )
        finally:
            self._operation = running
        return _compat.async_connection_for(sync_connection)

    # -- transactions

    def begin(self) -> AsyncSessionTransaction:
        """Begin a transaction: ``await session.begin()`` or ``async with session.begin():``."""
        return AsyncSessionTransaction(self)

    def begin_nested(self) -> AsyncSessionTransaction:
        """Begin a SAVEPOINT: ``async with session.begin_nested():`` undoes only its own work."""
        return AsyncSessionTransaction(self, nested=True)

    def get_transaction(self) -> AsyncSessionTransaction | None:
        """Return the current root transaction, or None when none is in progress."""
        sync_transaction = self.sync_session.get_transaction()
        if sync_transaction is None:
            return None
        found: AsyncSessionTransaction = AsyncSessionTransaction._retrieve_proxy_for_target(
            sync_transaction, async_session=self
        )
        return found

    def get_nested_transaction(self) -> AsyncSessionTransaction | None:
        """Return the innermost SAVEPOINT transaction, or None."""
        sync_transaction = self.sync_session.get_nested_transaction()
        if sync_transaction is None:
            return None
        found: AsyncSessionTransaction = AsyncSessionTransaction._retrieve_proxy_for_target(
            sync_transaction, async_session=self
        )
        return found

    async def commit(self) -> None:
        """Flush and commit the current transaction (a no-op when none is in progress).

        Once started, the commit runs to its end even if the task is cancelled meanwhile; the
        cancellation is raised afterwards, so a ``CancelledError`` here means it committed.
        """
        sync_session = self.sync_session
        await self._flush_before_commit("commit()", sync_session.get_transaction())
        # The COMMIT runs to its end even if the caller is cancelled meanwhile: abandoned in
        # flight, its outcome would be unknown.
        await RunToCompletion(
            self._run_guarded("commit()", sync_session.commit), note=note_if_committed
        )

    async def _flush_before_commit(
        self, operation: str, sync_transaction: SessionTransaction | None
    ) -> None:
        """Flush the pending changes that committing ``sync_transaction`` would flush first.

        Run as an ordinary operation, which a cancellation stops at once: only the COMMIT that
        follows needs to run to its end, and the flush is where a commit waits for the pool.
        Skipped where flushing first would change what the commit does (see
        ``_compat.flushes_before_committing``); the commit then flushes, run to its end.
        """
        if sync_transaction is not None and _compat.flushes_before_committing(
            self.sync_session, sync_transaction
        ):
            await self._run_guarded(operation, self.sync_session.flush)

    async def close(self) -> None:
        """Release the connections and expunge every object; the session stays usable.

        Runs to its end even if the task is cancelled meanwhile (the cancellation follows).
        """
        if self._operation is SCOPE_ENDED:
            return  # closed when its scope ended
        sync_session = self.sync_session
        if _compat.closes_without_io(sync_session):
            # Nothing to end and nothing to detach: no IO, no event hook, nothing to await.
            if self._operation is not None:
                self._refuse_concurrent_use("close()")
            sync_session.close()
            return
        # Run to its end even if the caller is cancelled: a close stopped halfway keeps its
        # connection.
        await RunToCompletion(self._run_guarded("close()", sync_session.close))

    async def aclose(self) -> None:
        """Same as ``close()``; lets ``contextlib.aclosing(session)`` work."""
        await self.close()

    async def __aenter__(self) -> Self:
        """Return the session itself: ``async with AsyncSession(engine) as session:``."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session; the close completes even if the task is cancelled meanwhile."""
        await self.close()

    @classmethod
    def close_all(cls) -> Coroutine[Any, Any, None]:
        """Close every session in memory (deprecated: use ``close_all_sessions()``)."""
        # Warned by hand rather than with @deprecated, which passes category= by keyword: code
        # that intercepts warnings.warn (SQLAlchemy's test helpers do) expects it positional.
        warnings.warn(
            "The AsyncSession.close_all() method is deprecated and will be removed in a future "
            "release. Use 'await sa_async.close_all_sessions()' instead.",
            sa_exc.SADeprecationWarning,
            stacklevel=2,
        )
        return close_all_sessions()


install_session_members(AsyncSession)


def async_object_session(instance: object) -> AsyncSession | None:
    """Return the AsyncSession that ``instance`` belongs to, if any."""
    sync_session = object_session(instance)
    return None if sync_session is None else async_session(sync_session)


async def close_all_sessions() -> None:
    """Close every session in memory, sync and async."""
    await run_in_bridge(close_all_sync_sessions)


__all__ = [
    "AsyncSession",
    "AsyncSessionTransaction",
    "async_object_session",
    "async_session",
    "close_all_sessions",
]
