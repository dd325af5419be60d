"""Run to completion: await work that must not stop halfway, even if the calling task is cancelled.

A COMMIT abandoned while in flight has an unknown outcome, and a close stopped halfway keeps its
connection. ``await RunToCompletion(coro)`` runs ``coro`` in the calling task, as a plain
``await`` would, and hands each future that it awaits to the task behind a
``CancellationDeferred``. A cancellation of the task from outside the work is declined there: the
future (a driver's IO, say) is left to finish, the work resumes as if nothing had happened, and
the ``CancelledError`` is raised once the work is done; chained to the work's own error if it
failed, and with a note when the caller says the work committed.

A cancellation that the work itself asked for is delivered at once: the pool's ``pool_timeout``
is an ``asyncio.timeout()`` inside the checkout, and a timeout that the work entered must expire
as it would anywhere else. It is told apart by its canceller: the object (a timeout, a task
group, a cancel scope) whose method called ``task.cancel()`` is held by a coroutine frame of the
work itself.

A task and a shield would give the same protection for two more turns of the event loop per
call, and would leave the work exposed to the ``cancel()`` that ``asyncio.run()`` sends every
task at shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
from collections.abc import Callable, Coroutine, Generator
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

_T = TypeVar("_T")

COMMITTED_NOTE = (
    "sa_async: this cancellation was requested while a COMMIT was in flight; the COMMIT was "
    "allowed to finish first, so the transaction is committed. Do not retry it."
)


def note_if_committed(returned: bool) -> str | None:
    """The note for a cancellation held while a commit ran: it committed if it returned."""
    return COMMITTED_NOTE if returned else None


# The pure-Python Task.cancel and Future.cancel: frames between a canceller and the stand-in when
# asyncio runs without its C accelerator.
_TASK_CANCEL_CODES = frozenset(
    cls.cancel.__code__
    for cls in (
        getattr(asyncio.tasks, "_PyTask", None),
        getattr(asyncio.futures, "_PyFuture", None),
    )
    if cls is not None
)


def _await_chain(awaitable: Any) -> Generator[Any, None, None]:
    """Yield ``awaitable`` and what it awaits, down to the innermost future."""
    while awaitable is not None:
        yield awaitable
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)


def _held_by(awaitable: Any, scope: object) -> bool:
    """Whether a frame of ``awaitable``'s chain holds ``scope`` (or a method bound to it).

    An ``async with`` / ``with`` keeps the bound ``__aexit__`` / ``__exit__`` of its context
    manager on the frame's value stack, which the garbage collector's referents include.
    """
    for node in _await_chain(awaitable):
        for referent in gc.get_referents(node):
            if referent is scope or getattr(referent, "__self__", None) is scope:
                return True
    return False


def _canceller(frame: FrameType | None) -> object | None:
    """The object whose method called ``task.cancel()``, from the frame calling the stand-in.

    That is the method's ``self``, or its ``origin`` argument when it has one: anyio's cancel
    scopes deliver a cancellation to the scopes nested in them on behalf of the one it
    originates from.
    """
    while frame is not None and frame.f_code in _TASK_CANCEL_CODES:
        frame = frame.f_back
    if frame is None:
        return None
    local_names = frame.f_code.co_varnames
    if not local_names or local_names[0] != "self":
        return None
    local_values = frame.f_locals
    return local_values.get("origin") or local_values.get("self")


class CancellationDeferred:
    """Stands in, for the task, for a future that work run to completion awaits.

    A task hands a cancellation to the future it waits on. This stand-in passes one that the
    work asked for on to the future, and declines any other: the future is left to finish, and
    the task wakes with the cancellation when it is done, for ``RunToCompletion`` to hold.
    """

    __slots__ = ("_asyncio_future_blocking", "cancel_requested", "delivered", "future", "region")

    def __init__(self, future: Any, region: RunToCompletion[Any]) -> None:
        # The handshake a task does with what it is handed: the stand-in is what it sees.
        future._asyncio_future_blocking = False
        self._asyncio_future_blocking = True
        self.future = future
        # The outermost run to completion that handed this stand-in to the task.
        self.region = region
        # A cancellation from outside the work was declined.
        self.cancel_requested = False
        # A cancellation that the work asked for was passed on to the future.
        self.delivered = False

    def cancel(self, msg: Any = None) -> bool:
        canceller = _canceller(sys._getframe(1))
        if canceller is not None and _held_by(self.region.cr_await, canceller):
            self.delivered = True
            return bool(self.future.cancel(msg))
        self.cancel_requested = True
        return False

    def get_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = self.future.get_loop()
        return loop

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        self.future.add_done_callback(fn, context=context)

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        removed: int = self.future.remove_done_callback(fn)
        return removed

    def done(self) -> bool:
        return bool(self.future.done())

    def cancelled(self) -> bool:
        return bool(self.future.cancelled())

    def result(self) -> Any:
        return self.future.result()

    def exception(self) -> BaseException | None:
        error: BaseException | None = self.future.exception()
        return error

    def __repr__(self) -> str:
        return f"<cancellation deferred until the end of {self.future!r}>"


class RunToCompletion(Generator[Any, Any, _T]):
    """``await RunToCompletion(coro)``: await ``coro`` to its end even if the calling task is
    cancelled meanwhile, then raise the cancellation.

    ``note(returned)``, called when a held cancellation is raised (``returned`` tells whether
    the work returned or raised), gives the text of a note to attach to it, or None. Nested runs
    to completion leave the cancellation to the outermost one, so that all of its work is done
    before it is raised.
    """

    __slots__ = ("_bare_yield", "_cancellation", "_handed_on", "_note", "_waiting", "cr_await")

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T],
        note: Callable[[bool], str | None] | None = None,
    ) -> None:
        # Named as a coroutine's attribute: the guard and the canceller check walk through it.
        self.cr_await = coro
        self._note = note
        self._cancellation: BaseException | None = None
        # The stand-in this run to completion made for the future the work awaits now.
        self._waiting: CancellationDeferred | None = None
        # The stand-in of a nested run to completion, handed on to the task.
        self._handed_on: CancellationDeferred | None = None
        self._bare_yield = False

    def __await__(self) -> Self:
        return self

    def __next__(self) -> Any:
        return self._resume(None, None)

    def send(self, value: Any) -> Any:
        return self._resume(value, None)

    def throw(self, typ: Any, val: Any = None, tb: TracebackType | None = None) -> Any:
        if isinstance(typ, BaseException):
            error = typ
        elif isinstance(val, BaseException):
            error = val
        else:
            error = typ() if val is None else typ(val)
        if tb is not None:
            error = error.with_traceback(tb)
        if isinstance(error, asyncio.CancelledError):
            waiting = self._waiting or self._handed_on
            if waiting is not None:
                outermost = waiting.region is self
                if waiting.cancel_requested and outermost and self._cancellation is None:
                    # Held here; when the work asked for a cancellation too, it gets the one
                    # thrown in, and this one is raised at the end.
                    self._cancellation = (
                        asyncio.CancelledError(*error.args) if waiting.delivered else error
                    )
                if not waiting.delivered and waiting.cancel_requested:
                    # What the task waited for is done (the stand-in declined to cancel it):
                    # the work resumes as if nothing had happened.
                    return self._resume(None, None)
            elif self._bare_yield:
                # No future to tell the canceller by: held, as any other.
                if self._cancellation is None:
                    self._cancellation = error
                return self._resume(None, None)
        return self._resume(None, error)

    def close(self) -> None:
        self.cr_await.close()

    def _resume(self, value: Any, error: BaseException | None) -> Any:
        try:
            if error is None:
                yielded = self.cr_await.send(value)
            else:
                yielded = self.cr_await.throw(error)
        except StopIteration:
            if self._cancellation is None:
                raise
            self._raise_held(None)
        except BaseException as failure:
            if self._cancellation is None or failure is self._cancellation:
                raise
            self._raise_held(failure)
        if type(yielded) is CancellationDeferred:
            # A nested run to completion's stand-in: handed on as it is, this one being
            # further out.
            yielded.region = self
            self._waiting = None
            self._handed_on = yielded
            self._bare_yield = False
            return yielded
        self._handed_on = None
        if getattr(yielded, "_asyncio_future_blocking", False):
            self._bare_yield = False
            waiting = self._waiting = CancellationDeferred(yielded, self)
            return waiting
        # A bare yield (asyncio.sleep(0)).
        self._waiting = None
        self._bare_yield = yielded is None
        return yielded

    def _raise_held(self, failure: BaseException | None) -> None:
        cancellation = self._cancellation
        assert cancellation is not None
        self._cancellation = None
        if self._note is not None:
            note = self._note(failure is None)
            if note is not None:
                cancellation.add_note(note)
        if failure is None:
            raise cancellation
        raise cancellation from failure


__all__ = ["COMMITTED_NOTE", "CancellationDeferred", "RunToCompletion", "note_if_committed"]
