"""Errors for misuse that the runtime reports only when the code runs (or warns about).

Each message names the mistake and what to write instead; each has a sub-code of
``sa-async-misuse`` (``errorcodes.py``), so users can silence one kind or all of them. Where the
stubs already make the call an error, mypy's own message stays, before the plugin's. The checks
run inside mypy's overload matching, so an overloaded call that only the plugin rejects is also
reported against its closest overload: ``sessionmaker(class_=AsyncSession)``, which SQLAlchemy's
stubs accept through ``**kw``, gets mypy's ``[type-var]`` error for the ``class_`` overload too.
"""

from __future__ import annotations

from mypy.messages import format_type
from mypy.plugin import FunctionContext
from mypy.types import Instance, Type, get_proper_type

from .. import errorcodes, fullnames
from ..helpers import built_instance, is_async_session_class, named_argument


def check_async_sessionmaker_classes(ctx: FunctionContext) -> None:
    """``async_sessionmaker(class_=...)`` must name an AsyncSession class (sa_async's,
    SQLAlchemy's, or a subclass of either)."""
    class_argument = named_argument(ctx, "class_")
    if class_argument is not None:
        class_type, expr = class_argument
        built = built_instance(class_type)
        if built is not None and not is_async_session_class(built.type):
            name = built.type.name
            if built.type.has_base(fullnames.SESSION):
                advice = (
                    f'; "{name}" is a sync session class: write sync_session_class={name} instead'
                )
            else:
                advice = f', not "{name}"'
            ctx.api.fail(
                "class_ of async_sessionmaker() must be an AsyncSession class" + advice,
                expr,
                code=errorcodes.SESSION_CLASS,
            )
    check_sync_session_class(ctx, "async_sessionmaker()", "class_={name}")


def check_sync_session_class(ctx: FunctionContext, callee: str, instead: str) -> None:
    """``sync_session_class=`` must name a sync Session class, not an AsyncSession one.

    ``instead`` is what to write, with ``{name}`` for the AsyncSession class given.
    """
    sync_argument = named_argument(ctx, "sync_session_class")
    if sync_argument is None:
        return
    sync_type, expr = sync_argument
    built = built_instance(sync_type)
    if built is not None and is_async_session_class(built.type):
        name = built.type.name
        ctx.api.fail(
            f"sync_session_class of {callee} must be a sync Session class, and "
            f'"{name}" is an AsyncSession class: write {instead.format(name=name)} instead',
            expr,
            code=errorcodes.SESSION_CLASS,
        )


def sessionmaker_of_async_sessions(ctx: FunctionContext) -> Type:
    """``sqlalchemy.orm.sessionmaker(class_=AsyncSession)`` makes async sessions nobody awaits."""
    class_argument = named_argument(ctx, "class_")
    if class_argument is not None:
        class_type, expr = class_argument
        built = built_instance(class_type)
        if built is not None and is_async_session_class(built.type):
            name = built.type.name
            ctx.api.fail(
                f'sessionmaker() makes sync sessions, and "{name}" is an AsyncSession class: '
                f"write async_sessionmaker(bind, class_={name}) instead",
                expr,
                code=errorcodes.SESSION_CLASS,
            )
    return ctx.default_return_type


def scoped_session_of_async_sessionmaker(ctx: FunctionContext) -> Type:
    """``scoped_session`` keeps sync sessions: an async sessionmaker needs async_scoped_session."""
    factory = first_argument(ctx)
    if factory is not None and (
        factory.type.has_base(fullnames.ASYNC_SESSIONMAKER)
        or factory.type.has_base(fullnames.SQLALCHEMY_ASYNC_SESSIONMAKER)
    ):
        ctx.api.fail(
            f"scoped_session() keeps sync sessions, and {format_type(factory, ctx.api.options)} "
            "makes async ones: write async_scoped_session(session_factory, "
            "scopefunc=asyncio.current_task) instead",
            ctx.args[0][0],
            code=errorcodes.REGISTRY,
        )
    return ctx.default_return_type


def async_scoped_session_of_sessionmaker(ctx: FunctionContext) -> Type:
    """``async_scoped_session`` keeps async sessions: a sync sessionmaker needs scoped_session."""
    factory = first_argument(ctx)
    if factory is not None and factory.type.has_base(fullnames.SESSIONMAKER):
        ctx.api.fail(
            f"async_scoped_session() keeps async sessions, and "
            f"{format_type(factory, ctx.api.options)} makes sync ones: write "
            "scoped_session(session_factory) for sync sessions, or build the factory with "
            "async_sessionmaker(...)",
            ctx.args[0][0],
            code=errorcodes.REGISTRY,
        )
    return ctx.default_return_type


def first_argument(ctx: FunctionContext) -> Instance | None:
    """The instance type of the argument given for the first parameter (``session_factory``)."""
    if not ctx.arg_types or len(ctx.arg_types[0]) != 1:
        return None
    proper = get_proper_type(ctx.arg_types[0][0])
    return proper if isinstance(proper, Instance) else None
