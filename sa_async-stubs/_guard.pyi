import asyncio
from collections.abc import Collection
from types import FrameType
from typing import Any, Final, TypeAlias

from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.pool import Pool

Operation: TypeAlias = tuple[str, FrameType | None]
SCOPE_ENDED: Final[Operation]

def current_task() -> asyncio.Task[Any] | None: ...
def task_name(task: asyncio.Task[Any] | None) -> str: ...

class EndedScope:
    """What a session's scope was, and the pools of its engines when the scope ended."""

    scope: str
    pools: dict[Engine, Pool]
    def __init__(self, scope: str, pools: dict[Engine, Pool]) -> None: ...

class GuardedSession:
    """The guard's part of AsyncSession: its state, and taking and refusing the session."""

def mark_scope_ended(session: Any, scope: str) -> None:
    """Record that the scope that ``session`` served has ended."""

async def close_after_scope(session: Any) -> None:
    """Close the session of an ended scope once the operation running in it has finished."""

def refuse_implicit_io(
    sync_session: Session,
    state: InstanceState[Any],
    attribute_names: Collection[str],
    relationship: str | None,
) -> None:
    """Refuse, before any IO, an attribute load of one of our sessions outside the bridge."""

__all__ = [
    "SCOPE_ENDED",
    "EndedScope",
    "GuardedSession",
    "Operation",
    "close_after_scope",
    "current_task",
    "mark_scope_ended",
    "refuse_implicit_io",
    "task_name",
]
