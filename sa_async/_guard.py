"""The concurrent-use guard: an AsyncSession serves one operation at a time.

An operation takes the session before any IO and gives it back when it ends; a second one that
finds it taken is refused with ``ConcurrentSessionUseError``, unless it is part of the running
operation (``run_sync`` calling back into the session, say). An operation is known by the frame
of the coroutine that runs it, which is cheap to take; who is calling is only worked out when
the session is found taken.

The session of a scope that has ended (see ``scoping.py``) is refused for good with
``ScopeEndedError``: ``mark_scope_ended`` records the scope, ``close_after_scope`` closes the
session once the operation that another task may be running in it has finished.

The guard also refuses IO outside the bridge: an attribute of one of our sessions' objects that
needs loading, read by plain async code, raises ``ImplicitIOError`` before any SQL is sent.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Collection
from types import FrameType
from typing import Any, TypeVar

from greenlet import getcurrent  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.pool import Pool

from . import _compat
from ._bridge import in_bridge, run_in_bridge
from ._proxies import async_session
from .exc import ConcurrentSessionUseError, ImplicitIOError, ScopeEndedError

_T = TypeVar("_T")

# The operation in progress and the frame of the coroutine running it.
Operation = tuple[str, FrameType | None]

# The operation a session of an ended scope is left with once its registry has closed it: every
# later operation finds the session taken, and _refuse_concurrent_use says why.
SCOPE_ENDED: Operation = ("the end of its scope", None)


def current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop: a coroutine driven by hand
        return None


def task_name(task: asyncio.Task[Any] | None) -> str:
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
    """Whether the code calling the guard runs as part of the operation whose coroutine frame
    is given: awaited by it, or run by it in the bridge."""
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


class EndedScope:
    """What a session's scope was, and the pools of its engines when the scope ended."""

    __slots__ = ("pools", "scope")

    def __init__(self, scope: str, pools: dict[Engine, Pool]) -> None:
        self.scope = scope
        self.pools = pools


class GuardedSession:
    """The guard's part of AsyncSession: its state, and taking and refusing the session."""

    _operation: Operation | None
    # What the scope of a scoped registry was, once it has ended (see mark_scope_ended).
    _ended_scope: EndedScope | None

    def _enter(self, operation: str) -> Operation | None:
        """Take this session for ``operation`` of the calling task, or refuse it before any IO.

        Returns what ``self._operation`` goes back to when the operation ends: None, or for a
        nested call (run_sync calling back, say) the running operation, left in place. The hot
        methods call this around ``run_in_bridge`` themselves, in a try/finally, rather than
        through ``_run_guarded``: a coroutine fewer costs as much as the guard does.
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
        running_in = "another task or thread" if holder is None else task_name(holder)
        name = type(self).__name__
        raise ConcurrentSessionUseError(
            f"{name} {id(self):#x} is in use: {operation} is running in {running_in}, "
            f"so {refused} from {task_name(current_task())} was refused before touching the "
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


def mark_scope_ended(session: Any, scope: str) -> None:
    """Record that the scope that ``session`` served (e.g. "task 'Task-7'") has ended.

    From now on a use that finds the session busy is refused with ``ScopeEndedError``; once
    ``close_after_scope`` has closed it, every use is.
    """
    transaction = session.sync_session.get_transaction()
    connections = () if transaction is None else transaction.connections
    pools = {connection.engine: connection.engine.pool for connection in connections}
    session._ended_scope = EndedScope(scope, pools)


async def close_after_scope(session: Any) -> None:
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
        session._operation = SCOPE_ENDED


def refuse_implicit_io(
    sync_session: Session,
    state: InstanceState[Any],
    attribute_names: Collection[str],
    relationship: str | None,
) -> None:
    """Refuse, before any IO, an attribute load of one of our sessions outside the bridge.

    Installed in SQLAlchemy's attribute loading by ``_compat.install_attribute_load_check``.
    """
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


_compat.install_attribute_load_check(refuse_implicit_io)

__all__ = [
    "SCOPE_ENDED",
    "EndedScope",
    "GuardedSession",
    "Operation",
    "close_after_scope",
    "current_task",
    "mark_scope_ended",
    "refuse_implicit_io",
    "task_name",
]
