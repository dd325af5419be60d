"""Scoped sessions: one session per scope (a thread, a task, a request...), used through a registry.

``scoped_session`` (sync sessions, thread-local by default) and ``async_scoped_session`` (async
sessions, scope given by ``scopefunc``) share one core: ``ScopeRegistry`` stores a session per
scope key and ``_ScopedSessionBase`` creates, configures and looks up the current one. The members
that only forward to the current session are declared as data (the tuples below) and built by
``_install_proxies``; their types and documentation live in ``sa_async-stubs/scoping.pyi``.

Ended scopes (the README repeats this paragraph). Unlike SQLAlchemy's registries, ours never keep
the session of a scope that has ended. A scope key that can be weakly referenced is held weakly.
When a task (or future) used as the key is done, as with ``scopefunc=asyncio.current_task``, its
session leaves the registry in the task's done callback and is closed in a background task on
the same event loop, once any operation that another task is running in it has finished: the
transaction is rolled back and the connection goes back to the pool without waiting for the
garbage collector. That close cannot be cancelled, and ``asyncio.run()`` waits for it before it
closes the loop. From then on the session refuses every operation with ``ScopeEndedError``: a
session handed on to work that outlives its scope fails loudly instead of losing its writes.
With ``scoped_session``'s default thread-local scope, a thread's session leaves the registry and
is closed, synchronously and in that thread, when the thread exits. Any other weakly
referenceable key (a request object, say) has its session closed when the key is garbage.
Sessions of live scopes (running tasks and threads, keys still referenced) are never dropped;
keys that cannot be weakly referenced (``None``, numbers, strings, e.g. ``threading.get_ident``)
keep their session until ``remove()``, as in SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
import types
import warnings
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Hashable
from functools import partial
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy import orm as sqlalchemy_orm
from sqlalchemy.engine import Engine
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.util import ScopedRegistry

from ._completion import RunToCompletion
from .exc import ArgumentTypeError, ScopefuncError
from .session import (
    AsyncSession,
    _compile_forward,
    _subscriptable,
    close_after_scope,
    close_all_sessions,
    mark_scope_ended,
)

_T = TypeVar("_T")

_SCOPED_SESSION_METHODS = (
    "__contains__",
    "__iter__",
    "add",
    "add_all",
    "begin",
    "begin_nested",
    "bind_mapper",
    "bind_table",
    "bulk_insert_mappings",
    "bulk_save_objects",
    "bulk_update_mappings",
    "close",
    "commit",
    "connection",
    "delete",
    "delete_all",
    "enable_relationship_loading",
    "execute",
    "expire",
    "expire_all",
    "expunge",
    "expunge_all",
    "flush",
    "get",
    "get_bind",
    "get_nested_transaction",
    "get_one",
    "get_transaction",
    "in_nested_transaction",
    "in_transaction",
    "invalidate",
    "is_modified",
    "merge",
    "merge_all",
    "prepare",
    "query",
    "refresh",
    "reset",
    "rollback",
    "scalar",
    "scalars",
)
_SCOPED_SESSION_READ_ONLY = ("dirty", "deleted", "new", "is_active", "no_autoflush", "info")
_SCOPED_SESSION_SETTABLE = ("bind", "binds", "identity_map", "autoflush", "execution_options")
_SCOPED_SESSION_CLASSMETHODS = ("object_session", "identity_key")

# Forwarded as they are: these return no awaitable, or return one without doing any work first.
_ASYNC_SCOPED_METHODS = (
    "__contains__",
    "__iter__",
    "add",
    "add_all",
    "begin",
    "begin_nested",
    "bind_mapper",
    "bind_table",
    "expire",
    "expire_all",
    "expunge",
    "expunge_all",
    "get_async_bind",
    "get_bind",
    "get_nested_transaction",
    "get_transaction",
    "in_nested_transaction",
    "in_transaction",
    "is_modified",
)
# Awaited: the current session is looked up when the coroutine starts, as in SQLAlchemy.
_ASYNC_SCOPED_COROUTINES = (
    "aclose",
    "close",
    "commit",
    "connection",
    "delete",
    "delete_all",
    "execute",
    "flush",
    "get",
    "get_one",
    "invalidate",
    "merge",
    "merge_all",
    "refresh",
    "reset",
    "rollback",
    "run_sync",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
)
_ASYNC_SCOPED_READ_ONLY = (
    "binds",
    "dirty",
    "deleted",
    "new",
    "is_active",
    "no_autoflush",
    "info",
    "sync_session",
)
_ASYNC_SCOPED_SETTABLE = ("bind", "identity_map", "autoflush", "execution_options")
_ASYNC_SCOPED_CLASSMETHODS = ("object_session", "identity_key")


class _ThreadScope:
    """The scope key of one thread: held only by the thread's locals, so it dies with the thread."""

    __slots__ = ("__weakref__",)


