"""The greenlet bridge: run SQLAlchemy's synchronous ORM code from a coroutine.

SQLAlchemy's async drivers are written against a small greenlet-provider protocol: synchronous code
running inside a greenlet whose class has ``__sqlalchemy_greenlet_provider__ = True`` may call
``sqlalchemy.util.await_(awaitable)``, which switches to the greenlet's parent with the awaitable.
The parent, a coroutine here, awaits it on the event loop and switches back with the result, or
throws the exception (``CancelledError`` included) into the worker so the sync code unwinds as it
would for any failed IO.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet  # type: ignore[import-untyped]

_T = TypeVar("_T")


# Idle workers kept per thread (greenlets belong to the thread that made them). Starting a
# greenlet costs a stack allocation (~7 us); switching into a live one costs ~0.3 us, so workers
# are reused. Beyond this many idle ones, finished workers are let go.
_MAX_IDLE_WORKERS = 32


class _Outcome:
    """What a worker hands back when its job ends, told apart from an awaitable by its type."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


class _BridgeGreenlet(greenlet):  # type: ignore[misc]
    """A reusable worker; SQLAlchemy's ``await_`` looks for the marker below.

    Each job arrives through ``switch(job)``; IO requests go to ``parent`` (the caller, reset for
    every job) as awaitables, and the job's end goes there as an ``_Outcome``.
    """

    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> None:
        while True:
            fn, args, kwargs = job
            try:
                outcome = _Outcome(fn(*args, **kwargs), None)
            except GreenletExit:
                raise
            except BaseException as error:  # handed to the caller, which re-raises it
                outcome = _Outcome(None, error)
            del fn, args, kwargs
            job = self.parent.switch(outcome)


class _IdleWorkers(threading.local):
    def __init__(self) -> None:
        self.workers: list[_BridgeGreenlet] = []


_idle = _IdleWorkers()


def in_bridge() -> bool:
    """Return True when called from sync code running inside the bridge."""
    return getattr(getcurrent(), "__sqlalchemy_greenlet_provider__", False) is True


async def run_in_bridge(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, **kwargs)`` in a worker greenlet, awaiting whatever IO it requests."""
    caller = getcurrent()
    idle = _idle.workers
    worker = idle.pop() if idle else _BridgeGreenlet()
    worker.parent = caller
    # Share the calling task's contextvars with the sync code.
    worker.gr_context = caller.gr_context
    request: Any = worker.switch((fn, args, kwargs))
    while type(request) is not _Outcome:
        try:
            value = await request
        except BaseException:
            request = worker.throw(*sys.exc_info())
        else:
            request = worker.switch(value)
    worker.gr_context = None
    if len(idle) < _MAX_IDLE_WORKERS:
        idle.append(worker)
    error = request.error
    if error is not None:
        request = None
        try:
            raise error
        finally:
            del error
    result: _T = request.value
    return result
