"""AsyncSession, its transactions, its sessionmaker and AsyncAttrs.

The session proxies a sync ``Session``. Members that only forward to the sync session are
declared as data (the tuples below) and built by ``_install_proxies``; their exact signatures and
documentation live in ``sa_async-stubs/session.pyi``. What is written out here is the real
logic: the greenlet bridge calls, the concurrent-use guard, bind translation, transactions, the
async context managers, and the refusal of attribute IO outside the bridge (``ImplicitIOError``).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Collection, Coroutine, Mapping
from types import FrameType, GenericAlias, TracebackType
from typing import Any, NoReturn, Self, TypeVar

from greenlet import getcurrent  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, Engine, Result, ScalarResult
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
)
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import InstanceState, Mapper, Session, SessionTransaction, object_session
from sqlalchemy.orm import close_all_sessions as close_all_sync_sessions
from sqlalchemy.pool import Pool
from sqlalchemy.util import immutabledict

from . import _compat
from ._bridge import in_bridge, run_in_bridge
from ._completion import COMMITTED_NOTE, RunToCompletion
from .exc import (
    ArgumentTypeError,
    ConcurrentSessionUseError,
    ImplicitIOError,
    ScopeEndedError,
    SessionClassError,
    SyncBindError,
    TransactionFinishedError,
)

_T = TypeVar("_T")
AsyncBind = AsyncEngine | AsyncConnection
SyncBind = Engine | Connection

# immutabledict, the class the sync Session merges options into: any other mapping is copied into
# one on every statement.
_EXECUTE_OPTIONS: immutabledict[str, Any] = immutabledict({"prebuffer_rows": True})
_STREAM_OPTIONS: immutabledict[str, Any] = immutabledict({"stream_results": True})

# The attribute of a sync session that holds a weak reference to its AsyncSession: a proxy lives
# as long as user code holds it. An attribute of the sync session costs a tenth of a weak-dict
# entry, and goes with the sync session.
_PROXY_ATTRIBUTE = "_sa_async_proxy"
# Sync transaction -> its AsyncSessionTransaction, held weakly likewise.
_transaction_proxies: weakref.WeakValueDictionary[SessionTransaction, AsyncSessionTransaction] = (
    weakref.WeakValueDictionary()
)

# Forwarded to the sync session.
_SYNC_METHODS = (
    "__contains__",
    "__iter__",
    "is_modified",
    "in_transaction",
    "in_nested_transaction",
)
# Forwarded too, but refused while another task's operation runs: they change the session's state.
_GUARDED_SYNC_METHODS = ("add", "add_all", "expire", "expire_all", "expunge", "expunge_all")
# Run in the greenlet bridge and awaited.
_ASYNC_METHODS = (
    "refresh",
    "delete",
    "delete_all",
    "merge",
    "merge_all",
    "flush",
    "get_one",
    "rollback",
    "invalidate",
)
# Run in the bridge to their end even if the caller is cancelled meanwhile: a commit stopped
# halfway has an unknown outcome, and a close stopped halfway keeps its connection.
_ASYNC_METHODS_RUN_TO_COMPLETION = ("reset",)
_READ_ONLY_PROPERTIES = ("dirty", "deleted", "new", "is_active", "no_autoflush", "info")
_SETTABLE_PROPERTIES = ("identity_map", "autoflush", "execution_options")
_CLASSMETHODS = ("object_session", "identity_key")


def _sync_bind_of(bind: object, role: str = "bind") -> SyncBind:
    """Return the sync Engine/Connection behind an async bind, or raise naming the mistake."""
    if isinstance(bind, AsyncEngine):
        return bind.sync_engine
    if isinstance(bind, AsyncConnection):
        if bind.sync_connection is None:
            raise async_exc.AsyncContextNotStarted(
                f"The AsyncConnection given as {role} has not been started; open it with "
                "'async with engine.connect() as conn:' (or 'await engine.connect()') first."
            )
        return bind.sync_connection
    # Messages open with "AsyncEngine expected, got <type>", as SQLAlchemy's do, for code that
    # matches on them.
    if isinstance(bind, (Engine, Connection)):
        raise SyncBindError(
            f"AsyncEngine expected, got {type(bind).__name__} as {role}: it must be an "
            "AsyncEngine or AsyncConnection; create the engine with create_async_engine(...) "
            "or wrap an existing one with AsyncEngine(engine)."
        )
    raise SyncBindError(
        f"AsyncEngine expected, got {type(bind).__name__} as {role}: it must be an "
        "AsyncEngine or AsyncConnection."
    )


def check_sync_session_class(value: object) -> None:
    """Raise ``SessionClassError`` unless ``value`` can serve as ``sync_session_class``."""
    if isinstance(value, type) and issubclass(
        value, sqlalchemy_asyncio.AsyncSession | AsyncSession
    ):
        raise SessionClassError(
            f"sync_session_class must be a sync sqlalchemy.orm.Session subclass, got "
            f"{value.__name__}, an asyncio session class: pass it as class_= instead "
            f"(async_sessionmaker(engine, class_={value.__name__}))."
        )
    if not callable(value) or (isinstance(value, type) and not issubclass(value, Session)):
        raise SessionClassError(
            f"sync_session_class must be a subclass of sqlalchemy.orm.Session, got "
            f"{value!r}; pass the sync session class (e.g. a routing Session)."
        )


def _check_mapping(parameter: str, value: object, hint: str) -> None:
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{parameter} must be a mapping ({hint}), got a {type(value).__name__}."
        )


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop: a coroutine driven by hand
        return None


def _task_name(task: asyncio.Task[Any] | None) -> str:
    if task is None:
        return f"thread {threading.current_thread().name!r}, outside any task"
    return f"task {task.get_name()!r}"


def _in_chain(frame: FrameType | None, wanted: FrameType) -> bool:
    """Whether ``wanted`` is ``frame`` or one of its callers."""
    while frame is not None:
        if frame is wanted:
            return True
        frame = frame.f_back
    return False


def _awaits(task: asyncio.Task[Any], wanted: FrameType) -> bool:
    """Whether ``wanted`` is the frame of a coroutine that the suspended ``task`` awaits."""
    awaited: Any = task.get_coro()
    while awaited is not None:
        if getattr(awaited, "cr_frame", None) is wanted:
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def _inside(operation_frame: FrameType | None) -> bool:
    """Whether the calling code runs as part of the operation whose coroutine frame is given:
    awaited by it, or run by it in the bridge."""
    if operation_frame is None:
        return False
    if _in_chain(sys._getframe(2), operation_frame):
        return True
    # Sync code in a bridge worker: the task's frames are where the worker's parent switched.
    parent = getcurrent().parent
    return parent is not None and _in_chain(parent.gr_frame, operation_frame)


def _task_running(operation_frame: FrameType | None) -> asyncio.Task[Any] | None:
    """The task of this event loop whose coroutines include ``operation_frame``, if any."""
    if operation_frame is None:
        return None
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        return None
    return next((task for task in tasks if _awaits(task, operation_frame)), None)


# The operation an AsyncSession of an ended scope is left with once its registry has closed it:
# every later operation finds the session taken, and _refuse_concurrent_use says why.
_SCOPE_ENDED: tuple[str, FrameType | None] = ("the end of its scope", None)
_BLOCK_END = "the end of an 'async with session.begin()' block"


def _note_if_committed(returned: bool) -> str | None:
    """The note for a cancellation held while a commit ran: it committed if it returned."""
    return COMMITTED_NOTE if returned else None


# Runtime subscripting (``AsyncSession[RoutingSession]``) for annotations evaluated at run time.
_subscriptable: classmethod[Any, [Any], GenericAlias] = classmethod(GenericAlias)


def _with_options(
    execution_options: Mapping[str, Any] | None, forced: immutabledict[str, Any]
) -> immutabledict[str, Any]:
    if not execution_options:
        return forced
    merged: immutabledict[str, Any] = immutabledict(execution_options).union(forced)
    return merged


class _AwaitableAttrs(_compat.AwaitableAttrsLoader):
    """``obj.awaitable_attrs``: each attribute read returns an awaitable that loads it.

    A subclass of SQLAlchemy's loader class, on its slot (``_instance``), for identity.
    """

    __slots__ = ()
    __class_getitem__ = _subscriptable

    def __init__(self, instance: object) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Coroutine[Any, Any, Any]:
        sync_session = object_session(self._instance)
        session = None if sync_session is None else async_session(sync_session)
        if session is None:
            return run_in_bridge(getattr, self._instance, name)
        return session._run_guarded(f"awaitable_attrs.{name}", getattr, self._instance, name)


class AsyncAttrs(sqlalchemy_asyncio.AsyncAttrs):
    """Mixin for mapped classes: ``await obj.awaitable_attrs.name`` loads ``obj.name``.

    A subclass of SQLAlchemy's ``AsyncAttrs`` for identity; the loader is sa_async's.
    """

    # SQLAlchemy's name for the loader class (its own loader does not go through the guard).
    _AsyncAttrGetitem = _AwaitableAttrs  # type: ignore[assignment]

    @property
    def awaitable_attrs(self) -> _AwaitableAttrs:
        return _AwaitableAttrs(self)


class AsyncSession(sqlalchemy_asyncio.AsyncSession):
    """Asyncio proxy of a sync ``Session``; see the stubs for each member's documentation.

    A subclass of SQLAlchemy's ``AsyncSession`` for identity only (``isinstance`` checks and
    annotations of other libraries accept it): every member is defined here, none of SQLAlchemy's
    implementation runs (``tests/test_identity.py`` lists the few inherited names and why).
    """

    # A Session subclass or any callable building one, as SQLAlchemy's documentation allows.
    sync_session_class: type[Session] | Callable[..., Session] = Session  # type: ignore[assignment]
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

    __class_getitem__ = _subscriptable

    def __init__(
        self,
        bind: AsyncBind | None = None,
        *,
        binds: Mapping[Any, AsyncBind] | None = None,
        sync_session_class: type[Session] | Callable[..., Session] | None = None,
        **kw: Any,
    ) -> None:
        if sync_session_class is not None:
            self.sync_session_class = sync_session_class
        session_factory = self.sync_session_class
        if session_factory is not Session:
            check_sync_session_class(session_factory)
        if binds is not None:
            _check_mapping("binds", binds, "e.g. binds={User: engine, Order: other_engine}")
        if "info" in kw and kw["info"] is not None:
            _check_mapping("info", kw["info"], "the session's info dictionary, e.g. info={}")
        sync_bind: SyncBind | None
        if bind is None or type(bind) is AsyncEngine:  # the common cases, without a call
            sync_bind = None if bind is None else bind.sync_engine
        else:
            sync_bind = _sync_bind_of(bind)
        sync_binds = (
            {key: _sync_bind_of(value, f"binds[{key!r}]") for key, value in binds.items()}
            if binds
            else None
        )
        self._async_bind = bind
        self._async_binds: dict[Any, AsyncBind] = dict(binds) if binds else {}
        self._translation: dict[object, object] | None = None
        # The operation in progress and the frame of the coroutine running it, for the
        # concurrent-use guard.
        self._operation: tuple[str, FrameType | None] | None = None
        # What the scope of a scoped registry was, once it has ended (see mark_scope_ended).
        self._ended_scope: _EndedScope | None = None
        sync_session = session_factory(bind=sync_bind, binds=sync_binds, **kw)
        if not isinstance(sync_session, Session):
            raise SessionClassError(
                f"sync_session_class returned {type(sync_session).__name__}, not a "
                "sqlalchemy.orm.Session; it must build a Session (or subclass) instance."
            )
        self.sync_session = self._assign_proxied(sync_session)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.sync_session).__name__} at {id(self):#x}>"

    # -- the sync session -> AsyncSession lookup, under SQLAlchemy's names (async_session(),
    # InstanceState.async_session and SQLAlchemy's own helpers go through them). Each sync
    # session holds a weak reference to its AsyncSession in an attribute: a tenth of the cost of
    # SQLAlchemy's registry of weak references, and gone with the sync session.

    @property
    def _proxied(self) -> Session:
        return self.sync_session

    @_proxied.setter
    def _proxied(self, sync_session: Session) -> None:
        self.sync_session = self._assign_proxied(sync_session)

    def _assign_proxied(self, target: Any) -> Any:
        if target is not None:
            setattr(target, _PROXY_ATTRIBUTE, weakref.ref(self))
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

    def _maker_context_manager(self) -> _SessionBeginContext:
        """What ``sessionmaker.begin()`` and ``async_sessionmaker.begin()`` return."""
        return _SessionBeginContext(self)

    # -- the concurrent-use guard: one operation at a time, checked before any IO

    def _enter(self, operation: str) -> tuple[str, FrameType | None] | None:
        """Take this session for ``operation`` of the calling task, or refuse it before any IO.

        The operation is known by the frame of the coroutine that runs it (the caller): taking
        it costs 20 ns, where ``asyncio.current_task()`` costs 300 ns (before Python 3.12). Who
        is calling is only worked out when the session is already taken (``_inside``).

        Returns what ``self._operation`` goes back to when the operation ends: None, or for a
        nested call (run_sync calling back, say) the running operation, left in place. The hot
        methods call this around ``run_in_bridge`` themselves, in a try/finally, rather than
        through ``_run_guarded``: one coroutine fewer costs as much as the guard does.
        """
        running = self._operation
        if running is None:
            self._operation = (operation, sys._getframe(1))
        elif not _inside(running[1]):
            self._refuse_concurrent_use(operation)
        return running

    async def _run_guarded(
        self, operation: str, fn: Callable[..., _T], /, *args: Any, **kw: Any
    ) -> _T:
        """Run ``fn`` in the bridge as ``operation`` of this session, refusing concurrent use."""
        running = self._enter(operation)
        try:
            return await run_in_bridge(fn, *args, **kw)
        finally:
            self._operation = running

    def _refuse_concurrent_use(self, refused: str) -> None:
        """Raise unless the session is free or the caller is part of its running operation."""
        running = self._operation
        if self._ended_scope is not None:
            self._refuse_after_scope(refused)
        if running is None or _inside(running[1]):
            return
        operation, frame = running
        holder = _task_running(frame)
        running_in = "another task or thread" if holder is None else _task_name(holder)
        name = type(self).__name__
        raise ConcurrentSessionUseError(
            f"{name} {id(self):#x} is in use: {operation} is running in {running_in}, "
            f"so {refused} from {_task_name(_current_task())} was refused before touching the "
            f"connection. An {name} serves one task at a time: give each concurrent task its "
            "own session (one async_sessionmaker() call per task, or async_scoped_session "
            "with scopefunc=asyncio.current_task), or await the first operation before "
            "starting the next."
        )

    def _refuse_after_scope(self, refused: str) -> None:
        name = type(self).__name__
        scope = "an ended scope" if self._ended_scope is None else self._ended_scope.scope
        raise ScopeEndedError(
            f"{refused} was refused: this {name} was the session of {scope} in a "
            "scoped registry, and that scope has ended. The registry closed the session then, "
            "rolling back whatever was not committed, so it refuses to be used any more; "
            f"nothing was sent to the database now. A scoped session lives as long as its "
            "scope: commit before the scope ends, or give work that outlives it (a background "
            "task) a session of its own, e.g. 'async with maker() as session:' in that task."
        )

    # -- binds: the sync session holds sync binds; we translate them back to their async objects
    # (the members keep SQLAlchemy's names, which its own tests and some libraries use)

    @property
    def _translate_binds(self) -> dict[object, object]:  # type: ignore[override]
        """The sync <-> async translation of this session's binds, built once per bind change."""
        table = self._translation
        if table is None:
            table = {}
            for async_bind in (self._async_bind, *self._async_binds.values()):
                if async_bind is not None:
                    sync_bind = _sync_bind_of(async_bind)
                    table[async_bind] = sync_bind
                    table[sync_bind] = async_bind
            self._translation = table
        return table

    def _invalidate_translate_binds(self) -> None:
        self._translation = None

    def _register_async_bind(self, key: Any, bind: AsyncBind) -> None:
        self._async_binds[key] = bind
        self._translation = None

    def _translate_for_bind(self, bind: Any) -> Any:
        """Return the async object of one of this session's sync binds (or the reverse)."""
        if bind is None:
            return None
        try:
            return self._translate_binds[bind]
        except KeyError:
            raise async_exc.AsyncBindNotFound(
                f"Can't translate bind {bind!r} to its async counterpart: it is not among "
                f"the binds of this {type(self).__name__}. Set binds on the "
                f"{type(self).__name__} (bind=, binds=, bind_mapper(), bind_table()) rather "
                "than on its sync_session."
            ) from None

    @property
    def bind(self) -> AsyncBind | None:
        found: AsyncBind | None = self._translate_for_bind(self.sync_session.bind)
        return found

    @bind.setter
    def bind(self, bind: AsyncBind | None) -> None:
        self.sync_session.bind = None if bind is None else _sync_bind_of(bind)
        self._async_bind = bind
        self._invalidate_translate_binds()

    @property
    def binds(self) -> Mapping[Any, AsyncBind]:
        # SQLAlchemy's read-only mapping type, as Session.binds returns.
        return immutabledict(
            {key: self._translate_for_bind(value) for key, value in self.sync_session.binds.items()}
        )

    def bind_mapper(self, mapper: Any, bind: AsyncBind) -> None:
        self.sync_session.bind_mapper(mapper, _sync_bind_of(bind))
        self._register_async_bind(mapper, bind)

    def bind_table(self, table: Any, bind: AsyncBind) -> None:
        self.sync_session.bind_table(table, _sync_bind_of(bind))
        self._register_async_bind(table, bind)

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: SyncBind | None = None,
        **kw: Any,
    ) -> SyncBind:
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
        sync_bind = None if bind is None else _sync_bind_of(bind)
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
        result = await self.stream(
            statement,
            params,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
            **kw,
        )
        return result.scalars()

    async def get(self, entity: Any, ident: Any, **options: Any) -> Any:
        if not options and self._operation is None:
            found = _identity_map_hit(self.sync_session, entity, ident)
            if found is not None:
                return found
        running = self._enter("get()")
        try:
            return await run_in_bridge(self.sync_session.get, entity, ident, **options)
        finally:
            self._operation = running

    async def run_sync(self, fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
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
        return AsyncSessionTransaction(self)

    def begin_nested(self) -> AsyncSessionTransaction:
        return AsyncSessionTransaction(self, nested=True)

    def get_transaction(self) -> AsyncSessionTransaction | None:
        sync_transaction = self.sync_session.get_transaction()
        if sync_transaction is None:
            return None
        found: AsyncSessionTransaction = AsyncSessionTransaction._retrieve_proxy_for_target(
            sync_transaction, async_session=self
        )
        return found

    def get_nested_transaction(self) -> AsyncSessionTransaction | None:
        sync_transaction = self.sync_session.get_nested_transaction()
        if sync_transaction is None:
            return None
        found: AsyncSessionTransaction = AsyncSessionTransaction._retrieve_proxy_for_target(
            sync_transaction, async_session=self
        )
        return found

    async def commit(self) -> None:
        sync_session = self.sync_session
        await self._flush_before_commit("commit()", sync_session.get_transaction())
        # The COMMIT runs to its end even if the caller is cancelled meanwhile: abandoned in
        # flight, its outcome would be unknown.
        await RunToCompletion(
            self._run_guarded("commit()", sync_session.commit), note=_note_if_committed
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
        if self._operation is _SCOPE_ENDED:
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
        await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    def close_all(cls) -> Coroutine[Any, Any, None]:
        # Warned by hand rather than with @deprecated, which passes category= by keyword: code
        # that intercepts warnings.warn (SQLAlchemy's test helpers do) expects it positional.
        warnings.warn(
            "The AsyncSession.close_all() method is deprecated and will be removed in a future "
            "release. Use 'await sa_async.close_all_sessions()' instead.",
            sa_exc.SADeprecationWarning,
            stacklevel=2,
        )
        return close_all_sessions()


# Session classes whose get() may be answered from the identity map (see _identity_map_hit).
_plain_identity_lookup: weakref.WeakKeyDictionary[type[Session], bool] = weakref.WeakKeyDictionary()


def _identity_map_hit(sync_session: Session, entity: Any, ident: Any) -> Any:
    """Return what ``sync_session.get(entity, ident)`` returns when that needs no IO, else None.

    The fast path of ``AsyncSession.get()``: an object already in the identity map, of the
    requested class and not expired, is returned without entering the bridge. Anything else
    (a miss, an expired object, a composite key given as a dict, a session class that looks up
    identities its own way) returns None and takes the full path, which decides as it always did.
    """
    session_class = type(sync_session)
    plain = _plain_identity_lookup.get(session_class)
    if plain is None:
        plain = _plain_identity_lookup[session_class] = _compat.looks_up_identities_like_session(
            session_class
        )
    if not plain or isinstance(ident, dict):
        return None
    mapper = sa_inspect(entity, raiseerr=False)
    if not isinstance(mapper, Mapper) or mapper.always_refresh:
        return None
    primary_key = tuple(ident) if isinstance(ident, (tuple, list)) else (ident,)
    if len(primary_key) != len(mapper.primary_key):
        return None
    found = sync_session.identity_map.get(mapper.identity_key_from_primary_key(primary_key))
    if found is None or not isinstance(found, mapper.class_):
        return None
    if sa_inspect(found).expired:
        return None
    return found


def _compile_forward(
    name: str,
    signature: inspect.Signature,
    call: str,
    *,
    prologue: str = "",
    is_async: bool = False,
    module: str = __name__,
    **namespace: Any,
) -> Callable[..., Any]:
    """Compile ``def name(self, <signature's parameters>): return <call>(<them>)``.

    A forwarder with the target's own parameters is called, and calls on, without packing and
    unpacking ``*args`` / ``**kw``, which costs 0.2-0.3 µs a call: most of what a generic
    forwarder adds to ``add()``. Parameters that have a default are passed on by keyword, as
    SQLAlchemy's own proxies pass them. ``prologue`` (indented source) runs first; ``namespace``
    holds the names that ``call`` and ``prologue`` use; ``module`` is the function's module.
    """
    parameters = ["self"]
    arguments = []
    keyword_only = False
    kinds = inspect.Parameter
    values = list(signature.parameters.values())[1:]
    for index, parameter in enumerate(values):
        spelled, kind = parameter.name, parameter.kind
        if kind is kinds.VAR_POSITIONAL:
            keyword_only = True
            parameters.append(f"*{spelled}")
            arguments.append(f"*{spelled}")
            continue
        if kind is kinds.VAR_KEYWORD:
            parameters.append(f"**{spelled}")
            arguments.append(f"**{spelled}")
            continue
        if kind is kinds.KEYWORD_ONLY and not keyword_only:
            keyword_only = True
            parameters.append("*")
        if parameter.default is parameter.empty:
            parameters.append(spelled)
            arguments.append(f"{spelled}={spelled}" if kind is kinds.KEYWORD_ONLY else spelled)
        else:
            namespace[f"_default_{spelled}"] = parameter.default
            parameters.append(f"{spelled}=_default_{spelled}")
            arguments.append(spelled if kind is kinds.POSITIONAL_ONLY else f"{spelled}={spelled}")
        following = values[index + 1] if index + 1 < len(values) else None
        if kind is kinds.POSITIONAL_ONLY and (
            following is None or following.kind is not kinds.POSITIONAL_ONLY
        ):
            parameters.append("/")
    await_ = "await " if is_async else ""
    source = (
        f"{'async ' if is_async else ''}def {name}({', '.join(parameters)}):\n"
        f"{prologue}    return {await_}{call}({', '.join(arguments)})\n"
    )
    namespace["__name__"] = module
    exec(compile(source, f"<sa_async forwarder of {name}: {call}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function


def _forward_sync(name: str) -> Callable[..., Any]:
    signature = inspect.signature(getattr(Session, name))
    return _compile_forward(name, signature, f"self.sync_session.{name}")


def _forward_guarded_sync(name: str) -> Callable[..., Any]:
    signature = inspect.signature(getattr(Session, name))
    prologue = (
        "    if self._operation is not None:\n        self._refuse_concurrent_use(_operation)\n"
    )
    return _compile_forward(
        name, signature, f"self.sync_session.{name}", prologue=prologue, _operation=f"{name}()"
    )


def _forward_async(name: str) -> Callable[..., Any]:
    operation = f"{name}()"

    async def forward(self: AsyncSession, *args: Any, **kw: Any) -> Any:
        running = self._enter(operation)
        try:
            return await run_in_bridge(getattr(self.sync_session, name), *args, **kw)
        finally:
            self._operation = running

    return forward


def _forward_async_to_completion(name: str) -> Callable[..., Any]:
    operation = f"{name}()"

    async def forward(self: AsyncSession, *args: Any, **kw: Any) -> Any:
        method = getattr(self.sync_session, name)
        return await RunToCompletion(self._run_guarded(operation, method, *args, **kw))

    return forward


def _forward_property(name: str, settable: bool) -> property:
    def fget(self: AsyncSession) -> Any:
        return getattr(self.sync_session, name)

    def fset(self: AsyncSession, value: Any) -> None:
        setattr(self.sync_session, name, value)

    return property(fget, fset if settable else None, doc=f"The sync session's ``{name}``.")


def _forward_classmethod(name: str) -> classmethod[Any, Any, Any]:
    def forward(cls: type[AsyncSession], *args: Any, **kw: Any) -> Any:
        return getattr(Session, name)(*args, **kw)

    return classmethod(forward)


def _install_proxies(cls: type[AsyncSession]) -> None:
    """Build the pass-through members of ``cls`` from the declared name lists."""

    def finish(function: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
        function.__name__ = name
        function.__qualname__ = f"{cls.__name__}.{name}"
        function.__doc__ = doc
        function.__signature__ = inspect.signature(getattr(Session, name))  # type: ignore[attr-defined]
        return function

    for name in _SYNC_METHODS:
        doc = f"Call ``Session.{name}`` on the proxied sync session."
        setattr(cls, name, finish(_forward_sync(name), name, doc))
    for name in _GUARDED_SYNC_METHODS:
        doc = f"Call ``Session.{name}`` on the proxied sync session."
        setattr(cls, name, finish(_forward_guarded_sync(name), name, doc))
    for name in _ASYNC_METHODS:
        doc = f"Run ``Session.{name}`` in the greenlet bridge and await its result."
        setattr(cls, name, finish(_forward_async(name), name, doc))
    for name in _ASYNC_METHODS_RUN_TO_COMPLETION:
        doc = (
            f"Run ``Session.{name}`` in the greenlet bridge to its end, even if the caller is "
            "cancelled meanwhile (the cancellation is raised afterwards)."
        )
        setattr(cls, name, finish(_forward_async_to_completion(name), name, doc))
    for name in _READ_ONLY_PROPERTIES:
        setattr(cls, name, _forward_property(name, settable=False))
    for name in _SETTABLE_PROPERTIES:
        setattr(cls, name, _forward_property(name, settable=True))
    for name in _CLASSMETHODS:
        method = _forward_classmethod(name)
        function = method.__func__
        function.__name__ = name
        function.__qualname__ = f"{cls.__name__}.{name}"
        function.__doc__ = f"Call ``Session.{name}``."
        # The signature of the function under the classmethod, ``cls`` included.
        function.__signature__ = inspect.signature(  # type: ignore[attr-defined]
            inspect.getattr_static(Session, name).__func__
        )
        setattr(cls, name, method)


_install_proxies(AsyncSession)


def _is_current(sync_transaction: SessionTransaction, sync_session: Session) -> bool:
    """Whether ``sync_transaction`` is still one of ``sync_session``'s open transactions."""
    current = sync_session.get_nested_transaction() or sync_session.get_transaction()
    while current is not None:
        if current is sync_transaction:
            return True
        current = current.parent
    return False


class AsyncSessionTransaction(sqlalchemy_asyncio.AsyncSessionTransaction):
    """A transaction or SAVEPOINT of an AsyncSession: awaitable and an async context manager.

    A subclass of SQLAlchemy's ``AsyncSessionTransaction`` for identity only, using its slots
    (``session``, ``nested``, ``sync_transaction``); every member is defined here.
    """

    __slots__ = ()

    # The types of SQLAlchemy's slots, as this class fills them.
    session: AsyncSession
    sync_transaction: SessionTransaction | None

    def __init__(self, session: AsyncSession, nested: bool = False) -> None:
        self.session = session
        self.nested = nested
        self.sync_transaction = None

    # -- the sync transaction -> AsyncSessionTransaction lookup, under SQLAlchemy's names

    @classmethod
    def _retrieve_proxy_for_target(
        cls,
        target: SessionTransaction,
        regenerate: bool = True,
        *,
        async_session: AsyncSession | None = None,
        **additional_kw: Any,
    ) -> Any:
        existing = _transaction_proxies.get(target)
        if existing is not None or not regenerate:
            return existing
        return cls._regenerate_proxy_for_target(target, async_session=async_session)

    @classmethod
    def _regenerate_proxy_for_target(  # type: ignore[override]
        cls,
        target: SessionTransaction,
        async_session: AsyncSession | None = None,
        **additional_kw: Any,
    ) -> AsyncSessionTransaction:
        if async_session is None:
            async_session = AsyncSession._retrieve_proxy_for_target(target.session)
        proxy = cls.__new__(cls)
        proxy.session = async_session
        proxy.nested = target.nested
        proxy.sync_transaction = proxy._assign_proxied(target)
        return proxy

    def _assign_proxied(self, target: Any) -> Any:
        if target is not None:
            _transaction_proxies[target] = self
        return target

    @classmethod
    def _target_gced(cls, ref: Any, proxy_ref: Any = None) -> None:
        """Nothing to forget: the registry holds both sides weakly."""

    def __repr__(self) -> str:
        kind = "SAVEPOINT" if self.nested else "transaction"
        state = (
            "not started"
            if self.sync_transaction is None
            else ("active" if self.sync_transaction.is_active else "inactive")
        )
        return f"<{type(self).__name__} ({kind}, {state}) at {id(self):#x}>"

    def _sync_transaction(self) -> SessionTransaction:
        """Return the sync transaction, or raise if this one has not been started."""
        sync_transaction = self.sync_transaction
        if sync_transaction is None:
            self._raise_for_not_started()
        return sync_transaction

    def _raise_for_not_started(self) -> NoReturn:
        raise async_exc.AsyncContextNotStarted(
            f"{type(self).__name__} has not been started; 'await session.begin()' or use "
            "'async with session.begin():' before using it."
        )

    async def start(self, is_ctxmanager: bool = False) -> Self:
        """Begin the transaction (``await transaction``, ``async with transaction``)."""
        if self.sync_transaction is not None:
            name = type(self).__name__
            if not _is_current(self.sync_transaction, self.session.sync_session):
                raise TransactionFinishedError(
                    f"This {name} has finished (it was committed or rolled back, or its "
                    "session was closed or invalidated) and cannot be awaited or entered "
                    "again; start a new one with 'await session.begin()' or "
                    "'async with session.begin():'."
                )
            raise async_exc.AsyncContextAlreadyStarted(
                f"This {name} was already started; call session.begin() "
                "(or begin_nested()) again for a new transaction."
            )
        sync_session = self.session.sync_session
        begin = sync_session.begin_nested if self.nested else sync_session.begin
        operation = "begin_nested()" if self.nested else "begin()"
        sync_transaction = await self.session._run_guarded(operation, begin)
        self.sync_transaction = self._assign_proxied(sync_transaction)
        if is_ctxmanager:
            sync_transaction.__enter__()
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        return await self.start(is_ctxmanager=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            # Commits: the flush stops at a cancellation, the COMMIT runs to its end, as in
            # commit().
            try:
                await self.session._flush_before_commit(_BLOCK_END, self._sync_transaction())
            except BaseException as error:
                await self._end(type(error), error, error.__traceback__)
                raise
            await RunToCompletion(
                self._end(exc_type, exc_value, traceback), note=_note_if_committed
            )
        else:
            await self._end(exc_type, exc_value, traceback)

    def _end(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        """The end of an ``async with`` block: commit, or roll back after an exception."""
        return self.session._run_guarded(
            _BLOCK_END,
            self._sync_transaction().__exit__,
            exc_type,
            exc_value,
            traceback,
        )

    @property
    def is_active(self) -> bool:
        return self._sync_transaction().is_active

    @property
    def connections(self) -> frozenset[AsyncConnection]:
        return frozenset(
            _compat.async_connection_for(connection)
            for connection in self._sync_transaction().connections
        )

    def bound_connection(
        self, bindkey: Any | None = None, *, bind: AsyncBind | None = None, **kw: Any
    ) -> AsyncConnection:
        if bind is not None:
            kw["bind"] = _sync_bind_of(bind)
        return _compat.async_connection_for(
            self._sync_transaction().bound_connection(bindkey, **kw)
        )

    async def commit(self) -> None:
        # As AsyncSession.commit: the flush stops at a cancellation, the COMMIT runs to its end.
        sync_transaction = self._sync_transaction()
        await self.session._flush_before_commit("commit()", sync_transaction)
        await RunToCompletion(
            self.session._run_guarded("commit()", sync_transaction.commit),
            note=_note_if_committed,
        )

    async def rollback(self) -> None:
        await self.session._run_guarded("rollback()", self._sync_transaction().rollback)


class _SessionBeginContext(_compat.SessionContextManager):  # type: ignore[type-arg]
    """``async with maker.begin() as session``: commit on success, roll back on error, close.

    A subclass of SQLAlchemy's context manager for ``async_sessionmaker.begin()``, on its slots
    (``async_session``, ``trans``), for identity; every member is defined here.
    """

    __slots__ = ("committed",)

    __class_getitem__ = _subscriptable

    async_session: AsyncSession
    trans: AsyncSessionTransaction

    def __init__(self, async_session: AsyncSession) -> None:
        self.async_session = async_session
        self.committed = False

    async def __aenter__(self) -> AsyncSession:
        transaction = self.async_session.begin()
        try:
            await transaction.__aenter__()
        except BaseException:
            await self.async_session.close()
            raise
        self.trans = transaction
        return self.async_session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            # The flush stops at a cancellation, as in commit(); the block then ends as if
            # the flush's error had been raised in it.
            try:
                await self.async_session._flush_before_commit(
                    _BLOCK_END, self.trans._sync_transaction()
                )
            except BaseException as error:
                await RunToCompletion(self._finish(type(error), error, error.__traceback__))
                raise
        # Commit (or roll back) and close as one piece of work, run to its end at once.
        await RunToCompletion(
            self._finish(exc_type, exc_value, traceback),
            note=lambda returned: COMMITTED_NOTE if self.committed else None,
        )

    async def _finish(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.trans._end(exc_type, exc_value, traceback)
            self.committed = exc_type is None
        finally:
            # Through the session's own exit, as SQLAlchemy does: a subclass overriding
            # close() (or __aexit__) is called.
            await self.async_session.__aexit__(exc_type, exc_value, traceback)


class async_sessionmaker(sqlalchemy_asyncio.async_sessionmaker):  # type: ignore[type-arg]
    """A configured factory of AsyncSession objects.

    A subclass of SQLAlchemy's ``async_sessionmaker`` for identity only; every member is
    defined here. ``class_`` may be any subclass of SQLAlchemy's ``AsyncSession`` (sa_async's
    by default), as with SQLAlchemy's maker.
    """

    __class_getitem__ = _subscriptable

    def __init__(
        self,
        bind: AsyncBind | None = None,
        *,
        class_: type[sqlalchemy_asyncio.AsyncSession] = AsyncSession,
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: dict[Any, Any] | None = None,
        **kw: Any,
    ) -> None:
        if not (isinstance(class_, type) and issubclass(class_, sqlalchemy_asyncio.AsyncSession)):
            raise SessionClassError(
                f"class_ must be an AsyncSession class (sa_async's, SQLAlchemy's or a subclass "
                f"of either), got {class_!r}; to use a custom sync Session, pass "
                "sync_session_class= instead."
            )
        if bind is not None:
            _sync_bind_of(bind)
        if kw.get("sync_session_class") is not None:
            check_sync_session_class(kw["sync_session_class"])
        if kw.get("binds") is not None:
            _check_mapping("binds", kw["binds"], "e.g. binds={User: engine, Order: other_engine}")
            for key, value in kw["binds"].items():
                _sync_bind_of(value, f"binds[{key!r}]")
        if info is not None:
            _check_mapping("info", info, "the sessions' info dictionary, e.g. info={}")
        kw["bind"] = bind
        kw["autoflush"] = autoflush
        kw["expire_on_commit"] = expire_on_commit
        if info is not None:
            kw["info"] = info
        self.kw = kw
        self.class_ = class_

    def __call__(self, **local_kw: Any) -> Any:
        kw = self.kw
        if "info" in local_kw and "info" in kw:
            _check_mapping("info", local_kw["info"], "the session's info dictionary")
            local_kw["info"] = {**kw["info"], **local_kw["info"]}
        return self.class_(**{**kw, **local_kw})

    def begin(self) -> Any:
        # The session's own begin context: sa_async's, or that of SQLAlchemy's class_.
        return self()._maker_context_manager()

    def configure(self, **new_kw: Any) -> None:
        self.kw.update(new_kw)

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.kw.items())
        return f"{type(self).__name__}(class_={self.class_.__name__!r}, {settings})"


class _EndedScope:
    """What a session's scope was, and the pools of its engines when the scope ended."""

    __slots__ = ("pools", "scope")

    def __init__(self, scope: str, pools: dict[Engine, Pool]) -> None:
        self.scope = scope
        self.pools = pools


def mark_scope_ended(session: AsyncSession, scope: str) -> None:
    """Record that the scope that ``session`` served (e.g. "task 'Task-7'") has ended.

    From now on a use that finds the session busy is refused with ``ScopeEndedError``; once
    ``close_after_scope`` has closed it, every use is.
    """
    transaction = session.sync_session.get_transaction()
    connections = () if transaction is None else transaction.connections
    pools = {connection.engine: connection.engine.pool for connection in connections}
    session._ended_scope = _EndedScope(scope, pools)


async def close_after_scope(session: AsyncSession) -> None:
    """Close the session of an ended scope, once the operation running in it (another task's,
    to which the session was handed) has finished; then refuse every further use.

    A close that fails because an engine of the session was disposed since the scope ended
    finishes quietly: disposing closed the connections, so nothing is left to roll back.
    """
    delay = 0.0
    while session._operation is not None:
        await asyncio.sleep(delay)
        delay = min(0.05, delay * 2 or 0.001)
    try:
        try:
            await session.close()
        except sa_exc.DBAPIError as error:
            ended = session._ended_scope
            disposed = ended is not None and any(
                engine.pool is not pool for engine, pool in ended.pools.items()
            )
            if not (error.connection_invalidated or disposed):
                raise
            # The connection is gone (disposed, or lost): the second close has no IO left.
            await session.close()
    finally:
        session._operation = _SCOPE_ENDED


def async_session(session: Session) -> AsyncSession | None:
    """Return the live AsyncSession proxying ``session``, if any."""
    proxy: weakref.ref[AsyncSession] | None = getattr(session, _PROXY_ATTRIBUTE, None)
    return None if proxy is None else proxy()


def async_object_session(instance: object) -> AsyncSession | None:
    """Return the AsyncSession that ``instance`` belongs to, if any."""
    sync_session = object_session(instance)
    return None if sync_session is None else async_session(sync_session)


def _refuse_implicit_io(
    sync_session: Session,
    state: InstanceState[Any],
    attribute_names: Collection[str],
    relationship: str | None,
) -> None:
    """Refuse, before any IO, an attribute load of one of our sessions outside the bridge."""
    if in_bridge() or async_session(sync_session) is None:
        return
    class_name = state.class_.__name__
    attribute = relationship or _compat.attribute_being_loaded()
    if attribute is None:
        names = ", ".join(sorted(attribute_names))
        what, eager = f"{class_name} attributes ({names})", "session.refresh(obj)"
    else:
        what = f"{class_name}.{attribute}"
        eager = f".options(selectinload({what}))"
    if relationship is not None:
        state_text = "is not loaded"
    elif attribute is not None and attribute in state.expired_attributes:
        state_text = "is expired (commit(), rollback() and expire() expire attributes)"
        eager = "'await session.refresh(obj)' beforehand, or expire_on_commit=False"
    elif attribute is not None:
        state_text = "is deferred"
        eager = f".options(undefer({what}))"
    else:
        state_text = "are not loaded"
    name = attribute or "<attribute>"
    raise ImplicitIOError(
        f"{what} {state_text}, and loading it needs database IO, which cannot happen outside "
        "sa_async's greenlet bridge: a plain attribute access from async code cannot await. "
        "Nothing was sent to the database. Three fixes: awaitable_attrs, "
        f"'await obj.awaitable_attrs.{name}'; eager loading, {eager}; or run_sync, run the "
        "code that touches it inside 'await session.run_sync(fn)'."
    )


async def close_all_sessions() -> None:
    """Close every session in memory, sync and async."""
    await run_in_bridge(close_all_sync_sessions)


_compat.install_async_session_provider(async_session)
_compat.install_attribute_load_check(_refuse_implicit_io)
_compat.find_async_sessions_from_sqlalchemy(async_session)

__all__ = [
    "AsyncAttrs",
    "AsyncSession",
    "AsyncSessionTransaction",
    "async_object_session",
    "async_session",
    "async_sessionmaker",
    "close_all_sessions",
]
