"""Binds: the sync session holds sync Engines and Connections, AsyncSession hands out async ones.

``sync_bind_of`` checks a bind given to a session or a sessionmaker and returns its sync side;
``BindTranslation`` is AsyncSession's map from each sync bind back to its async object, under the
member names SQLAlchemy's AsyncSession uses (its tests and some libraries call them). The other
checks of constructor arguments live here too: they run before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import Session

from .exc import ArgumentTypeError, SessionClassError, SyncBindError

AsyncBind = AsyncEngine | AsyncConnection
SyncBind = Engine | Connection


def sync_bind_of(bind: object, role: str = "bind") -> SyncBind:
    """Return the sync Engine/Connection behind an async bind, or raise naming the mistake."""
    if isinstance(bind, AsyncEngine):
        return bind.sync_engine
    if isinstance(bind, AsyncConnection):
        if bind.sync_connection is None:
            raise async_exc.AsyncContextNotStarted(
                f"The AsyncConnection given as {role} has not been started; open it with "
                "'async with engine.connect() as conn:' (or 'await engine.connect()') first."
            )
        return bind.sync_connection
    # Messages open with "AsyncEngine expected, got <type>", as SQLAlchemy's do, for code that
    # matches on them.
    if isinstance(bind, (Engine, Connection)):
        raise SyncBindError(
            f"AsyncEngine expected, got {type(bind).__name__} as {role}: it must be an "
            "AsyncEngine or AsyncConnection; create the engine with create_async_engine(...) "
            "or wrap an existing one with AsyncEngine(engine)."
        )
    raise SyncBindError(
        f"AsyncEngine expected, got {type(bind).__name__} as {role}: it must be an "
        "AsyncEngine or AsyncConnection."
    )


def check_sync_session_class(value: object) -> None:
    """Raise ``SessionClassError`` unless ``value`` can serve as ``sync_session_class``."""
    if isinstance(value, type) and issubclass(value, sqlalchemy_asyncio.AsyncSession):
        raise SessionClassError(
            f"sync_session_class must be a sync sqlalchemy.orm.Session subclass, got "
            f"{value.__name__}, an asyncio session class: pass it as class_= instead "
            f"(async_sessionmaker(engine, class_={value.__name__}))."
        )
    if not callable(value) or (isinstance(value, type) and not issubclass(value, Session)):
        raise SessionClassError(
            f"sync_session_class must be a subclass of sqlalchemy.orm.Session, got "
            f"{value!r}; pass the sync session class (e.g. a routing Session)."
        )


def check_mapping(parameter: str, value: object, hint: str) -> None:
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{parameter} must be a mapping ({hint}), got a {type(value).__name__}."
        )


def check_binds(binds: object) -> Mapping[Any, AsyncBind]:
    """Check a ``binds=`` argument: a mapping of async binds. Return it."""
    check_mapping("binds", binds, "e.g. binds={User: engine, Order: other_engine}")
    assert isinstance(binds, Mapping)
    for key, value in binds.items():
        sync_bind_of(value, f"binds[{key!r}]")
    return binds


class BindTranslation:
    """AsyncSession's sync <-> async translation of its binds."""

    sync_session: Session
    _async_bind: AsyncBind | None
    _async_binds: dict[Any, AsyncBind]
    _translation: dict[object, object] | None

    @property
    def _translate_binds(self) -> dict[object, object]:
        """The sync <-> async translation of this session's binds, built once per bind change."""
        table = self._translation
        if table is None:
            table = {}
            for async_bind in (self._async_bind, *self._async_binds.values()):
                if async_bind is not None:
                    sync_bind = sync_bind_of(async_bind)
                    table[async_bind] = sync_bind
                    table[sync_bind] = async_bind
            self._translation = table
        return table

    def _invalidate_translate_binds(self) -> None:
        self._translation = None

    def _register_async_bind(self, key: Any, bind: AsyncBind) -> None:
        self._async_binds[key] = bind
        self._translation = None

    def _translate_for_bind(self, bind: Any) -> Any:
        """Return the async object of one of this session's sync binds (or the reverse)."""
        if bind is None:
            return None
        try:
            return self._translate_binds[bind]
        except KeyError:
            name = type(self).__name__
            raise async_exc.AsyncBindNotFound(
                f"Can't translate bind {bind!r} to its async counterpart: it is not among "
                f"the binds of this {name}. Set binds on the {name} (bind=, binds=, "
                "bind_mapper(), bind_table()) rather than on its sync_session."
            ) from None


# A factory of sync sessions, as sync_session_class may be.
SessionFactory = type[Session] | Callable[..., Session]

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
