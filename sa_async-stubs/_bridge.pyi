from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

def in_bridge() -> bool:
    """Return True when called from sync code running inside the bridge."""

async def run_in_bridge(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, **kwargs)`` in a worker greenlet, awaiting the IO it requests."""
