"""AsyncAttrs: ``await obj.awaitable_attrs.name`` loads an attribute of a mapped object."""

from collections.abc import Coroutine
from typing import Any, Generic, Self

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from typing_extensions import TypeVar

# The instance whose attributes awaitable_attrs loads (covariant: the loader only reads from it).
_Instance_co = TypeVar("_Instance_co", covariant=True)

class _AwaitableAttrs(sqlalchemy_asyncio.AsyncAttrs._AsyncAttrGetitem, Generic[_Instance_co]):
    """Attribute loader of ``obj.awaitable_attrs``: each attribute read returns an awaitable.

    Generic in the instance's class, so that the mypy plugin can type each attribute as the
    mapped attribute of that class.
    """

    def __init__(self, instance: _Instance_co) -> None: ...
    def __getattr__(self, name: str) -> Coroutine[Any, Any, Any]:
        """Return an awaitable that loads ``name`` on the instance (lazy load or refresh)."""

class AsyncAttrs(sqlalchemy_asyncio.AsyncAttrs):
    """Mixin for mapped classes that makes lazy and expired attributes loadable with ``await``.

    Example::

        class Base(AsyncAttrs, DeclarativeBase): ...

        addresses = await user.awaitable_attrs.addresses
    """

    @property
    def awaitable_attrs(self) -> _AwaitableAttrs[Self]:
        """Return the loader: ``await obj.awaitable_attrs.name`` loads and returns ``obj.name``."""

__all__ = ["AsyncAttrs"]
