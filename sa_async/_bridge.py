"""The greenlet bridge: run SQLAlchemy's synchronous ORM code from a coroutine.

SQLAlchemy's async drivers are written against a small greenlet-provider protocol: synchronous code
running inside a greenlet whose class has ``__sqlalchemy_greenlet_provider__ = True`` may call
``sqlalchemy.util.await_(awaitable)``, which switches to the greenlet's parent with the awaitable.
The parent, a coroutine here, awaits it on the event loop and switches back with the result, or
throws the exception (``CancelledError`` included) into the worker so the sync code unwinds as it
would for any failed IO.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet  # type: ignore[import-untyped]

from ._completion import RunToCompletion

_T = TypeVar("_T")


# Idle workers kept per thread (greenlets belong to the thread that made them): starting a
# greenlet allocates a stack, switching into a live one is cheap, so workers are reused. Beyond
# this many idle ones, a finished worker is ended rather than kept.
MAX_IDLE_WORKERS = 32

# What a worker switches to its caller when its job is done; the outcome is on the worker.
_JOB_DONE = object()
# The job that ends a worker: its loop returns, and the dead greenlet can be collected.
_STOP = object()


class BridgeWorker(greenlet):  # type: ignore[misc]
    """A reusable worker; SQLAlchemy's ``await_`` looks for the marker below.

    The caller puts a job in ``job`` and switches in; IO requests come back to ``parent`` (the
    caller, reset for every job) as awaitables, and the job's end as ``_JOB_DONE``, with its
    ``value`` or ``failure`` on the worker. Between jobs the suspended worker holds nothing of its
    last job: a live greenlet is never garbage collected (its own frame refers to it), so
    anything it held would live as long as the thread.
    """

    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
        self.value: Any = None
        self.failure: BaseException | None = None
        self.in_use = False

    def _serve(self) -> None:
        while True:
            job = self.job
            assert job is not None
            self.job = None
            fn, args, kwargs = job
            del job
            try:
                self.value = fn(*args, **kwargs)
            except GreenletExit:
                raise
            except BaseException as error:  # handed to the caller, which re-raises it
                self.failure = error
            del fn, args, kwargs
            if self.parent.switch(_JOB_DONE) is _STOP:
                return


class _IdleWorkers(threading.local):
    def __init__(self) -> None:
        self.workers: list[BridgeWorker] = []


_idle = _IdleWorkers()


def in_bridge() -> bool:
    """Return True when called from sync code running inside the bridge."""
    return getattr(getcurrent(), "__sqlalchemy_greenlet_provider__", False) is True


async def run_in_bridge(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, **kwargs)`` in a worker greenlet, awaiting whatever IO it requests."""
    caller = getcurrent()
    idle = _idle.workers
    worker = idle.pop() if idle else BridgeWorker()
    worker.parent = caller
    # Share the calling task's contextvars with the sync code.
    worker.gr_context = caller.gr_context
    worker.job = (fn, args, kwargs)
    worker.in_use = True
    request: Any = worker.switch()
    while request is not _JOB_DONE:
        try:
            value = await request
        except asyncio.CancelledError as cancellation:
            # The sync code unwinds from here. Its clean-up (a rollback, closing a connection
            # that the cancellation left unusable) runs to its end: anyio's cancel scopes
            # cancel again at every await, which would cut it short and orphan what it started.
            try:
                unwound: _T = await RunToCompletion(_unwind(worker, cancellation))
            finally:
                _release(worker)
            return unwound
        except BaseException:
            request = worker.throw(*sys.exc_info())
        else:
            request = worker.switch(value)
    result: _T = _outcome(worker)
    return result


async def _unwind(worker: BridgeWorker, cancellation: BaseException) -> Any:
    """Throw ``cancellation`` into the worker's job and await its IO until the job ends."""
    request: Any = worker.throw(cancellation)
    del cancellation
    while request is not _JOB_DONE:
        try:
            value = await request
        except BaseException:
            request = worker.throw(*sys.exc_info())
        else:
            request = worker.switch(value)
    return _outcome(worker)


def _outcome(worker: BridgeWorker) -> Any:
    """Return the value of the worker's finished job, or raise its error; release the worker."""
    result = worker.value
    error = worker.failure
    _release(worker)
    if error is not None:
        try:
            raise error
        finally:
            del error
    return result


def _release(worker: BridgeWorker) -> None:
    """Keep a worker whose job is done for the next call, or end it; it holds nothing after."""
    if not worker.in_use:
        return  # released already
    worker.in_use = False
    worker.gr_context = None
    worker.value = worker.failure = None
    idle = _idle.workers
    if len(idle) < MAX_IDLE_WORKERS:
        idle.append(worker)
    else:
        worker.switch(_STOP)
