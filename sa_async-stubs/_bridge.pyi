from collections.abc import Callable
from typing import Any, Final, TypeVar

from greenlet import greenlet  # type: ignore[import-untyped]

_T = TypeVar("_T")

MAX_IDLE_WORKERS: Final[int]

class BridgeWorker(greenlet):  # type: ignore[misc]
    """A reusable worker greenlet that runs one sync job at a time."""

    __sqlalchemy_greenlet_provider__: bool
    job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None
    value: Any
    failure: BaseException | None
    in_use: bool
    def __init__(self) -> None: ...

def in_bridge() -> bool:
    """Return True when called from sync code running inside the bridge."""

async def run_in_bridge(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, **kwargs)`` in a worker greenlet, awaiting the IO it requests."""
