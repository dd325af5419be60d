"""Protocols for code that takes a session or a scoped registry of sessions alike.

Annotate with ``AsyncSessionProtocol`` rather than ``AsyncSession | async_scoped_session[...]``:
both classes satisfy it structurally. ``SyncSessionProtocol`` does the same for SQLAlchemy's
``Session`` and ``scoped_session``. Example::

    async def rename(session: AsyncSessionProtocol, user_id: int, name: str) -> None:
        user = await session.get_one(User, user_id)
        user.name = name
        await session.flush()
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, Literal, Protocol, TypeAlias, overload

from sqlalchemy.engine import (
    Connection,
    CursorResult,
    Engine,
    Result,
    ScalarResult,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, AsyncScalarResult
from sqlalchemy.inspection import Inspectable
from sqlalchemy.orm import Mapper, Query, Session, SessionTransaction
from sqlalchemy.orm.identity import IdentityMap
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.orm.query import RowReturningQuery
from sqlalchemy.orm.util import AliasedClass, AliasedInsp
from sqlalchemy.sql import ClauseElement, Delete, Insert, TableClause, TextClause, Update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.sql.roles import (
    ColumnsClauseRole,
    ExpressionElementRole,
    TypedColumnsClauseRole,
)
from sqlalchemy.sql.selectable import ForUpdateParameter, TypedReturnsRows
from sqlalchemy.util import IdentitySet, immutabledict
from typing_extensions import ParamSpec, TypeVar, TypeVarTuple, Unpack

from .session import AsyncSessionTransaction

_T = TypeVar("_T")
_T0 = TypeVar("_T0")
_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")
_T4 = TypeVar("_T4")
_T5 = TypeVar("_T5")
_T6 = TypeVar("_T6")
_T7 = TypeVar("_T7")
_O = TypeVar("_O", bound=object)
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")
_S_co = TypeVar("_S_co", bound=Session, default=Session, covariant=True)

_AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
_SyncBind: TypeAlias = Engine | Connection
# Mapper is invariant in its class: Mapper[Any] is the mapper of any class.
_AnyEntityKey: TypeAlias = type[object] | Mapper[Any]
# The keys of Session.binds as SQLAlchemy spells them: Mapping is invariant in its keys.
_BindKey: TypeAlias = type[Any] | Mapper[Any] | TableClause | str
_EntityKey: TypeAlias = type[_O] | Mapper[_O]
_EntityType: TypeAlias = type[_O] | AliasedClass[_O] | Mapper[_O] | AliasedInsp[_O]
_Params: TypeAlias = Mapping[str, object]
_ExecuteParams: TypeAlias = _Params | Sequence[_Params]
_ExecutionOptions: TypeAlias = Mapping[str, object]
_BindArguments: TypeAlias = Mapping[str, object]
# What Session declares (dict is invariant): the sync protocol can ask no less of Session.
_SessionBindArguments: TypeAlias = dict[str, Any]
_InfoType: TypeAlias = dict[Any, Any]
_TypedColumn: TypeAlias = TypedColumnsClauseRole[_T] | SQLCoreOperations[_T] | type[_T]

class _HasClauseElement(Protocol):
    def __clause_element__(self) -> ExpressionElementRole[Any]: ...

_ColumnsClause: TypeAlias = (
    TypedColumnsClauseRole[Any]
    | ColumnsClauseRole
    | SQLCoreOperations[Any]
    | Literal["*", 1]
    | type[Any]
    | Inspectable[Any]
    | _HasClauseElement
)

class AsyncSessionProtocol(Protocol[_S_co]):
    """What ``AsyncSession`` and ``async_scoped_session`` share: the async session surface.

    Generic in the sync session class, as ``AsyncSession`` is: ``AsyncSessionProtocol`` means
    ``AsyncSessionProtocol[Session]`` and accepts sessions of any ``Session`` subclass;
    ``AsyncSessionProtocol[RoutingSession]`` types ``sync_session`` and ``run_sync`` with it.
    Properties are read-only here; set them on the session itself.
    """

    @property
    def sync_session(self) -> _S_co:
        """The sync ``Session`` proxied (for a registry: by the current scope's session)."""

    # -- binds
    @property
    def bind(self) -> _AsyncBind | None:
        """The session's default async bind, or None."""

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
    @overload
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
    async def execute(
        self,
        statement: Executable,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions | None = None,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    # Typed statements first: the first column's type, or None when there is no row.
    @overload
    async def scalar(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
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

    @property
    def is_active(self) -> bool:
        """False only while a failed flush waits for ``rollback()``."""

    @property
    def autoflush(self) -> bool:
        """Whether queries flush pending changes first."""

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

class SyncSessionProtocol(Protocol):
    """What SQLAlchemy's ``Session`` and ``scoped_session`` share: the sync session surface.

    Properties are read-only here; set them on the session itself. ``info`` and
    ``no_autoflush`` are left out: SQLAlchemy declares them on ``Session`` with descriptor
    classes of its own, which pyright does not resolve when it matches a protocol.
    """

    def __contains__(self, instance: object) -> bool:
        """Return True when ``instance`` belongs to the session."""

    def __iter__(self) -> Iterator[object]:
        """Iterate over the instances in the session."""

    def add(self, instance: object, *, _warn: bool = True) -> None:
        """Place ``instance`` in the session; it is inserted at the next flush."""

    def add_all(self, instances: Iterable[object]) -> None:
        """Place each of ``instances`` in the session."""

    def begin(self, nested: bool = False) -> SessionTransaction:
        """Begin a transaction (a SAVEPOINT if ``nested``) on the session."""

    def begin_nested(self) -> SessionTransaction:
        """Begin a SAVEPOINT on the session."""

    def bind_mapper(self, mapper: _AnyEntityKey, bind: _SyncBind) -> None:
        """Route the session's statements for ``mapper`` to ``bind``."""

    def bind_table(self, table: TableClause, bind: _SyncBind) -> None:
        """Route the session's statements on ``table`` to ``bind``."""

    def bulk_insert_mappings(
        self,
        mapper: _AnyEntityKey,
        mappings: Iterable[dict[str, Any]],
        return_defaults: bool = False,
        render_nulls: bool = False,
    ) -> None:
        """Insert rows given as dictionaries for ``mapper`` (legacy bulk API)."""

    def bulk_save_objects(
        self,
        objects: Iterable[object],
        return_defaults: bool = False,
        update_changed_only: bool = True,
        preserve_order: bool = True,
    ) -> None:
        """Insert or update ``objects`` without the unit of work's bookkeeping (legacy bulk API)."""

    def bulk_update_mappings(
        self, mapper: _AnyEntityKey, mappings: Iterable[dict[str, Any]]
    ) -> None:
        """Update rows given as dictionaries (primary key included) for ``mapper`` (legacy)."""

    def close(self) -> None:
        """Release the session's connections and expunge its objects."""

    def commit(self) -> None:
        """Flush and commit the session's transaction."""

    def connection(
        self,
        bind_arguments: _SessionBindArguments | None = None,
        execution_options: _ExecutionOptions | None = None,
    ) -> Connection:
        """Return the connection of the session's transaction, beginning one if needed."""

    def delete(self, instance: object) -> None:
        """Mark ``instance`` for deletion at the session's next flush."""

    def delete_all(self, instances: Iterable[object]) -> None:
        """Mark each of ``instances`` for deletion at the next flush."""

    def enable_relationship_loading(self, obj: object) -> None:
        """Let the relationships of the transient or detached ``obj`` load from the session."""

    # The overloads of scoped_session.execute, in its order (mypy matches overloads in order),
    # each returning what Session.execute declares: a plain Result, also for DML.
    @overload
    def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[_Ts]]:
        """Execute a statement and return its result (typed rows for a typed statement)."""

    @overload
    def execute(
        self,
        statement: TypedReturnsRows[Unpack[tuple[Any, ...]]],
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Insert,
        params: None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Update | Delete | TextClause,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Delete | TextClause,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Executable,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Executable,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Mark the attributes of ``instance`` (or only ``attribute_names``) to reload on access."""

    def expire_all(self) -> None:
        """Mark every instance of the session to reload on next access."""

    def expunge(self, instance: object) -> None:
        """Remove ``instance`` from the session."""

    def expunge_all(self) -> None:
        """Remove every instance from the session."""

    def flush(self, objects: Sequence[object] | None = None) -> None:
        """Write the session's pending changes (all, or those of ``objects``)."""

    def get(
        self,
        entity: _EntityKey[_O],
        ident: object,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: object = None,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> _O | None:
        """Return the instance of ``entity`` with primary key ``ident``, or None."""

    def get_bind(
        self,
        mapper: _AnyEntityKey | None = None,
        *,
        clause: ClauseElement | None = None,
        bind: _SyncBind | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        """Return the Engine or Connection the session would use for a statement."""

    def get_nested_transaction(self) -> SessionTransaction | None:
        """Return the session's innermost SAVEPOINT transaction, or None."""

    def get_one(
        self,
        entity: _EntityKey[_O],
        ident: object,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: object = None,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> _O:
        """Return the instance of ``entity`` with primary key ``ident``; raise ``NoResultFound``."""

    def get_transaction(self) -> SessionTransaction | None:
        """Return the session's root transaction, or None."""

    def in_nested_transaction(self) -> bool:
        """Return True when the session has a SAVEPOINT in progress."""

    def in_transaction(self) -> bool:
        """Return True when the session has a transaction in progress."""

    def invalidate(self) -> None:
        """Close the session, discarding its connections instead of pooling them."""

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:
        """Return True when ``instance`` has net changes to flush."""

    def merge(
        self, instance: _O, *, load: bool = True, options: Sequence[ORMOption] | None = None
    ) -> _O:
        """Copy the state of ``instance`` onto the session's instance with its key."""

    def merge_all(
        self,
        instances: Iterable[_O],
        *,
        load: bool = True,
        options: Sequence[ORMOption] | None = None,
    ) -> Sequence[_O]:
        """Merge each of ``instances``; return the persistent instances in the same order."""

    def prepare(self) -> None:
        """Prepare the session's two-phase transaction."""

    # One mapped entity: a Query of it; typed columns: a RowReturningQuery of their types; more
    # than eight, or untyped ones: a Query of untyped rows. The entity overload comes first, as
    # in Session.query, though a class could be both.
    @overload
    def query(self, _entity: _EntityType[_O]) -> Query[_O]:
        """Return a legacy ``Query`` on the session.

        ``Session.query(User)`` is a ``Query[User]``; ``Session.query(User.id, User.name)`` a
        ``RowReturningQuery[int, str]``.
        """

    @overload
    def query(self, _colexpr: TypedColumnsClauseRole[_T]) -> RowReturningQuery[_T]: ...
    @overload
    def query(
        self, entity0: _TypedColumn[_T0], entity1: _TypedColumn[_T1], /
    ) -> RowReturningQuery[_T0, _T1]: ...
    @overload
    def query(
        self, entity0: _TypedColumn[_T0], entity1: _TypedColumn[_T1], entity2: _TypedColumn[_T2], /
    ) -> RowReturningQuery[_T0, _T1, _T2]: ...
    @overload
    def query(
        self,
        entity0: _TypedColumn[_T0],
        entity1: _TypedColumn[_T1],
        entity2: _TypedColumn[_T2],
        entity3: _TypedColumn[_T3],
        /,
    ) -> RowReturningQuery[_T0, _T1, _T2, _T3]: ...
    @overload
    def query(
        self,
        entity0: _TypedColumn[_T0],
        entity1: _TypedColumn[_T1],
        entity2: _TypedColumn[_T2],
        entity3: _TypedColumn[_T3],
        entity4: _TypedColumn[_T4],
        /,
    ) -> RowReturningQuery[_T0, _T1, _T2, _T3, _T4]: ...
    @overload
    def query(
        self,
        entity0: _TypedColumn[_T0],
        entity1: _TypedColumn[_T1],
        entity2: _TypedColumn[_T2],
        entity3: _TypedColumn[_T3],
        entity4: _TypedColumn[_T4],
        entity5: _TypedColumn[_T5],
        /,
    ) -> RowReturningQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...
    @overload
    def query(
        self,
        entity0: _TypedColumn[_T0],
        entity1: _TypedColumn[_T1],
        entity2: _TypedColumn[_T2],
        entity3: _TypedColumn[_T3],
        entity4: _TypedColumn[_T4],
        entity5: _TypedColumn[_T5],
        entity6: _TypedColumn[_T6],
        /,
    ) -> RowReturningQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...
    @overload
    def query(
        self,
        entity0: _TypedColumn[_T0],
        entity1: _TypedColumn[_T1],
        entity2: _TypedColumn[_T2],
        entity3: _TypedColumn[_T3],
        entity4: _TypedColumn[_T4],
        entity5: _TypedColumn[_T5],
        entity6: _TypedColumn[_T6],
        entity7: _TypedColumn[_T7],
        /,
        *entities: _ColumnsClause,
    ) -> RowReturningQuery[Unpack[tuple[Any, ...]]]: ...
    @overload
    def query(self, *entities: _ColumnsClause, **kwargs: object) -> Query[Any]: ...
    def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdateParameter = None,
    ) -> None:
        """Reload the attributes of ``instance`` (or only ``attribute_names``) from the database."""

    def reset(self) -> None:
        """Close the session and reset it as if newly created."""

    def rollback(self) -> None:
        """Roll back the session's transaction."""

    # Typed statements first: the first column's type, or None when there is no row.
    @overload
    def scalar(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> _T | None:
        """Execute a statement on the session; return the first column of the first row."""

    @overload
    def scalar(
        self,
        statement: Executable,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> Any: ...
    # Typed statements first: a ScalarResult of the first column's type.
    @overload
    def scalars(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> ScalarResult[_T]:
        """Execute a statement on the session; return the first column of each row."""

    @overload
    def scalars(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _SessionBindArguments | None = None,
    ) -> ScalarResult[Any]: ...
    @property
    def bind(self) -> _SyncBind | None:
        """The session's default Engine or Connection."""

    @property
    def binds(self) -> Mapping[_BindKey, _SyncBind]:
        """The session's per-entity binds."""

    @property
    def dirty(self) -> IdentitySet:
        """The session's persistent instances with changed attributes."""

    @property
    def deleted(self) -> IdentitySet:
        """The session's instances marked for deletion."""

    @property
    def new(self) -> IdentitySet:
        """The session's pending instances."""

    @property
    def identity_map(self) -> IdentityMap:
        """The session's identity map."""

    @property
    def is_active(self) -> bool:
        """False only while a failed flush of the session waits for ``rollback()``."""

    @property
    def autoflush(self) -> bool:
        """Whether the session's queries flush pending changes first."""

    @property
    def execution_options(self) -> immutabledict[str, Any]:
        """The session's default execution options."""

__all__ = ["AsyncSessionProtocol", "SyncSessionProtocol"]
