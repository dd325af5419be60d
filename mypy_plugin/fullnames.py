"""Every fully-qualified name the plugin matches, spelled where it is defined (stub module paths,
not re-exports: mypy reports ``sa_async.session.AsyncSession``, never ``sa_async.AsyncSession``)."""

from __future__ import annotations

ASYNC_SESSION = "sa_async.session.AsyncSession"
ASYNC_SESSIONMAKER = "sa_async.maker.async_sessionmaker"
AWAITABLE_ATTRS = "sa_async.attrs._AwaitableAttrs"
SCOPED_SESSION = "sa_async.scoping.scoped_session"
ASYNC_SCOPED_SESSION = "sa_async.scoping.async_scoped_session"

SESSION = "sqlalchemy.orm.session.Session"
SESSIONMAKER = "sqlalchemy.orm.session.sessionmaker"
# The sync binds that a bind or a value of binds must not be (an AsyncEngine wraps one).
ENGINE = "sqlalchemy.engine.base.Engine"
CONNECTION = "sqlalchemy.engine.base.Connection"
# The type of the binds parameter, Mapping[key, bind] (or None).
MAPPING = "typing.Mapping"

# What _AwaitableAttrs.__getattr__ returns: Coroutine[Any, Any, <the loaded value>].
COROUTINE = "typing.Coroutine"
# The annotation of mapped attributes: Mapped[T] reads as T on an instance.
MAPPED = "sqlalchemy.orm.base.Mapped"
# Reads as T on an instance too.
HYBRID_PROPERTY = "sqlalchemy.ext.hybrid.hybrid_property"
# SQLAlchemy's own asyncio classes, which code half-way through the migration may still mix in.
SQLALCHEMY_ASYNC_SESSION = "sqlalchemy.ext.asyncio.session.AsyncSession"
SQLALCHEMY_ASYNC_SESSIONMAKER = "sqlalchemy.ext.asyncio.session.async_sessionmaker"
# The loader property of SQLAlchemy's AsyncAttrs mixin.
SQLALCHEMY_AWAITABLE_ATTRS_PROPERTY = "sqlalchemy.ext.asyncio.session.AsyncAttrs.awaitable_attrs"
