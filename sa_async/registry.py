"""ScopeRegistry: one object per scope, and the closing of the sessions of ended scopes.

The scoped registries of ``scoping.py`` keep their sessions in a ``ScopeRegistry``.

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
import weakref
from collections.abc import AsyncGenerator, Callable, Hashable
from functools import partial
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.util import ScopedRegistry

from ._forwarding import subscriptable
from ._guard import GuardedSession, close_after_scope, mark_scope_ended

_T = TypeVar("_T")


class _ThreadScope:
    """The scope key of one thread: held only by the thread's locals, so it dies with the thread."""

    __slots__ = ("__weakref__",)


_thread_scopes = threading.local()


def current_thread_scope() -> _ThreadScope:
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

    __class_getitem__ = subscriptable

    def __init__(self, createfunc: Callable[[], _T], scopefunc: Callable[[], Hashable]) -> None:
        """Hold the objects that ``createfunc()`` builds, one per ``scopefunc()`` key."""
        self.createfunc = createfunc
        self.scopefunc = scopefunc
        # Keys such as tasks and thread scopes, held weakly (compared as the keys themselves).
        self._by_weak_key: dict[weakref.ref[Any], _Entry[_T]] = {}
        # The same entries by the id of their key: the lookup of a stored key needs no new weak
        # reference, only a check that the entry's key is that very object.
        self._by_id: dict[int, _Entry[_T]] = {}
        # The entry found last: a scope calls its registry many times in a row, and checking
        # that entry's key is cheaper than computing an id (which allocates an int).
        self._last: _Entry[_T] | None = None
        # Keys that cannot be weakly referenced, held until clear().
        self._by_key: dict[Hashable, _T] = {}
        # Callbacks hold the registry weakly: an abandoned registry must not outlive its keys.
        self._self_ref = weakref.ref(self)

    def __call__(self) -> _T:
        """Return the current scope's object, creating it if the scope has none."""
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
        """Return True when the current scope has an object."""
        key = self.scopefunc()
        weak_key = _weak_key(key)
        if weak_key is None:
            return key in self._by_key
        return weak_key in self._by_weak_key

    def set(self, obj: _T) -> None:
        """Make ``value`` the current scope's object."""
        key = self.scopefunc()
        if _weak_key(key) is None:
            self._by_key[key] = obj
        else:
            self._forget(key)
            self._store(key, obj)

    def clear(self) -> None:
        """Forget the current scope's object, without closing it."""
        key = self.scopefunc()
        if _weak_key(key) is None:
            self._by_key.pop(key, None)
        else:
            self._forget(key)

    def __len__(self) -> int:
        """Return the number of objects held, over all scopes."""
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
    if isinstance(session, GuardedSession):
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
        if isinstance(session, GuardedSession):
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


__all__ = ["ScopeRegistry", "current_thread_scope"]
