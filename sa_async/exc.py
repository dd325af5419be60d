"""Exceptions raised by sa_async.

Each one subclasses the SQLAlchemy exception that ``sqlalchemy.ext.asyncio`` raises for the same
mistake, so ``except`` clauses written for SQLAlchemy keep catching them.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import exc as async_exc


class SyncBindError(sa_exc.ArgumentError):
    """A sync ``Engine`` or ``Connection`` was given where an async one is needed."""


class SessionClassError(sa_exc.ArgumentError):
    """A session class argument is not the kind of class it must be."""


class ConcurrentSessionUseError(sa_exc.InvalidRequestError):
    """One ``AsyncSession`` was used by a second task while an operation of another was running."""


class ImplicitIOError(sa_exc.MissingGreenlet):
    """An attribute access needed database IO outside the greenlet bridge (a lazy load, or an
    expired or deferred attribute)."""


class ArgumentTypeError(sa_exc.ArgumentError, TypeError):
    """An argument is not of the kind its parameter takes (``binds``, ``info``, a session
    factory)."""


class ScopefuncError(ArgumentTypeError):
    """``scopefunc`` is not a callable returning the current scope's key."""


class TransactionFinishedError(async_exc.AsyncContextAlreadyStarted):
    """A finished ``AsyncSessionTransaction`` was awaited or entered again."""


class ScopeEndedError(sa_exc.InvalidRequestError):
    """A session of a scoped registry was used after its scope ended and the registry closed it."""
