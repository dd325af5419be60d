"""AsyncSession: the asyncio proxy of a sync ``Session``."""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, Self, TypeAlias, overload

from sqlalchemy.engine import (
    Connection,
    CursorResult,
    Engine,
    Result,
    Row,
    RowMapping,
    ScalarResult,
)
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, AsyncScalarResult
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.identity import IdentityMap
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql import ClauseElement, Delete, Insert, TableClause, TextClause, Update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import ForUpdateParameter, TypedReturnsRows
from sqlalchemy.util import IdentitySet, immutabledict
from typing_extensions import ParamSpec, TypeVar, TypeVarTuple, Unpack, deprecated

from .transaction import AsyncSessionTransaction as AsyncSessionTransaction

_T = TypeVar("_T")
_O = TypeVar("_O", bound=object)
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")
# Covariant: an AsyncSession[RoutingSession] is usable wherever an AsyncSession (of Session) is
# expected, as a RoutingSession is wherever a Session is.
_S_co = TypeVar("_S_co", bound=Session, default=Session, covariant=True)

_AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
_SyncBind: TypeAlias = Engine | Connection
# Mapper is invariant in its class: Mapper[Any] is the mapper of any class.
_AnyEntityKey: TypeAlias = type[object] | Mapper[Any]
# The keys of Session.binds as SQLAlchemy spells them: Mapping is invariant in its keys.
_BindKey: TypeAlias = type[Any] | Mapper[Any] | TableClause | str
_EntityKey: TypeAlias = type[_O] | Mapper[_O]
_Params: TypeAlias = Mapping[str, object]
_ExecuteParams: TypeAlias = _Params | Sequence[_Params]
_ExecutionOptions: TypeAlias = Mapping[str, object]
_BindArguments: TypeAlias = Mapping[str, object]
_InfoType: TypeAlias = dict[Any, Any]
_IdentityKey: TypeAlias = tuple[type[object], tuple[object, ...], object]

