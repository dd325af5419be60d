from typing import Any

from sqlalchemy.orm import Session

def identity_map_hit(sync_session: Session, entity: Any, ident: Any) -> Any:
    """Return what ``sync_session.get(entity, ident)`` returns when that needs no IO, else None."""

__all__ = ["identity_map_hit"]
