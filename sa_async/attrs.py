"""AsyncAttrs: ``await obj.awaitable_attrs.name`` loads an attribute of a mapped object.

The load runs in the greenlet bridge as an operation of the object's session, under its
concurrent-use guard; an object without a session loads in the bridge all the same.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import object_session

from . import _compat
from ._bridge import run_in_bridge
from ._forwarding import subscriptable
from ._proxies import async_session


class _AwaitableAttrs(_compat.AwaitableAttrsLoader):
    """``obj.awaitable_attrs``: each attribute read returns an awaitable that loads it.

    A subclass of SQLAlchemy's loader class, on its slot (``_instance``), for identity.
    """

    __slots__ = ()
    __class_getitem__ = subscriptable

    def __init__(self, instance: object) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Coroutine[Any, Any, Any]:
        """Return an awaitable that loads ``name`` on the instance (lazy load or refresh)."""
        sync_session = object_session(self._instance)
        session = None if sync_session is None else async_session(sync_session)
        if session is None:
            return run_in_bridge(getattr, self._instance, name)
        load: Coroutine[Any, Any, Any] = session._run_guarded(
            f"awaitable_attrs.{name}", getattr, self._instance, name
        )
        return load


class AsyncAttrs(sqlalchemy_asyncio.AsyncAttrs):
    """Mixin for mapped classes: ``await obj.awaitable_attrs.name`` loads ``obj.name``.

    A subclass of SQLAlchemy's ``AsyncAttrs`` for identity; the loader is sa_async's.
    """

    # SQLAlchemy's name for the loader class (its own loader does not go through the guard).
    _AsyncAttrGetitem = _AwaitableAttrs  # type: ignore[assignment]

    @property
    def awaitable_attrs(self) -> _AwaitableAttrs:
        """Return the loader: ``await obj.awaitable_attrs.name`` loads and returns ``obj.name``."""
        return _AwaitableAttrs(self)


__all__ = ["AsyncAttrs"]