class AsyncSession(sqlalchemy_asyncio.AsyncSession, Generic[_S_co]):
    """Asyncio session: proxies a sync ``Session`` and runs its IO in the greenlet bridge.

    Generic in the sync session class: ``AsyncSession[RoutingSession]`` has
    ``sync_session: RoutingSession``, and plain ``AsyncSession`` means ``AsyncSession[Session]``.
    Use as ``async with AsyncSession(engine) as session:`` (closed on exit), or build sessions
    with ``async_sessionmaker``.
    """

    # Likewise: the class that builds sync_session, a Session class.
    sync_session_class: type[_S_co]  # pyright: ignore[reportIncompatibleVariableOverride]
    """The class that builds ``sync_session``; ``Session`` unless configured."""
    # The sync session of this class, a Session as SQLAlchemy's attribute is, typed more narrowly.
    sync_session: _S_co  # pyright: ignore[reportIncompatibleVariableOverride]
    """The sync ``Session`` that the session proxies; attach sync ORM event listeners to it."""

    # Without sync_session_class: an AsyncSession of Session (a subclass constructs as itself:
    # the type parameter is covariant). With it: an AsyncSession of that class.
    @overload
    def __init__(
        self: AsyncSession[Session],
        bind: _AsyncBind | None = None,
        *,
        binds: Mapping[_BindKey, _AsyncBind] | None = None,
        sync_session_class: None = None,
        **kw: object,
    ) -> None:
        """Create a session on ``bind`` (an ``AsyncEngine`` or ``AsyncConnection``).

        ``binds`` maps mapped classes, mappers, tables or names to their own async binds;
        ``sync_session_class`` picks the sync ``Session`` subclass (and the session's type,
        ``AsyncSession[ThatClass]``); other keyword arguments go to the sync session
        (``autoflush``, ``expire_on_commit``, ``info``, ...). Example::

            async with AsyncSession(engine, expire_on_commit=False) as session: ...
        """

    @overload
    def __init__(
        self,
        bind: _AsyncBind | None = None,
        *,
        binds: Mapping[_BindKey, _AsyncBind] | None = None,
        sync_session_class: type[_S_co],
        **kw: object,
    ) -> None: ...

    # -- binds
    @property
    def bind(self) -> _AsyncBind | None:
        """The session's default async bind, or None."""

    @bind.setter
    def bind(self, bind: _AsyncBind | None) -> None: ...
    @property
    def binds(self) -> Mapping[_BindKey, _AsyncBind]:
        """The per-entity binds (read-only), translated back to their async objects."""

    def bind_mapper(self, mapper: _AnyEntityKey, bind: _AsyncBind) -> None:
        """Route statements for ``mapper`` (a mapped class or Mapper) to ``bind``."""

    def bind_table(self, table: TableClause, bind: _AsyncBind) -> None:
        """Route statements on ``table`` to ``bind``."""

    def get_bind(
        self,
        mapper: _AnyEntityKey | None = None,
        clause: ClauseElement | None = None,
        bind: _SyncBind | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        """Return the sync Engine or Connection that a statement would use.

        Calls ``sync_session.get_bind``, so a sync session class that overrides ``get_bind``
        (a routing session) decides here too.
        """

    def get_async_bind(
        self,
        mapper: _AnyEntityKey | None = None,
        clause: ClauseElement | None = None,
        bind: _AsyncBind | None = None,
        **kw: object,
    ) -> _AsyncBind:
        """Return the async bind that a statement would use (``get_bind`` translated back)."""

    # -- statements
    # The parameters come in two overloads each, one parameter set or a list of them, so that
    # mypy sees the same parameter type in every overload a call matches: a dict[str, Any]
    # argument would otherwise make the call ambiguous and its result Any.
    # Typed statements first (SELECT, DML with RETURNING): a Result of their column types.
    @overload  # type: ignore[override]
    # The ignore: SQLAlchemy's execute takes a parameter set or a list of them in one overload,
    # which no call typed with a dict or a list needs; only a params argument typed as that union
    # itself is not accepted.
    async def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[_Ts]]:
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

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[_Ts]]: ...
    # INSERT without parameters runs as one statement: a CursorResult. (With parameters, even a
    # single dict, an INSERT of a mapped class takes the ORM bulk path: a plain Result.)
    @overload
    async def execute(
        self,
        statement: Insert,
        params: None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    # UPDATE with one parameter set at most, DELETE, and raw SQL: a CursorResult. (A list of
    # parameter sets makes an UPDATE of a mapped class an ORM bulk update by primary key,
    # which returns a plain Result; DELETE has no bulk path.)
    @overload
    async def execute(
        self,
        statement: Update | Delete | TextClause,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    @overload
    async def execute(
        self,
        statement: Delete | TextClause,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    # Any other statement: a Result of untyped rows.
    @overload
    async def execute(
        self,
        statement: Executable,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    # See the comment at the first overload: only a params argument typed as the union is not taken.
    async def execute(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        statement: Executable,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    # Typed statements first: the first column's type, or None when there is no row. A
    # one-column statement has an overload of its own: pyright gives Any, not Any | None, for a
    # Select[Any] matched against the variadic form.
    @overload
    async def scalar(
        self,
        statement: TypedReturnsRows[_T],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> _T | None:
        """Execute a statement and return the first column of its first row, or None.

        Example::

            count = await session.scalar(select(func.count()).select_from(User))
        """

    @overload
    async def scalar(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> _T | None: ...
    @overload
    # pyright does not pair SQLAlchemy's TypedReturnsRows[_T] overload with ours for TypedReturnsRows[_T, *_Ts], which takes the same statements and more.
    async def scalar(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> Any: ...
    # Typed statements first: a ScalarResult of the first column's type.
    @overload
    async def scalars(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> ScalarResult[_T]:
        """Execute a statement and return the first column of each row, buffered.

        Example::

            users = (await session.scalars(select(User))).all()
        """

    @overload
    async def scalars(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> ScalarResult[Any]: ...
    # Typed statements first: an AsyncResult of their column types.
    @overload
    async def stream(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> AsyncResult[Unpack[_Ts]]:
        """Execute a statement on a server-side cursor and return an async result.

        Rows are fetched as you iterate. Example::

            result = await session.stream(select(User))
            async for partition in result.scalars().partitions(500): ...
        """

    @overload
    async def stream(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> AsyncResult[Unpack[tuple[Any, ...]]]: ...
    # Typed statements first: an AsyncScalarResult of the first column's type.
    @overload
    async def stream_scalars(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> AsyncScalarResult[_T]:
        """Execute a statement on a server-side cursor and return its first column, async.

        Example::

            async for user in await session.stream_scalars(select(User)): ...
        """

    @overload
    async def stream_scalars(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> AsyncScalarResult[Any]: ...
    async def get(
        self,
        entity: _EntityKey[_O],
        ident: object,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: object = None,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
    ) -> _O | None:
        """Return the instance of ``entity`` with primary key ``ident``, or None.

        Served from the identity map when present; otherwise loaded with a SELECT. A composite
        key is a tuple (or a dict by attribute name).
        """

    async def get_one(
        self,
        entity: _EntityKey[_O],
        ident: object,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: object = None,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
    ) -> _O:
        """Return the instance of ``entity`` with primary key ``ident``; raise ``NoResultFound``."""

    async def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdateParameter = None,
    ) -> None:
        """Reload the attributes of ``instance`` (or only ``attribute_names``) from the database."""

    async def delete(self, instance: object) -> None:
        """Mark ``instance`` for deletion at the next flush (loading cascades as needed)."""

    async def delete_all(self, instances: Iterable[object]) -> None:
        """Mark each of ``instances`` for deletion at the next flush."""

    async def merge(
        self, instance: _O, *, load: bool = True, options: Sequence[ORMOption] | None = None
    ) -> _O:
        """Copy the state of ``instance`` onto the persistent instance with its key; return that."""

    async def merge_all(
        self,
        instances: Iterable[_O],
        *,
        load: bool = True,
        options: Sequence[ORMOption] | None = None,
    ) -> Sequence[_O]:
        """Merge each of ``instances``; return the persistent instances in the same order."""

    async def flush(self, objects: Sequence[object] | None = None) -> None:
        """Write pending changes (all, or those of ``objects``) to the database."""

    async def run_sync(
        self, fn: Callable[Concatenate[_S_co, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        """Call ``fn(sync_session, *args, **kw)`` inside the greenlet bridge; return its result.

        Lets sync ORM code (lazy loads included) run unchanged. Example::

            def count_addresses(session: Session, user_id: int) -> int:
                return len(session.get_one(User, user_id).addresses)

            count = await session.run_sync(count_addresses, 5)
        """

    async def connection(
        self,
        bind_arguments: _BindArguments | None = None,
        execution_options: _ExecutionOptions | None = None,
        **kw: Any,
    ) -> AsyncConnection:
        """Return the AsyncConnection of the current transaction, beginning one if needed."""

    # -- transactions
    def begin(self) -> AsyncSessionTransaction:
        """Begin a transaction: ``await session.begin()`` or ``async with session.begin():``."""

    def begin_nested(self) -> AsyncSessionTransaction:
        """Begin a SAVEPOINT: ``async with session.begin_nested():`` undoes only its own work."""

    def get_transaction(self) -> AsyncSessionTransaction | None:
        """Return the current root transaction, or None when none is in progress."""

    def get_nested_transaction(self) -> AsyncSessionTransaction | None:
        """Return the innermost SAVEPOINT transaction, or None."""

    def in_transaction(self) -> bool:
        """Return True when a transaction is in progress."""

    def in_nested_transaction(self) -> bool:
        """Return True when a SAVEPOINT is in progress."""

    async def commit(self) -> None:
        """Flush and commit the current transaction (a no-op when none is in progress).

        Once started, the commit runs to its end even if the task is cancelled meanwhile; the
        cancellation is raised afterwards, so a ``CancelledError`` here means it committed.
        """

    async def rollback(self) -> None:
        """Roll back the current transaction, discarding pending changes."""

    async def close(self) -> None:
        """Release the connections and expunge every object; the session stays usable.

        Runs to its end even if the task is cancelled meanwhile (the cancellation follows).
        """

    async def aclose(self) -> None:
        """Same as ``close()``; lets ``contextlib.aclosing(session)`` work."""

    async def reset(self) -> None:
        """Close the session and reset its state as if newly created.

        Runs to its end even if the task is cancelled meanwhile (the cancellation follows).
        """

    async def invalidate(self) -> None:
        """Close, invalidating the connections (they are discarded, not returned to the pool)."""

    # -- identity map and unit of work (no IO)
    def add(self, instance: object, *, _warn: bool = True) -> None:
        """Place ``instance`` in the session; it is inserted at the next flush."""

    def add_all(self, instances: Iterable[object]) -> None:
        """Place each of ``instances`` in the session."""

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Mark the attributes of ``instance`` (or only ``attribute_names``) to reload on access."""

    def expire_all(self) -> None:
        """Mark every attribute of every instance in the session to reload on next access."""

    def expunge(self, instance: object) -> None:
        """Remove ``instance`` from the session."""

    def expunge_all(self) -> None:
        """Remove every instance from the session."""

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:
        """Return True when ``instance`` has net changes to flush."""

    def __contains__(self, instance: object) -> bool:
        """Return True when ``instance`` belongs to this session."""

    def __iter__(self) -> Iterator[object]:
        """Iterate over the instances in the session (persistent and pending)."""

    @property
    def dirty(self) -> IdentitySet:
        """The persistent instances with changed attributes."""

    @property
    def deleted(self) -> IdentitySet:
        """The instances marked for deletion."""

    @property
    def new(self) -> IdentitySet:
        """The pending instances, to be inserted at the next flush."""

    @property
    def identity_map(self) -> IdentityMap:
        """The identity map of the sync session."""

    @identity_map.setter
    def identity_map(self, attr: IdentityMap) -> None: ...
    @property
    def is_active(self) -> bool:
        """False only while a failed flush waits for ``rollback()``."""

    @property
    def autoflush(self) -> bool:
        """Whether queries flush pending changes first."""

    @autoflush.setter
    def autoflush(self, attr: bool) -> None: ...
    @property
    def no_autoflush(self) -> AbstractContextManager[_S_co, None]:
        """A context manager that turns autoflush off in its block and gives the sync session.

        Example::

            with session.no_autoflush:
                session.add(draft)
        """

    @property
    def info(self) -> _InfoType:
        """A user dictionary, shared with ``sync_session.info``."""

    @property
    def execution_options(self) -> immutabledict[str, Any]:
        """Default execution options applied to every statement of the session."""

    @execution_options.setter
    def execution_options(self, attr: immutabledict[str, Any]) -> None: ...
    @classmethod
    def object_session(cls, instance: object) -> Session | None:
        """Return the sync Session that ``instance`` belongs to, or None."""

    @classmethod
    def identity_key(
        cls,
        class_: type[object] | None = None,
        ident: object = None,
        *,
        instance: object = None,
        row: Row[Unpack[tuple[Any, ...]]] | RowMapping | None = None,
        identity_token: object = None,
    ) -> _IdentityKey:
        """Return the identity-map key of a class and primary key, an instance, or a row."""

    @classmethod
    @deprecated(
        "AsyncSession.close_all() is deprecated; use 'await sa_async.close_all_sessions()'."
    )
    async def close_all(cls) -> None:
        """Close every session in memory (deprecated: use ``close_all_sessions()``)."""

    async def __aenter__(self) -> Self:
        """Return the session itself: ``async with AsyncSession(engine) as session:``."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session; the close completes even if the task is cancelled meanwhile."""

def async_session(session: Session) -> AsyncSession | None:
    """Return the AsyncSession (of this library) proxying ``session``, or None."""

def async_object_session(instance: object) -> AsyncSession | None:
    """Return the AsyncSession that ``instance`` belongs to, or None."""

async def close_all_sessions() -> None:
    """Close every session in memory, sync and async."""

__all__ = [
    "AsyncSession",
    "AsyncSessionTransaction",
    "async_object_session",
    "async_session",
    "close_all_sessions",
]
