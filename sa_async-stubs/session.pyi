from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, TypeAlias, overload

from sqlalchemy.engine import (
    Connection,
    CursorResult,
    Engine,
    Result,
    Row,
    RowMapping,
    ScalarResult,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, AsyncScalarResult
from sqlalchemy.orm import Mapper, Session, SessionTransaction
from sqlalchemy.orm.identity import IdentityMap
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql import ClauseElement, Delete, Insert, TableClause, Update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import ForUpdateParameter, TypedReturnsRows
from sqlalchemy.util import IdentitySet
from typing_extensions import (
    ParamSpec,
    Self,
    TypeVar,
    TypeVarTuple,
    Unpack,
    deprecated,
)

_T = TypeVar("_T")
_O = TypeVar("_O", bound=object)
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")
_S = TypeVar("_S", bound=Session, default=Session)
_S2 = TypeVar("_S2", bound=Session)
_AS = TypeVar("_AS", bound=AsyncSession[Any], default=AsyncSession[Session])

_AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
_SyncBind: TypeAlias = Engine | Connection
_BindKey: TypeAlias = type[Any] | Mapper[Any] | TableClause | str
_EntityKey: TypeAlias = type[_O] | Mapper[_O]
_ExecuteParams: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_ExecutionOptions: TypeAlias = Mapping[str, Any]
_BindArguments: TypeAlias = dict[str, Any]
_InfoType: TypeAlias = dict[Any, Any]

class _AwaitableAttrs:
    """Attribute loader of ``obj.awaitable_attrs``: each attribute read returns an awaitable."""

    def __init__(self, instance: object) -> None: ...
    def __getattr__(self, name: str) -> Coroutine[Any, Any, Any]:
        """Return an awaitable that loads ``name`` on the instance (lazy load or refresh)."""

class AsyncAttrs:
    """Mixin for mapped classes that makes lazy and expired attributes loadable with ``await``.

    Example::

        class Base(AsyncAttrs, DeclarativeBase): ...

        addresses = await user.awaitable_attrs.addresses
    """

    @property
    def awaitable_attrs(self) -> _AwaitableAttrs:
        """Return the loader: ``await obj.awaitable_attrs.name`` loads and returns ``obj.name``."""

class AsyncSession(Generic[_S]):
    """Asyncio session: proxies a sync ``Session`` and runs its IO in the greenlet bridge.

    Generic in the sync session class: ``AsyncSession[RoutingSession]`` has
    ``sync_session: RoutingSession``. Use as ``async with AsyncSession(engine) as session:``
    (closed on exit), or build sessions with ``async_sessionmaker``.
    """

    sync_session_class: type[_S]
    """The class (or factory) that builds ``sync_session``; ``Session`` unless configured."""
    sync_session: _S
    """The sync ``Session`` this object proxies; attach sync ORM event listeners to it."""
    @overload
    def __init__(
        self: AsyncSession[Session],
        bind: _AsyncBind | None = None,
        *,
        binds: Mapping[_BindKey, _AsyncBind] | None = None,
        sync_session_class: None = None,
        **kw: Any,
    ) -> None:
        """Create a session on ``bind`` (an ``AsyncEngine`` or ``AsyncConnection``).

        ``binds`` maps mapped classes, mappers, tables or names to their own async binds;
        ``sync_session_class`` picks the sync ``Session`` subclass; other keyword arguments go to
        the sync session (``autoflush``, ``expire_on_commit``, ``info``, ...).
        """

    @overload
    def __init__(
        self,
        bind: _AsyncBind | None = None,
        *,
        binds: Mapping[_BindKey, _AsyncBind] | None = None,
        sync_session_class: type[_S],
        **kw: Any,
    ) -> None: ...
    # -- binds
    @property
    def bind(self) -> _AsyncBind | None:
        """Return the session's default async bind, or None."""

    @bind.setter
    def bind(self, bind: _AsyncBind | None) -> None: ...
    @property
    def binds(self) -> Mapping[_BindKey, _AsyncBind]:
        """Return the per-entity binds (read-only), translated to their async objects."""

    def bind_mapper(self, mapper: _EntityKey[Any], bind: _AsyncBind) -> None:
        """Route statements for ``mapper`` (a mapped class or Mapper) to ``bind``."""

    def bind_table(self, table: TableClause, bind: _AsyncBind) -> None:
        """Route statements on ``table`` to ``bind``."""

    def get_bind(
        self,
        mapper: _EntityKey[Any] | None = None,
        *,
        clause: ClauseElement | None = None,
        bind: _SyncBind | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        """Return the sync Engine or Connection that a statement would use.

        Calls ``sync_session.get_bind``, so a sync session class that overrides ``get_bind``
        routes here too.
        """

    def get_async_bind(
        self,
        mapper: _EntityKey[Any] | None = None,
        clause: ClauseElement | None = None,
        bind: _AsyncBind | None = None,
        **kw: Any,
    ) -> _AsyncBind:
        """Return the async bind that a statement would use (``get_bind`` translated back)."""
    # -- statements
    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> Result[Unpack[_Ts]]:
        """Execute a statement and return its fully buffered result.

        Example::

            result = await session.execute(select(User.id, User.name))
            for user_id, name in result: ...

        For a server-side cursor use ``stream()``.
        """

    # DML without RETURNING (one parameter set at most): a CursorResult, so .rowcount type-checks.
    @overload
    async def execute(
        self,
        statement: Insert | Update | Delete,
        params: Mapping[str, Any] | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    @overload
    async def execute(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
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
        """Execute a statement and return the first column of its first row, or None."""

    @overload
    async def scalar(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> Any: ...
    @overload
    async def scalars(
        self,
        statement: TypedReturnsRows[_T],
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

        Example::

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
    @overload
    async def stream_scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> AsyncScalarResult[_T]:
        """Execute a statement on a server-side cursor and return its first column, async."""

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
        ident: Any,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: Any | None = None,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
    ) -> _O | None:
        """Return the instance of ``entity`` with primary key ``ident``, or None.

        Served from the identity map when present; otherwise loaded with a SELECT.
        """

    async def get_one(
        self,
        entity: _EntityKey[_O],
        ident: Any,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: Any | None = None,
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

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        """Write pending changes (all, or those of ``objects``) to the database."""

    async def run_sync(
        self, fn: Callable[Concatenate[_S, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        """Call ``fn(sync_session, *args, **kw)`` inside the greenlet bridge; return its result.

        Lets sync ORM code (lazy loads included) run unchanged. Example::

            count = await session.run_sync(lambda s: len(s.get(User, 1).addresses))
        """

    async def connection(
        self,
        bind_arguments: _BindArguments | None = None,
        execution_options: _ExecutionOptions | None = None,
    ) -> AsyncConnection:
        """Return the AsyncConnection of the current transaction, beginning one if needed."""
    # -- transactions
    def begin(self) -> AsyncSessionTransaction:
        """Begin a transaction: ``await session.begin()`` or ``async with session.begin():``."""

    def begin_nested(self) -> AsyncSessionTransaction:
        """Begin a SAVEPOINT: ``async with session.begin_nested():`` rolls back only its own work."""

    def get_transaction(self) -> AsyncSessionTransaction | None:
        """Return the current root transaction, or None when none is in progress."""

    def get_nested_transaction(self) -> AsyncSessionTransaction | None:
        """Return the innermost SAVEPOINT transaction, or None."""

    def in_transaction(self) -> bool:
        """Return True when a transaction is in progress."""

    def in_nested_transaction(self) -> bool:
        """Return True when a SAVEPOINT is in progress."""

    async def commit(self) -> None:
        """Flush and commit the current transaction (a no-op when none is in progress)."""

    async def rollback(self) -> None:
        """Roll back the current transaction, discarding pending changes."""

    async def close(self) -> None:
        """Release the connections and expunge every object; the session stays usable."""

    async def aclose(self) -> None:
        """Same as ``close()``; lets ``contextlib.aclosing(session)`` work."""

    async def reset(self) -> None:
        """Close the session and reset its state as if newly created."""

    async def invalidate(self) -> None:
        """Close, invalidating the connections (they are discarded, not returned to the pool)."""
    # -- identity map and unit of work (no IO)
    def add(self, instance: object) -> None:
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
    def identity_map(self, value: IdentityMap) -> None: ...
    @property
    def is_active(self) -> bool:
        """False only while a failed flush waits for ``rollback()``."""

    @property
    def autoflush(self) -> bool:
        """Whether queries flush pending changes first."""

    @autoflush.setter
    def autoflush(self, value: bool) -> None: ...
    @property
    def no_autoflush(self) -> AbstractContextManager[_S]:
        """Context manager that turns autoflush off inside its block: ``with session.no_autoflush:``."""

    @property
    def info(self) -> _InfoType:
        """A user dictionary, shared with ``sync_session.info``."""

    @property
    def execution_options(self) -> _ExecutionOptions:
        """Default execution options applied to every statement of the session."""

    @execution_options.setter
    def execution_options(self, value: _ExecutionOptions) -> None: ...
    @classmethod
    def object_session(cls, instance: object) -> Session | None:
        """Return the sync Session that ``instance`` belongs to, or None."""

    @classmethod
    def identity_key(
        cls,
        class_: type[Any] | None = None,
        ident: Any | tuple[Any, ...] = None,
        *,
        instance: Any | None = None,
        row: Row[Unpack[tuple[Any, ...]]] | RowMapping | None = None,
        identity_token: Any | None = None,
    ) -> tuple[type[Any], tuple[Any, ...], Any | None]:
        """Return the identity-map key of a class and primary key, an instance, or a row."""

    @classmethod
    @deprecated(
        "AsyncSession.close_all() is deprecated; use 'await sa_async.close_all_sessions()'."
    )
    def close_all(cls) -> Coroutine[Any, Any, None]:
        """Close every session in memory (deprecated: use ``close_all_sessions()``)."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session; the close completes even if the task is cancelled meanwhile."""

class AsyncSessionTransaction:
    """A transaction (or SAVEPOINT) of an AsyncSession.

    ``await session.begin()`` starts it; ``async with session.begin():`` also commits it on
    success and rolls it back on error.
    """

    session: AsyncSession[Any]
    """The session this transaction belongs to."""
    nested: bool
    """True for a SAVEPOINT."""
    sync_transaction: SessionTransaction | None
    """The sync ``SessionTransaction``, None until started."""
    def __init__(self, session: AsyncSession[Any], nested: bool = False) -> None: ...
    def __await__(self) -> Generator[Any, None, Self]: ...
    async def __aenter__(self) -> Self: ...
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
        self, bindkey: _EntityKey[Any] | None = None, *, bind: _AsyncBind | None = None, **kw: Any
    ) -> AsyncConnection:
        """Return the connection this transaction uses for ``bindkey`` (or ``bind``)."""

    async def commit(self) -> None:
        """Commit this transaction (or release this SAVEPOINT)."""

    async def rollback(self) -> None:
        """Roll back this transaction (or to this SAVEPOINT)."""

class _SessionBeginContext(Generic[_AS]):
    """Returned by ``async_sessionmaker.begin()``: a session with a transaction."""

    session: _AS
    transaction: AsyncSessionTransaction | None
    def __init__(self, session: _AS) -> None: ...
    async def __aenter__(self) -> _AS:
        """Begin a transaction on the new session and return the session."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit (or roll back on error), then close the session; not stopped by cancellation."""

class async_sessionmaker(Generic[_AS]):
    """A configured factory of async sessions.

    Example::

        Session = async_sessionmaker(engine, expire_on_commit=False)
        async with Session() as session: ...
        async with Session.begin() as session: ...  # commits on success
    """

    class_: type[_AS]
    """The session class this factory builds."""
    kw: dict[str, Any]
    """The keyword arguments passed to every session (``configure()`` updates them)."""
    @overload
    def __init__(
        self,
        bind: _AsyncBind | None = None,
        *,
        class_: type[_AS],
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: Any,
    ) -> None:
        """Configure the factory: ``bind``, ``class_`` (an AsyncSession subclass), and the
        session options; other keyword arguments (``binds``, ``sync_session_class``, ...) are
        passed to each session."""

    @overload
    def __init__(
        self: async_sessionmaker[AsyncSession[_S2]],
        bind: _AsyncBind | None = None,
        *,
        sync_session_class: type[_S2],
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: async_sessionmaker[AsyncSession[Session]],
        bind: _AsyncBind | None = None,
        *,
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: _InfoType | None = None,
        **kw: Any,
    ) -> None: ...
    def __call__(self, **local_kw: Any) -> _AS:
        """Create a session; ``local_kw`` overrides the configuration (``info`` is merged)."""

    def begin(self) -> _SessionBeginContext[_AS]:
        """Return ``async with maker.begin() as session:``: commit or roll back, then close."""

    def configure(self, **new_kw: Any) -> None:
        """Change the configuration used by sessions created from now on."""

def async_session(session: Session) -> AsyncSession[Any] | None:
    """Return the AsyncSession (of this library) proxying ``session``, or None."""

def async_object_session(instance: object) -> AsyncSession[Any] | None:
    """Return the AsyncSession that ``instance`` belongs to, or None."""

async def close_all_sessions() -> None:
    """Close every session in memory, sync and async."""

__all__ = [
    "AsyncAttrs",
    "AsyncSession",
    "AsyncSessionTransaction",
    "async_object_session",
    "async_session",
    "async_sessionmaker",
    "close_all_sessions",
]
