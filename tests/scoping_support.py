"""Helpers for the scoped-session tests: waiting for the closes of ended scopes, recording every
kind of complaint (warnings, event-loop errors, unraisable exceptions), a sync sqlite engine."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from sa_async import AsyncEngine
from tests.conftest import checked_out
from tests.models import Base


async def wait_until_checked_in(
    engine: AsyncEngine, still_in_use: int = 0, timeout: float = 20.0
) -> None:
    """Let the event loop run the closes of ended scopes until the pool has only
    ``still_in_use`` connections checked out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while checked_out(engine) != still_in_use:
        if loop.time() > deadline:
            raise AssertionError(
                f"{checked_out(engine)} connection(s) checked out after {timeout} s, "
                f"expected {still_in_use}"
            )
        await asyncio.sleep(0.001)


@contextlib.contextmanager
def recorded_problems() -> Iterator[list[str]]:
    """Collect, instead of reporting, what would tell a user something went wrong: warnings (the
    pool's garbage-collector clean-up included), errors handed to the event loop's exception
    handler ("Task was destroyed but it is pending", failed callbacks) and unraisable exceptions
    (those raised in weakref callbacks and ``__del__``)."""
    problems: list[str] = []
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    previous_handler = loop.get_exception_handler() if loop else None
    previous_hook = sys.unraisablehook

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        problems.append(
            f"event loop: {context.get('message')} {context.get('exception')!r} "
            f"{context.get('task', '')!r:.300}"
        )

    def on_unraisable(unraisable: Any) -> None:
        problems.append(f"unraisable: {unraisable.exc_value!r} in {unraisable.object!r}")

    if loop:
        loop.set_exception_handler(on_loop_error)
    sys.unraisablehook = on_unraisable
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield problems
        problems.extend(
            f"warning: {warning.category.__name__}: {warning.message}" for warning in caught
        )
    finally:
        sys.unraisablehook = previous_hook
        if loop:
            loop.set_exception_handler(previous_handler)


def sync_sqlite_engine(path: Path) -> Engine:
    """A sync engine on a sqlite file with the test tables, for the thread-scoped registry."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    return engine
