from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session

AsyncBind: TypeAlias = AsyncEngine | AsyncConnection
SyncBind: TypeAlias = Engine | Connection
SessionFactory: TypeAlias = type[Session] | Callable[..., Session]

def sync_bind_of(bind: object, role: str = "bind") -> SyncBind:
    """Return the sync Engine/Connection behind an async bind, or raise naming the mistake."""

def check_sync_session_class(value: object) -> None:
    """Raise ``SessionClassError`` unless ``value`` can serve as ``sync_session_class``."""

def check_mapping(parameter: str, value: object, hint: str) -> None: ...
def check_binds(binds: object) -> Mapping[Any, AsyncBind]:
    """Check a ``binds=`` argument: a mapping of async binds. Return it."""

class BindTranslation:
    """AsyncSession's sync <-> async translation of its binds."""

    sync_session: Session

__all__ = [
    "AsyncBind",
    "BindTranslation",
    "SessionFactory",
    "SyncBind",
    "check_binds",
    "check_mapping",
    "check_sync_session_class",
    "sync_bind_of",
]
