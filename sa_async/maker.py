"""async_sessionmaker: a configured factory of AsyncSession objects."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio

from ._binds import AsyncBind, check_binds, check_mapping, check_sync_session_class, sync_bind_of
from ._forwarding import subscriptable
from .exc import SessionClassError
from .session import AsyncSession


class async_sessionmaker(sqlalchemy_asyncio.async_sessionmaker):  # type: ignore[type-arg]
    """A configured factory of AsyncSession objects.

    A subclass of SQLAlchemy's ``async_sessionmaker`` for identity only; every member is
    defined here. ``class_`` may be any subclass of SQLAlchemy's ``AsyncSession`` (sa_async's
    by default), as with SQLAlchemy's maker.
    """

    __class_getitem__ = subscriptable

    def __init__(
        self,
        bind: AsyncBind | None = None,
        *,
        class_: type[sqlalchemy_asyncio.AsyncSession] = AsyncSession,
        autoflush: bool = True,
        expire_on_commit: bool = True,
        info: dict[Any, Any] | None = None,
        **kw: Any,
    ) -> None:
        if not (isinstance(class_, type) and issubclass(class_, sqlalchemy_asyncio.AsyncSession)):
            raise SessionClassError(
                f"class_ must be an AsyncSession class (sa_async's, SQLAlchemy's or a subclass "
                f"of either), got {class_!r}; to use a custom sync Session, pass "
                "sync_session_class= instead."
            )
        if bind is not None:
            sync_bind_of(bind)
        if kw.get("sync_session_class") is not None:
            check_sync_session_class(kw["sync_session_class"])
        if kw.get("binds") is not None:
            check_binds(kw["binds"])
        if info is not None:
            check_mapping("info", info, "the sessions' info dictionary, e.g. info={}")
        kw["bind"] = bind
        kw["autoflush"] = autoflush
        kw["expire_on_commit"] = expire_on_commit
        if info is not None:
            kw["info"] = info
        self.kw = kw
        self.class_ = class_

    def __call__(self, **local_kw: Any) -> Any:
        """Create a session; ``local_kw`` overrides the configuration (``info`` is merged)."""
        kw = self.kw
        if "info" in local_kw and "info" in kw:
            check_mapping("info", local_kw["info"], "the session's info dictionary")
            local_kw["info"] = {**kw["info"], **local_kw["info"]}
        return self.class_(**{**kw, **local_kw})

    def begin(self) -> Any:
        """Return ``async with maker.begin() as session:``: commit or roll back, then close.

        Example::

            async with Session.begin() as session:
                session.add(user)
        """
        # The session's own begin context: sa_async's, or that of SQLAlchemy's class_.
        return self()._maker_context_manager()

    def configure(self, **new_kw: Any) -> None:
        """Change the configuration used by sessions created from now on."""
        self.kw.update(new_kw)

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.kw.items())
        return f"{type(self).__name__}(class_={self.class_.__name__!r}, {settings})"


__all__ = ["async_sessionmaker"]
