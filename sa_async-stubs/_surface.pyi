import enum
from typing import NamedTuple

class Kind(enum.Enum):
    """How ``AsyncSession`` gets a member."""

    SYNC = ...
    GUARDED_SYNC = ...
    BRIDGED = ...
    TO_COMPLETION = ...
    PROPERTY = ...
    SETTABLE = ...
    CLASSMETHOD = ...
    OWN = ...
    NONE = ...

class Registries(enum.Flag):
    """The scoped registries that forward a member to their current session."""

    NEITHER = 0
    ASYNC_SCOPED = 1
    SCOPED = 2
    BOTH = 3

class Member(NamedTuple):
    kind: Kind
    registries: Registries

SURFACE: dict[str, Member]

def members(*kinds: Kind) -> tuple[str, ...]:
    """The names of the members of the given kinds, in the table's order."""

def forwarded_by(registries: Registries) -> tuple[str, ...]:
    """The names that ``registries`` forward to their current session, in the table's order."""
