from sqlalchemy import exc as sa_exc

class SyncBindError(sa_exc.ArgumentError):
    """A sync ``Engine`` or ``Connection`` was given where an async one is needed.

    Create the engine with ``create_async_engine(...)`` or wrap it with ``AsyncEngine(engine)``.
    """

class SessionClassError(sa_exc.ArgumentError):
    """A session class argument is not the kind of class it must be.

    ``class_=`` takes an ``AsyncSession`` subclass; ``sync_session_class=`` a ``Session`` subclass.
    """
