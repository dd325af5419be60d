"""The proxied session surface: every member that AsyncSession and the scoped registries forward.

One row per member name: how ``AsyncSession`` gets it (its ``Kind``) and which scoped registries
forward it to their current session. ``session.py`` and ``scoping.py`` install the forwarding
members from this table (``_forwarding.py`` builds them), ``tools/generate_stubs.py`` writes the
stub declarations that repeat ``AsyncSession``'s and ``scoped_session``'s for the registries and
the protocols, and the tests check each kind's behaviour row by row. Adding a member is a row
here and a run of ``python tools/generate_stubs.py``.

How a registry forwards a member follows from the proxied class: an ``async def`` of
``AsyncSession`` stays awaitable, a property stays a property (settable when the session's is,
or when it is a plain attribute), a classmethod stays a classmethod.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Kind(enum.Enum):
    """How ``AsyncSession`` gets a member."""

    SYNC = "forwarded to the sync session; reads only, so allowed during another operation"
    GUARDED_SYNC = "forwarded to the sync session; changes state, refused during another operation"
    BRIDGED = "run in the greenlet bridge and awaited, refused during another operation"
    TO_COMPLETION = "run in the bridge to its end even if the caller is cancelled meanwhile"
    PROPERTY = "the sync session's attribute, read-only"
    SETTABLE = "the sync session's attribute, settable"
    CLASSMETHOD = "Session's classmethod"
    OWN = "written out in AsyncSession's class body"
    NONE = "not a member of AsyncSession: only scoped_session forwards it (from Session)"


class Registries(enum.Flag):
    """The scoped registries that forward a member to their current session."""

    NEITHER = 0
    ASYNC_SCOPED = enum.auto()  # async_scoped_session, from AsyncSession
    SCOPED = enum.auto()  # scoped_session, from Session
    BOTH = ASYNC_SCOPED | SCOPED


class Member(NamedTuple):
    kind: Kind
    registries: Registries


_SYNC, _GUARDED, _BRIDGED = Kind.SYNC, Kind.GUARDED_SYNC, Kind.BRIDGED
_PROPERTY, _SETTABLE, _OWN = Kind.PROPERTY, Kind.SETTABLE, Kind.OWN
_ASYNC, _SCOPED, _BOTH = Registries.ASYNC_SCOPED, Registries.SCOPED, Registries.BOTH

SURFACE: dict[str, Member] = {
    # the identity map and the unit of work, without IO
    "__contains__": Member(_SYNC, _BOTH),
    "__iter__": Member(_SYNC, _BOTH),
    "is_modified": Member(_SYNC, _BOTH),
    "in_transaction": Member(_SYNC, _BOTH),
    "in_nested_transaction": Member(_SYNC, _BOTH),
    "add": Member(_GUARDED, _BOTH),
    "add_all": Member(_GUARDED, _BOTH),
    "expire": Member(_GUARDED, _BOTH),
    "expire_all": Member(_GUARDED, _BOTH),
    "expunge": Member(_GUARDED, _BOTH),
    "expunge_all": Member(_GUARDED, _BOTH),
    # IO, in the bridge
    "refresh": Member(_BRIDGED, _BOTH),
    "delete": Member(_BRIDGED, _BOTH),
    "delete_all": Member(_BRIDGED, _BOTH),
    "merge": Member(_BRIDGED, _BOTH),
    "merge_all": Member(_BRIDGED, _BOTH),
    "flush": Member(_BRIDGED, _BOTH),
    "get_one": Member(_BRIDGED, _BOTH),
    "rollback": Member(_BRIDGED, _BOTH),
    "invalidate": Member(_BRIDGED, _BOTH),
    "reset": Member(Kind.TO_COMPLETION, _BOTH),
    # the sync session's attributes
    "dirty": Member(_PROPERTY, _BOTH),
    "deleted": Member(_PROPERTY, _BOTH),
    "new": Member(_PROPERTY, _BOTH),
    "is_active": Member(_PROPERTY, _BOTH),
    "no_autoflush": Member(_PROPERTY, _BOTH),
    "info": Member(_PROPERTY, _BOTH),
    "identity_map": Member(_SETTABLE, _BOTH),
    "autoflush": Member(_SETTABLE, _BOTH),
    "execution_options": Member(_SETTABLE, _BOTH),
    "object_session": Member(Kind.CLASSMETHOD, _BOTH),
    "identity_key": Member(Kind.CLASSMETHOD, _BOTH),
    # written out in AsyncSession: binds translated, results buffered, transactions, closing
    "sync_session": Member(_OWN, _ASYNC),
    "bind": Member(_OWN, _BOTH),
    "binds": Member(_OWN, _BOTH),
    "bind_mapper": Member(_OWN, _BOTH),
    "bind_table": Member(_OWN, _BOTH),
    "get_bind": Member(_OWN, _BOTH),
    "get_async_bind": Member(_OWN, _ASYNC),
    "execute": Member(_OWN, _BOTH),
    "scalar": Member(_OWN, _BOTH),
    "scalars": Member(_OWN, _BOTH),
    "stream": Member(_OWN, _ASYNC),
    "stream_scalars": Member(_OWN, _ASYNC),
    "get": Member(_OWN, _BOTH),
    "run_sync": Member(_OWN, _ASYNC),
    "connection": Member(_OWN, _BOTH),
    "begin": Member(_OWN, _BOTH),
    "begin_nested": Member(_OWN, _BOTH),
    "get_transaction": Member(_OWN, _BOTH),
    "get_nested_transaction": Member(_OWN, _BOTH),
    "commit": Member(_OWN, _BOTH),
    "close": Member(_OWN, _BOTH),
    "aclose": Member(_OWN, _ASYNC),
    "close_all": Member(_OWN, Registries.NEITHER),
    # Session's own, which AsyncSession leaves out (the legacy Query, bulk operations, 2PC)
    "bulk_insert_mappings": Member(Kind.NONE, _SCOPED),
    "bulk_save_objects": Member(Kind.NONE, _SCOPED),
    "bulk_update_mappings": Member(Kind.NONE, _SCOPED),
    "enable_relationship_loading": Member(Kind.NONE, _SCOPED),
    "prepare": Member(Kind.NONE, _SCOPED),
    "query": Member(Kind.NONE, _SCOPED),
}


def members(*kinds: Kind) -> tuple[str, ...]:
    """The names of the members of the given kinds, in the table's order."""
    return tuple(name for name, member in SURFACE.items() if member.kind in kinds)


def forwarded_by(registries: Registries) -> tuple[str, ...]:
    """The names that ``registries`` forward to their current session, in the table's order."""
    return tuple(name for name, member in SURFACE.items() if registries in member.registries)
