"""Exceptions raised by sa_async.

Each one subclasses the SQLAlchemy exception that ``sqlalchemy.ext.asyncio`` raises for the same
mistake, so ``except`` clauses written for SQLAlchemy keep catching them.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


class SyncBindError(sa_exc.ArgumentError):
    """A sync ``Engine`` or ``Connection`` was given where an async one is needed."""


class SessionClassError(sa_exc.ArgumentError):
    """A session class argument is not the kind of class it must be."""
