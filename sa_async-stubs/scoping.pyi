"""Scoped sessions: one session per scope (a thread, a task, a request...), reached through a registry."""

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, Generic, Literal, Protocol, TypeAlias, overload

from sqlalchemy import orm as sqlalchemy_orm
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
from sqlalchemy.inspection import Inspectable
from sqlalchemy.orm import (
    Mapper,
    Query,
    QueryPropertyDescriptor,
    Session,
    SessionTransaction,
    sessionmaker,
)
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
from typing_extensions import ParamSpec, TypeVar, TypeVarTuple, Unpack, deprecated

from .maker import async_sessionmaker
from .registry import ScopeRegistry as ScopeRegistry
from .session import AsyncSession
from .transaction import AsyncSessionTransaction

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
# Covariant, as AsyncSession and async_sessionmaker are: a registry of RoutingSession objects is
# usable wherever a registry of Session objects is expected.
_S_co = TypeVar("_S_co", bound=Session, default=Session, covariant=True)
_S2 = TypeVar("_S2", bound=Session)
# The members typed from the sync session class (run_sync, sync_session, no_autoflush) find it
# through the session class's bases: async_scoped_session[MyAsyncSession] is also an
# async_scoped_session[AsyncSession[Routing]] when MyAsyncSession derives from that.
_ScopedAS_co = TypeVar(
    "_ScopedAS_co", bound=AsyncSession[Session], default=AsyncSession[Session], covariant=True
)
_NewAS = TypeVar("_NewAS", bound=AsyncSession[Session])

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
_InfoType: TypeAlias = dict[Any, Any]
_IdentityKey: TypeAlias = tuple[type[object], tuple[object, ...], object]
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

