"""ScopeRegistry: one object per scope, and the closing of the sessions of ended scopes."""

from collections.abc import Callable, Hashable

from sqlalchemy.util import ScopedRegistry
from typing_extensions import TypeVar

_T = TypeVar("_T")

class ScopeRegistry(ScopedRegistry[_T]):
    """Hold one object per scope, created on first use in the scope.

    ``scopefunc()`` names the current scope. A scope key that can be weakly referenced (a task,
    a thread's scope, a request object) is held weakly: when it is garbage, or when a task or
    future used as key is done, its object is dropped and closed. Other keys (``None``,
    numbers, strings) are kept until ``clear()``.
    """

    createfunc: Callable[[], _T]
    """The factory called for a scope that has no object yet."""
    scopefunc: Callable[[], Hashable]
    """Return the current scope's key."""
    def __init__(self, createfunc: Callable[[], _T], scopefunc: Callable[[], Hashable]) -> None:
        """Hold the objects that ``createfunc()`` builds, one per ``scopefunc()`` key."""

    def __call__(self) -> _T:
        """Return the current scope's object, creating it if the scope has none."""

    def has(self) -> bool:
        """Return True when the current scope has an object."""

    def set(self, obj: _T) -> None:
        """Make ``value`` the current scope's object."""

    def clear(self) -> None:
        """Forget the current scope's object, without closing it."""

    def __len__(self) -> int:
        """Return the number of objects held, over all scopes."""

class _ThreadScope:
    """The scope key of one thread, which dies with the thread."""

def current_thread_scope() -> _ThreadScope:
    """Return the current thread's scope key: ``scoped_session``'s default ``scopefunc``."""

__all__ = ["ScopeRegistry", "current_thread_scope"]