_thread_scopes = threading.local()


def _current_thread_scope() -> _ThreadScope:
    """Return the current thread's scope key: ``scoped_session``'s default ``scopefunc``."""
    try:
        scope: _ThreadScope = _thread_scopes.scope
    except AttributeError:
        scope = _thread_scopes.scope = _ThreadScope()
    return scope


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _weak_key(key: object) -> weakref.ref[Any] | None:
    try:
        return weakref.ref(key)
    except TypeError:
        return None


class _Entry(Generic[_T]):
    """A session held for a weakly referenced scope key."""

    __slots__ = ("key_id", "key_ref", "loop", "on_done", "value")

    def __init__(
        self,
        value: _T,
        key: object,
        key_ref: weakref.ref[Any],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.value = value
        self.key_id = id(key)
        self.key_ref = key_ref
        # The loop to close an async session on once its scope has ended.
        self.loop = loop
        self.on_done: Callable[[Any], None] | None = None


class ScopeRegistry(ScopedRegistry[_T]):
    """One object per scope, created by ``createfunc`` on first use in the scope.

    A subclass of SQLAlchemy's ``ScopedRegistry`` (the type of SQLAlchemy's registries'
    ``registry`` attribute), for identity; every member is defined here.
    """

    __class_getitem__ = _subscriptable

    def __init__(self, createfunc: Callable[[], _T], scopefunc: Callable[[], Hashable]) -> None:
        self.createfunc = createfunc
        self.scopefunc = scopefunc
        # Keys such as tasks and thread scopes, held weakly (compared as the keys themselves).
        self._by_weak_key: dict[weakref.ref[Any], _Entry[_T]] = {}
        # The same entries by the id of their key: the lookup of a stored key needs no new weak
        # reference (0.17 µs), only a check that the entry's key is that very object.
        self._by_id: dict[int, _Entry[_T]] = {}
        # The entry found last: a scope calls its registry many times in a row, and checking
        # that entry's key costs half of computing an id (which allocates an int).
        self._last: _Entry[_T] | None = None
        # Keys that cannot be weakly referenced, held until clear().
        self._by_key: dict[Hashable, _T] = {}
        # Callbacks hold the registry weakly: an abandoned registry must not outlive its keys.
        self._self_ref = weakref.ref(self)

    def __call__(self) -> _T:
        key = self.scopefunc()
        entry = self._last
        # (A key of None, which has no weak reference, must not match one that died.)
        if entry is not None and key is not None and entry.key_ref() is key:
            return entry.value
        try:
            entry = self._by_id[id(key)]
        except KeyError:
            return self._lookup(key)
        if entry.key_ref() is key:
            self._last = entry
            return entry.value
        return self._lookup(key)

    def _lookup(self, key: Any) -> _T:
        weak_key = _weak_key(key)
        if weak_key is None:
            try:
                return self._by_key[key]
            except KeyError:
                value = self._by_key[key] = self.createfunc()
                return value
        entry = self._by_weak_key.get(weak_key)
        if entry is not None:
            return entry.value
        value = self.createfunc()
        self._store(key, value)
        return value

    def has(self) -> bool:
        key = self.scopefunc()
        weak_key = _weak_key(key)
        if weak_key is None:
            return key in self._by_key
        return weak_key in self._by_weak_key

    def set(self, obj: _T) -> None:
        key = self.scopefunc()
        if _weak_key(key) is None:
            self._by_key[key] = obj
        else:
            self._forget(key)
            self._store(key, obj)

    def clear(self) -> None:
        key = self.scopefunc()
        if _weak_key(key) is None:
            self._by_key.pop(key, None)
        else:
            self._forget(key)

    def __len__(self) -> int:
        return len(self._by_weak_key) + len(self._by_key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} object(s) at {id(self):#x}>"

    def _store(self, key: Any, value: _T) -> None:
        weak_key = weakref.ref(key, partial(_scope_key_collected, self._self_ref))
        entry = _Entry(value, key, weak_key, _running_loop())
        if isinstance(key, asyncio.Future):
            entry.on_done = partial(_scope_future_done, self._self_ref, weak_key)
            key.add_done_callback(entry.on_done)
        self._by_weak_key[weak_key] = entry
        self._by_id[entry.key_id] = entry
        self._last = entry

    def _forget(self, key: Any) -> None:
        entry = self._by_weak_key.pop(weakref.ref(key), None)
        if entry is not None:
            self._unlist(entry)
            if entry.on_done is not None:
                key.remove_done_callback(entry.on_done)

    def _end_scope(self, weak_key: weakref.ref[Any]) -> None:
        entry = self._by_weak_key.pop(weak_key, None)
        if entry is not None:
            self._unlist(entry)
            _close_ended(entry.value, entry.loop, _scope_name(weak_key()))

    def _unlist(self, entry: _Entry[_T]) -> None:
        # Only its own: a key of the same id stored since (the old key died first) stays.
        if self._by_id.get(entry.key_id) is entry:
            del self._by_id[entry.key_id]
        if self._last is entry:
            self._last = None


def _scope_key_collected(
    registry_ref: weakref.ref[ScopeRegistry[Any]],
    weak_key: weakref.ref[Any],
    is_finalizing: Callable[[], bool] = sys.is_finalizing,
) -> None:
    # At interpreter exit the main thread's scope dies too; nothing is left to close sessions on.
    if is_finalizing():
        return
    registry = registry_ref()
    if registry is not None:
        registry._end_scope(weak_key)


def _scope_future_done(
    registry_ref: weakref.ref[ScopeRegistry[Any]], weak_key: weakref.ref[Any], future: Any
) -> None:
    registry = registry_ref()
    if registry is not None:
        registry._end_scope(weak_key)


def _scope_name(key: object) -> str:
    """How ``ScopeEndedError`` names an ended scope."""
    if isinstance(key, asyncio.Task):
        return f"task {key.get_name()!r}"
    if key is None:
        return "a scope whose key was garbage collected"
    return f"the scope {type(key).__name__} object at {id(key):#x}"


def _close_ended(session: Any, loop: asyncio.AbstractEventLoop | None, scope: str) -> None:
    """Close the session of an ended scope: a sync one now, an async one in a task on ``loop``."""
    if not inspect.iscoroutinefunction(session.close):
        session.close()
        return
    if isinstance(session, AsyncSession):
        # Refused from now on, while it waits for its close (which may first wait for another
        # task's operation to end).
        mark_scope_ended(session, scope)
    loop = loop or _running_loop()
    if loop is None or loop.is_closed():
        # No loop can run the close: the pool's own clean-up gets the connection back.
        return
    if _running_loop() is loop:
        _start_close(session, loop)
    else:
        try:
            loop.call_soon_threadsafe(_start_close, session, loop)
        except RuntimeError:
            pass  # the loop closed meanwhile


class _CloseTask(asyncio.Task[None]):
    """Closes the session of an ended scope, and refuses to be cancelled: asyncio.run() cancels
    every task left at its end, and a close cancelled before it starts would leave the
    connection checked out."""

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class _LoopCloses:
    """The closes of ended scopes running on one event loop, and the guard that makes the
    loop's shutdown wait for them."""

    __slots__ = ("guard", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        # asyncio.run() (and asyncio.Runner) closes every async generator of its loop before
        # closing the loop, after cancelling its tasks: the closes that the end of those
        # tasks started are still running then, and this generator's aclose() waits for them.
        guard = _wait_for_closes_at_shutdown(self.tasks)
        self.guard = cast("types.AsyncGeneratorType[None, None]", guard)
        # The first step registers the generator with the running loop (its asyncgen hooks)
        # and runs it to its yield, without awaiting.
        with contextlib.suppress(StopIteration):
            self.guard.asend(None).send(None)


# Per event loop, while closes of ended scopes run on it (the event loop holds tasks weakly).
_closes_by_loop: dict[asyncio.AbstractEventLoop, _LoopCloses] = {}


async def _wait_for_closes_at_shutdown(
    tasks: set[asyncio.Task[None]],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        while tasks:
            await asyncio.wait(tasks)


def _start_close(session: Any, loop: asyncio.AbstractEventLoop) -> None:
    closes = _closes_by_loop.get(loop)
    if closes is None:
        closes = _closes_by_loop[loop] = _LoopCloses()
    task = _CloseTask(
        _close_in_background(session),
        loop=loop,
        name="sa_async: close the session of an ended scope",
    )
    closes.tasks.add(task)
    task.add_done_callback(_close_done)


def _close_done(task: asyncio.Task[None]) -> None:
    loop = task.get_loop()
    closes = _closes_by_loop.get(loop)
    if closes is None:
        return
    closes.tasks.discard(task)
    if not closes.tasks:
        del _closes_by_loop[loop]
        if not closes.guard.ag_running:
            # Nothing left to wait for: the guard ends at once, without the loop's help. (A
            # running one is being closed by the loop's shutdown, and ends by itself.)
            with contextlib.suppress(StopIteration):
                closes.guard.aclose().send(None)


async def _close_in_background(session: Any) -> None:
    try:
        if isinstance(session, AsyncSession):
            await close_after_scope(session)
        else:
            await session.close()
    except Exception as error:
        asyncio.get_running_loop().call_exception_handler(
            {
                "message": f"sa_async could not close {session!r} after its scope ended",
                "exception": error,
            }
        )


class _ScopedSessionBase:
    """The core of both scoped registries: one session per scope, reached through the registry.

    Each registry class also subclasses SQLAlchemy's, for identity only: every member is
    defined here or installed from the tables below (``tests/test_identity.py``).
    """

    session_factory: Any
    registry: Any  # a ScopeRegistry; SQLAlchemy declares its own registry classes

    __class_getitem__ = _subscriptable

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
        super().__init__(session_factory, _current_thread_scope if scopefunc is None else scopefunc)
        self._warned_async = isinstance(session_factory, sqlalchemy_asyncio.async_sessionmaker) or (
            isinstance(session_factory, sessionmaker)
            and issubclass(session_factory.class_, sqlalchemy_asyncio.AsyncSession)
        )
        if self._warned_async:
            _warn_async_in_scoped_session(session_factory, stacklevel=2)

    def __call__(self, **kw: Any) -> Any:
        session = super().__call__(**kw)
        if not self._warned_async and isinstance(session, sqlalchemy_asyncio.AsyncSession):
            _warn_async_in_scoped_session(self.session_factory, stacklevel=2)
        return session

    def remove(self) -> None:
        try:
            if self.registry.has():
                self.registry().close()
        finally:
            self.registry.clear()

    def query_property(self, query_cls: Any = None) -> _QueryProperty:
        return _QueryProperty(self.registry, query_cls)


class async_scoped_session(_ScopedSessionBase, sqlalchemy_asyncio.async_scoped_session):  # type: ignore[type-arg]
    """A registry of async sessions, one per scope as returned by ``scopefunc``."""

    _support_async = True

    def __init__(self, session_factory: Any, scopefunc: Callable[[], Hashable]) -> None:
        super().__init__(session_factory, scopefunc)

    async def remove(self) -> None:
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
        warnings.warn(
            "The async_scoped_session.close_all() method is deprecated and will be removed in a "
            "future release. Use 'await sa_async.close_all_sessions()' instead.",
            sa_exc.SADeprecationWarning,
            stacklevel=2,
        )
        return close_all_sessions()


# SQLAlchemy's proxies pass the defaults of the session's signature explicitly (private ones
# included); the compiled forwarders do too, which gives a session subclass the very same call.


def _forward_method(name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(target)
    return _compile_forward(name, signature, f"self.registry().{name}", module=__name__)


def _forward_coroutine(name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    # Awaited: the current session is looked up when the coroutine starts, as in SQLAlchemy.
    signature = inspect.signature(target)
    return _compile_forward(
        name, signature, f"self.registry().{name}", is_async=True, module=__name__
    )


def _forward_property(name: str, settable: bool) -> property:
    def fget(self: _ScopedSessionBase) -> Any:
        return getattr(self.registry(), name)

    def fset(self: _ScopedSessionBase, value: Any) -> None:
        setattr(self.registry(), name, value)

    return property(
        fget, fset if settable else None, doc=f"The current scope's session's ``{name}``."
    )


def _forward_classmethod(session_class: type[Any], name: str) -> Callable[..., Any]:
    def forward(cls: type[Any], *args: Any, **kw: Any) -> Any:
        return getattr(session_class, name)(*args, **kw)

    return forward


def _install_proxies(
    cls: type[_ScopedSessionBase],
    session_class: type[Any],
    *,
    methods: tuple[str, ...],
    coroutines: tuple[str, ...] = (),
    read_only: tuple[str, ...],
    settable: tuple[str, ...],
    classmethods: tuple[str, ...],
) -> None:
    """Build the members of ``cls`` that forward to the current session, from the name lists."""

    def finish(function: Callable[..., Any], name: str, signature_of: Any) -> Callable[..., Any]:
        function.__name__ = name
        function.__qualname__ = f"{cls.__name__}.{name}"
        function.__doc__ = f"Call ``{session_class.__name__}.{name}`` on the current session."
        function.__signature__ = inspect.signature(signature_of)  # type: ignore[attr-defined]
        return function

    for name in methods:
        target = getattr(session_class, name)
        forward = _forward_method(name, target)
        setattr(cls, name, finish(forward, name, target))
    for name in coroutines:
        target = getattr(session_class, name)
        forward = _forward_coroutine(name, target)
        setattr(cls, name, finish(forward, name, target))
    for name in read_only:
        setattr(cls, name, _forward_property(name, settable=False))
    for name in settable:
        setattr(cls, name, _forward_property(name, settable=True))
    for name in classmethods:
        # The signature of the function under the classmethod, ``cls`` included.
        target = inspect.getattr_static(session_class, name).__func__
        setattr(
            cls, name, classmethod(finish(_forward_classmethod(session_class, name), name, target))
        )


_install_proxies(
    scoped_session,
    Session,
    methods=_SCOPED_SESSION_METHODS,
    read_only=_SCOPED_SESSION_READ_ONLY,
    settable=_SCOPED_SESSION_SETTABLE,
    classmethods=_SCOPED_SESSION_CLASSMETHODS,
)
_install_proxies(
    async_scoped_session,
    AsyncSession,
    methods=_ASYNC_SCOPED_METHODS,
    coroutines=_ASYNC_SCOPED_COROUTINES,
    read_only=_ASYNC_SCOPED_READ_ONLY,
    settable=_ASYNC_SCOPED_SETTABLE,
    classmethods=_ASYNC_SCOPED_CLASSMETHODS,
)

__all__ = ["ScopeRegistry", "async_scoped_session", "scoped_session"]