class scoped_session(sqlalchemy_orm.scoped_session[Any], Generic[_S_co]):
    """Give each thread (or each scope of ``scopefunc``) its own sync session.

    Call it for the current scope's session, or use it as that session: every ``Session``
    method and attribute is proxied. A thread's session is closed when the thread exits.
    Example::

        Session = scoped_session(sessionmaker(engine))
        Session.add(user)
        Session.commit()
        Session.remove()
    """

    session_factory: sessionmaker[_S_co]
    """The sessionmaker that builds each scope's session; call it for a session of your own."""
    # sa_async's registry, a subclass of SQLAlchemy's ScopedRegistry, of this registry's sessions.
    registry: ScopeRegistry[_S_co]  # pyright: ignore[reportIncompatibleVariableOverride]
    """The sessions of the scopes, keyed by ``scopefunc()``."""
    def __init__(
        self, session_factory: sessionmaker[_S_co], scopefunc: Callable[[], Hashable] | None = None
    ) -> None:
        """Create the registry; without ``scopefunc`` the scope is the current thread."""

    def __call__(self, **kw: object) -> _S_co:
        """Return the current scope's session, creating it with ``kw`` if there is none.

        Raises ``InvalidRequestError`` when ``kw`` is given and the scope already has one.
        """

    def configure(self, **kwargs: object) -> None:
        """Change the factory's configuration for the sessions created from now on.

        Warns when sessions already exist: they keep their configuration.
        """

    def remove(self) -> None:
        """Close the current scope's session and forget it; the next use creates a new one."""

    def query_property(self, query_cls: type[Query[Any]] | None = None) -> QueryPropertyDescriptor:
        """Return a class attribute that gives a ``Query`` of its class on the current session.

        Example::

            class User(Base):
                query = Session.query_property()

            User.query.filter_by(name="ed").all()
        """

    # -- the current session's Session members
    def __contains__(self, instance: object) -> bool:
        """Return True when ``instance`` belongs to the current session."""

    def __iter__(self) -> Iterator[object]:
        """Iterate over the instances in the current session."""

    def add(self, instance: object, *, _warn: bool = True) -> None:
        """Place ``instance`` in the current session; it is inserted at the next flush."""

    def add_all(self, instances: Iterable[object]) -> None:
        """Place each of ``instances`` in the current session."""

    def begin(self, nested: bool = False) -> SessionTransaction:
        """Begin a transaction (a SAVEPOINT if ``nested``) on the current session."""

    def begin_nested(self) -> SessionTransaction:
        """Begin a SAVEPOINT on the current session."""

    def bind_mapper(self, mapper: _AnyEntityKey, bind: _SyncBind) -> None:
        """Route the current session's statements for ``mapper`` to ``bind``."""

    def bind_table(self, table: TableClause, bind: _SyncBind) -> None:
        """Route the current session's statements on ``table`` to ``bind``."""

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
        """Release the current session's connections and expunge its objects."""

    def commit(self) -> None:
        """Flush and commit the current session's transaction."""

    def connection(
        self,
        bind_arguments: _BindArguments | None = None,
        execution_options: _ExecutionOptions | None = None,
    ) -> Connection:
        """Return the connection of the current session's transaction, beginning one if needed."""

    def delete(self, instance: object) -> None:
        """Mark ``instance`` for deletion at the current session's next flush."""

    def delete_all(self, instances: Iterable[object]) -> None:
        """Mark each of ``instances`` for deletion at the next flush."""

    def enable_relationship_loading(self, obj: object) -> None:
        """Let the relationships of the transient or detached ``obj`` load from the current session."""

    # The parameters come in two overloads each, one parameter set or a list of them, so that
    # mypy sees the same parameter type in every overload a call matches: a dict[str, Any]
    # argument would otherwise make the call ambiguous and its result Any. (Hence the ignore:
    # SQLAlchemy's signature takes the union of both in one overload, which no call typed with a
    # dict or a list needs; only a params argument typed as that union itself is not accepted.)
    # Typed statements first (SELECT, DML with RETURNING): a Result of their column types.
    @overload  # type: ignore[override]
    def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[_Ts]]:
        """Execute a statement on the current session and return its result.

        Typed as ``AsyncSession.execute`` is: typed rows for typed statements, a
        ``CursorResult`` where the statement runs as one (INSERT without parameters, UPDATE with
        one parameter set at most, DELETE, ``text()``).
        """

    @overload
    def execute(
        self,
        statement: TypedReturnsRows[Unpack[_Ts]],
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[_Ts]]: ...
    # INSERT without parameters runs as one statement: a CursorResult. (With parameters, even a
    # single dict, an INSERT of a mapped class takes the ORM bulk path: a plain Result.)
    @overload
    def execute(
        self,
        statement: Insert,
        params: None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    # UPDATE with one parameter set at most, DELETE, and raw SQL: a CursorResult. (A list of
    # parameter sets makes an UPDATE of a mapped class an ORM bulk update by primary key,
    # which returns a plain Result; DELETE has no bulk path.)
    @overload
    def execute(
        self,
        statement: Update | Delete | TextClause,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    @overload
    def execute(
        self,
        statement: Delete | TextClause,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> CursorResult[Unpack[tuple[Any, ...]]]: ...
    # Any other statement: a Result of untyped rows.
    @overload
    def execute(
        self,
        statement: Executable,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    @overload
    # As AsyncSession.execute: only a params argument typed as the union is not taken.
    def execute(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        statement: Executable,
        params: Sequence[_Params],
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        _parent_execute_state: Any | None = None,
        _add_event: Any | None = None,
    ) -> Result[Unpack[tuple[Any, ...]]]: ...
    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Mark the attributes of ``instance`` (or only ``attribute_names``) to reload on access."""

    def expire_all(self) -> None:
        """Mark every instance of the current session to reload on next access."""

    def expunge(self, instance: object) -> None:
        """Remove ``instance`` from the current session."""

    def expunge_all(self) -> None:
        """Remove every instance from the current session."""

    def flush(self, objects: Sequence[object] | None = None) -> None:
        """Write the current session's pending changes (all, or those of ``objects``)."""

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
        bind_arguments: _BindArguments | None = None,
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
        """Return the Engine or Connection the current session would use for a statement."""

    def get_nested_transaction(self) -> SessionTransaction | None:
        """Return the current session's innermost SAVEPOINT transaction, or None."""

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
        bind_arguments: _BindArguments | None = None,
    ) -> _O:
        """Return the instance of ``entity`` with primary key ``ident``; raise ``NoResultFound``."""

    def get_transaction(self) -> SessionTransaction | None:
        """Return the current session's root transaction, or None."""

    def in_nested_transaction(self) -> bool:
        """Return True when the current session has a SAVEPOINT in progress."""

    def in_transaction(self) -> bool:
        """Return True when the current session has a transaction in progress."""

    def invalidate(self) -> None:
        """Close the current session, discarding its connections instead of pooling them."""

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:
        """Return True when ``instance`` has net changes to flush."""

    def merge(
        self, instance: _O, *, load: bool = True, options: Sequence[ORMOption] | None = None
    ) -> _O:
        """Copy the state of ``instance`` onto the current session's instance with its key."""

    def merge_all(
        self,
        instances: Iterable[_O],
        *,
        load: bool = True,
        options: Sequence[ORMOption] | None = None,
    ) -> Sequence[_O]:
        """Merge each of ``instances``; return the persistent instances in the same order."""

    def prepare(self) -> None:
        """Prepare the current session's two-phase transaction."""

    # One mapped entity: a Query of it; typed columns: a RowReturningQuery of their types; more
    # than eight, or untyped ones: a Query of untyped rows. The entity overload comes first, as
    # in Session.query, though a class could be both.
    @overload
    def query(self, _entity: _EntityType[_O]) -> Query[_O]:
        """Return a legacy ``Query`` on the current session.

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
    ) -> RowReturningQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, Unpack[tuple[Any, ...]]]: ...
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
        """Close the current session and reset it as if newly created."""

    def rollback(self) -> None:
        """Roll back the current session's transaction."""

    # Typed statements first: the first column's type, or None when there is no row. A
    # one-column statement has an overload of its own: pyright gives Any, not Any | None, for a
    # Select[Any] matched against the variadic form.
    @overload
    def scalar(
        self,
        statement: TypedReturnsRows[_T],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> _T | None:
        """Execute a statement on the current session; return the first column of the first row."""

    @overload
    def scalar(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> _T | None: ...
    @overload
    # As AsyncSession.scalar: pyright does not pair the TypedReturnsRows overloads.
    def scalar(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        statement: Executable,
        params: _Params | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> Any: ...
    # Typed statements first: a ScalarResult of the first column's type.
    @overload
    def scalars(
        self,
        statement: TypedReturnsRows[_T, Unpack[_Ts]],
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> ScalarResult[_T]:
        """Execute a statement on the current session; return the first column of each row."""

    @overload
    def scalars(
        self,
        statement: Executable,
        params: _ExecuteParams | None = None,
        *,
        execution_options: _ExecutionOptions = ...,
        bind_arguments: _BindArguments | None = None,
        **kw: Any,
    ) -> ScalarResult[Any]: ...
    @property
    def bind(self) -> _SyncBind | None:
        """The current session's default Engine or Connection."""

    @bind.setter
    def bind(self, attr: _SyncBind | None) -> None: ...
    @property
    def binds(self) -> Mapping[_BindKey, _SyncBind]:
        """The current session's per-entity binds."""

    @binds.setter
    def binds(self, attr: Mapping[_BindKey, _SyncBind]) -> None: ...
    @property
    def dirty(self) -> IdentitySet:
        """The current session's persistent instances with changed attributes."""

    @property
    def deleted(self) -> IdentitySet:
        """The current session's instances marked for deletion."""

    @property
    def new(self) -> IdentitySet:
        """The current session's pending instances."""

    @property
    def identity_map(self) -> IdentityMap:
        """The current session's identity map."""

    @identity_map.setter
    def identity_map(self, attr: IdentityMap) -> None: ...
    @property
    def is_active(self) -> bool:
        """False only while a failed flush of the current session waits for ``rollback()``."""

    @property
    def autoflush(self) -> bool:
        """Whether the current session's queries flush pending changes first."""

    @autoflush.setter
    def autoflush(self, attr: bool) -> None: ...
    @property
    def no_autoflush(self) -> AbstractContextManager[_S_co, None]:
        """A context manager that turns the current session's autoflush off in its block."""

    @property
    def info(self) -> _InfoType:
        """The current session's user dictionary."""

    @property
    def execution_options(self) -> immutabledict[str, Any]:
        """The current session's default execution options."""

    @execution_options.setter
    def execution_options(self, attr: immutabledict[str, Any]) -> None: ...
    @classmethod
    def object_session(cls, instance: object) -> Session | None:
        """Return the Session that ``instance`` belongs to, or None."""

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

class async_scoped_session(sqlalchemy_asyncio.async_scoped_session[Any], Generic[_ScopedAS_co]):
    """Give each scope of ``scopefunc`` (usually each task) its own async session.

    Call it for the current scope's session, or use it as that session: every ``AsyncSession``
    member is proxied, the async ones stay awaitable. When a task used as scope is done, its
    session is closed and forgotten. Example::

        Session = async_scoped_session(async_sessionmaker(engine), asyncio.current_task)
        Session.add(user)
        await Session.commit()
        await Session.remove()
    """

    # The maker of this registry's sessions, an async_sessionmaker as SQLAlchemy's attribute is.
    session_factory: async_sessionmaker[_ScopedAS_co]  # pyright: ignore[reportIncompatibleVariableOverride]
    """The sessionmaker that builds each scope's session; call it for a session of your own."""
    # sa_async's registry, a subclass of SQLAlchemy's ScopedRegistry, of this registry's sessions.
    registry: ScopeRegistry[_ScopedAS_co]  # pyright: ignore[reportIncompatibleVariableOverride]
    """The sessions of the scopes, keyed by ``scopefunc()``."""
    # The session type is solved on __new__, with a type variable of its own and no default:
    # pyrefly solves the class's type variable to its default when the factory is an inline
    # async_sessionmaker(...) call. __init__ repeats the parameters so that mypy names the
    # expected factory type, not async_sessionmaker[Never], when the factory is of the wrong kind.
    def __new__(
        cls, session_factory: async_sessionmaker[_NewAS], scopefunc: Callable[[], Hashable]
    ) -> async_scoped_session[_NewAS]:
        """Create a registry of the sessions that ``session_factory`` makes."""

    def __init__(
        self, session_factory: async_sessionmaker[_ScopedAS_co], scopefunc: Callable[[], Hashable]
    ) -> None:
        """Create the registry; ``scopefunc`` returns the current scope's key.

        ``asyncio.current_task`` gives each task its own session, closed when the task is done.
        """

    def __call__(self, **kw: object) -> _ScopedAS_co:
        """Return the current scope's session, creating it with ``kw`` if there is none.

        Raises ``InvalidRequestError`` when ``kw`` is given and the scope already has one.
        """

    def configure(self, **kwargs: object) -> None:
        """Change the factory's configuration for the sessions created from now on.

        Warns when sessions already exist: they keep their configuration.
        """

    async def remove(self) -> None:
        """Close the current scope's session and forget it; the next use creates a new one.

        The close completes even if the task is cancelled meanwhile.
        """

    # -- generated by tools/generate_stubs.py from session.pyi's AsyncSession: edit there, then run it
    @property
    def sync_session(self: async_scoped_session[AsyncSession[_S2]]) -> _S2:
        """The sync ``Session`` that the current session proxies; attach sync ORM event listeners to it."""

    # -- binds
    @property
    def bind(self) -> _AsyncBind | None:
        """The current session's default async bind, or None."""

    @bind.setter
    def bind(self, attr: _AsyncBind | None) -> None: ...
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
    # Ignored: SQLAlchemy's execute takes one parameter set or a list of them in one overload, and
    # ours take each in its own (see AsyncSession.execute), so only a params argument typed as that
    # union is not accepted.
    # The parameters come in two overloads each, one parameter set or a list of them, so that
    # mypy sees the same parameter type in every overload a call matches: a dict[str, Any]
    # argument would otherwise make the call ambiguous and its result Any.
    # Typed statements first (SELECT, DML with RETURNING): a Result of their column types.
    @overload  # type: ignore[override]
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
    # Ignored: pyright does not pair SQLAlchemy's TypedReturnsRows[_T] overload with ours for
    # TypedReturnsRows[_T, *_Ts], which takes the same statements and more.
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
        self: async_scoped_session[AsyncSession[_S2]],
        fn: Callable[Concatenate[_S2, _P], _T],
        *args: _P.args,
        **kw: _P.kwargs,
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
        """Release the connections and expunge every object; the current session stays usable.

        Runs to its end even if the task is cancelled meanwhile (the cancellation follows).
        """

    async def aclose(self) -> None:
        """Same as ``close()``; lets ``contextlib.aclosing(session)`` work."""

    async def reset(self) -> None:
        """Close the current session and reset its state as if newly created.

        Runs to its end even if the task is cancelled meanwhile (the cancellation follows).
        """

    async def invalidate(self) -> None:
        """Close, invalidating the connections (they are discarded, not returned to the pool)."""

    # -- identity map and unit of work (no IO)
    def add(self, instance: object, *, _warn: bool = True) -> None:
        """Place ``instance`` in the current session; it is inserted at the next flush."""

    def add_all(self, instances: Iterable[object]) -> None:
        """Place each of ``instances`` in the current session."""

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Mark the attributes of ``instance`` (or only ``attribute_names``) to reload on access."""

    def expire_all(self) -> None:
        """Mark every attribute of every instance in the current session to reload on next access."""

    def expunge(self, instance: object) -> None:
        """Remove ``instance`` from the current session."""

    def expunge_all(self) -> None:
        """Remove every instance from the current session."""

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:
        """Return True when ``instance`` has net changes to flush."""

    def __contains__(self, instance: object) -> bool:
        """Return True when ``instance`` belongs to the current session."""

    def __iter__(self) -> Iterator[object]:
        """Iterate over the instances in the current session (persistent and pending)."""

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
    def no_autoflush(
        self: async_scoped_session[AsyncSession[_S2]],
    ) -> AbstractContextManager[_S2, None]:
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
        """Default execution options applied to every statement of the current session."""

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

    # -- end of generated members
    @classmethod
    @deprecated(
        "async_scoped_session.close_all() is deprecated; use 'await sa_async.close_all_sessions()'."
    )
    async def close_all(cls) -> None:
        """Close every session in memory (deprecated: use ``close_all_sessions()``)."""

__all__ = ["ScopeRegistry", "async_scoped_session", "scoped_session"]
