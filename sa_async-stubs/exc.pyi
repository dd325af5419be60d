from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import exc as async_exc

class SyncBindError(sa_exc.ArgumentError):
    """A sync ``Engine`` or ``Connection`` was given where an async one is needed.

    Create the engine with ``create_async_engine(...)`` or wrap it with ``AsyncEngine(engine)``.
    """

class SessionClassError(sa_exc.ArgumentError):
    """A session class argument is not the kind of class it must be.

    ``class_=`` takes an ``AsyncSession`` subclass; ``sync_session_class=`` a ``Session`` subclass.
    """

class ConcurrentSessionUseError(sa_exc.InvalidRequestError):
    """One ``AsyncSession`` was used by a second task while another task's operation was running.

    Raised before the refused call touches the connection; the running operation is unaffected.
    Give each concurrent task its own session (``async_sessionmaker()`` per task, or
    ``async_scoped_session(maker, scopefunc=asyncio.current_task)``).
    """

class ImplicitIOError(sa_exc.MissingGreenlet):
    """An attribute access needed database IO outside the greenlet bridge.

    A lazy relationship, or an expired or deferred column, was read from async code. Raised
    before any IO (no autoflush, no query). Load it with ``await obj.awaitable_attrs.name``, load
    it eagerly (``selectinload()``, ``undefer()``, ``session.refresh(obj)``), or run the code in
    ``await session.run_sync(fn)``.
    """

class ArgumentTypeError(sa_exc.ArgumentError, TypeError):
    """An argument is not of the kind its parameter takes.

    ``binds`` must be a mapping (``{User: engine}``), ``info`` a dict, and a scoped registry's
    ``session_factory`` a callable that builds sessions, such as an ``async_sessionmaker``.
    """

class ScopefuncError(ArgumentTypeError):
    """``scopefunc`` is not a callable returning the current scope's key (e.g. ``asyncio.current_task``)."""

class TransactionFinishedError(async_exc.AsyncContextAlreadyStarted):
    """A finished ``AsyncSessionTransaction`` was awaited or entered again.

    Start a new transaction with ``await session.begin()`` or ``async with session.begin():``.
    """

class ScopeEndedError(sa_exc.InvalidRequestError):
    """A session of a scoped registry was used after its scope ended and the registry closed it.

    When a scope ends (with ``scopefunc=asyncio.current_task``, when the task is done), the
    registry closes its session, rolling back what was not committed. Raised by any later
    operation on that session, before anything reaches the database. Commit before the scope
    ends, or give work that outlives it (a background task) a session of its own.
    """
