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
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet  # type: ignore[import-untyped]

_T = TypeVar("_T")


class _BridgeGreenlet(greenlet):  # type: ignore[misc]
    """The worker greenlet; SQLAlchemy's ``await_`` looks for the marker below."""

    __sqlalchemy_greenlet_provider__ = True


def in_bridge() -> bool:
    """Return True when called from sync code running inside the bridge."""
    return getattr(getcurrent(), "__sqlalchemy_greenlet_provider__", False) is True


async def run_in_bridge(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, **kwargs)`` in a worker greenlet, awaiting whatever IO it requests."""
    caller = getcurrent()
    worker = _BridgeGreenlet(fn, caller)
    # Share the calling task's contextvars with the sync code.
    worker.gr_context = caller.gr_context
    request: Any = worker.switch(*args, **kwargs)
    while not worker.dead:
        awaitable: Awaitable[Any] = request
        try:
            value = await awaitable
        except BaseException:
            request = worker.throw(*sys.exc_info())
        else:
            request = worker.switch(value)
    result: _T = request
    return result
