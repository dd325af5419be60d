"""The fast path of ``AsyncSession.get()``: an identity-map hit answered without the bridge."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, Session

from . import _compat

# Session classes whose get() may be answered from the identity map (see identity_map_hit).
_plain_identity_lookup: weakref.WeakKeyDictionary[type[Session], bool] = weakref.WeakKeyDictionary()


def identity_map_hit(sync_session: Session, entity: Any, ident: Any) -> Any:
    """Return what ``sync_session.get(entity, ident)`` returns when that needs no IO, else None.

    The fast path of ``AsyncSession.get()``: an object already in the identity map, of the
    requested class and not expired, is returned without entering the bridge. Anything else
    (a miss, an expired object, a composite key given as a dict, a session class that looks up
    identities its own way) returns None and takes the full path, which decides as it always did.
    """
    session_class = type(sync_session)
    plain = _plain_identity_lookup.get(session_class)
    if plain is None:
        plain = _plain_identity_lookup[session_class] = _compat.looks_up_identities_like_session(
            session_class
        )
    if not plain or isinstance(ident, dict):
        return None
    mapper = sa_inspect(entity, raiseerr=False)
    if not isinstance(mapper, Mapper) or mapper.always_refresh:
        return None
    primary_key = tuple(ident) if isinstance(ident, (tuple, list)) else (ident,)
    if len(primary_key) != len(mapper.primary_key):
        return None
    found = sync_session.identity_map.get(mapper.identity_key_from_primary_key(primary_key))
    if found is None or not isinstance(found, mapper.class_):
        return None
    if sa_inspect(found).expired:
        return None
    return found


__all__ = ["identity_map_hit"]
