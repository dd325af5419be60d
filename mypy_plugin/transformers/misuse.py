"""Errors for misuse that the runtime reports only when the code runs (or warns about).

Each message names the mistake and what to write instead; each has a sub-code of
``sa-async-misuse`` (``errorcodes.py``), so users can silence one kind or all of them. Where the
stubs already make the call an error, mypy's own message stays, before the plugin's. The checks
run inside mypy's overload matching, so an overloaded call that only the plugin rejects is also
reported against its closest overload: ``sessionmaker(class_=AsyncSession)``, which SQLAlchemy's
stubs accept through ``**kw``, gets mypy's ``[type-var]`` error for the ``class_`` overload too.

A sync ``Engine`` or ``Connection`` as ``bind`` (or as a value of ``binds``) is the exception:
the stubs refuse it with mypy's "No overload variant" and a list of signatures, so when it is
the call's one mistake the signature hook lets the overloads take it and the function hook
reports it alone; the call keeps the type it has with an async bind.
"""

from __future__ import annotations

from mypy.argmap import map_actuals_to_formals
from mypy.checker import TypeChecker
from mypy.errors import ErrorInfo
from mypy.maptype import map_instance_to_supertype
from mypy.messages import format_type
from mypy.nodes import ArgKind, DictExpr, Expression
from mypy.plugin import FunctionContext
from mypy.typeops import make_simplified_union
from mypy.types import (
    CallableType,
    Instance,
    Type,
    UnionType,
    flatten_nested_unions,
    get_proper_type,
)

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


# -- a sync Engine or Connection as bind, or as a value of binds

SYNC_BIND_ADVICE = (
    "create the engine with create_async_engine(...) or wrap an existing one with "
    "AsyncEngine(engine)"
)


def sync_binds_accepted(
    signature: CallableType,
    arguments: tuple[list[Expression], list[ArgKind], list[str | None]],
    api: TypeChecker,
) -> CallableType:
    """``signature`` with ``bind`` and the values of ``binds`` widened to the sync Engine or
    Connection that ``arguments`` (a call's, or those written out) give them.

    ``check_sync_binds`` reports them. Any other wrong bind, and any call without a sync one,
    keeps ``signature`` itself.
    """
    args, kinds, names = arguments
    formal_to_actual = map_actuals_to_formals(
        kinds,
        names,
        signature.arg_kinds,
        signature.arg_names,
        lambda index: expression_type(args[index], api),
    )
    arg_types = list(signature.arg_types)
    for index, (name, actuals) in enumerate(
        zip(signature.arg_names, formal_to_actual, strict=True)
    ):
        exprs = [args[actual] for actual in actuals]
        if name == "bind":
            given = [sync_binds_in(expression_type(expr, api)) for expr in exprs]
            sync = [bind for binds in given for bind in binds]
            if sync:
                arg_types[index] = make_simplified_union([arg_types[index], *sync])
        elif name == "binds":
            values = [value for expr in exprs for value, _ in bind_values(expr, api)]
            sync = [bind for value in values for bind in sync_binds_in(value)]
            if sync:
                arg_types[index] = with_mapping_values(arg_types[index], sync)
    if arg_types == signature.arg_types:
        return signature
    return signature.copy_modified(arg_types=arg_types)


def only_sync_bind_errors(errors: list[ErrorInfo]) -> bool:
    """Whether ``errors`` (of a call checked on trial) are all sync binds, or there are none."""
    return all(error.code == errorcodes.SYNC_BIND for error in errors)


def check_sync_binds(ctx: FunctionContext, callee: str) -> None:
    """``bind`` and the values of ``binds`` must be AsyncEngine or AsyncConnection objects."""
    api = ctx.api
    if not isinstance(api, TypeChecker):
        return
    for name, types, exprs in zip(ctx.callee_arg_names, ctx.arg_types, ctx.args, strict=True):
        if name == "bind":
            for bind_type, expr in zip(types, exprs, strict=True):
                report_sync_bind(
                    ctx,
                    f"bind of {callee} must be an AsyncEngine or AsyncConnection",
                    bind_type,
                    expr,
                )
    binds_argument = named_argument(ctx, "binds")
    if binds_argument is not None:
        for value_type, expr in bind_values(binds_argument[1], api):
            report_sync_bind(
                ctx,
                f"binds of {callee} must map each key to an AsyncEngine or AsyncConnection",
                value_type,
                expr,
            )


def report_sync_bind(ctx: FunctionContext, rule: str, bind_type: Type, expr: Expression) -> None:
    """Report ``bind_type`` if it is, or its union includes, a sync Engine or Connection."""
    sync = sync_binds_in(bind_type)
    if not sync:
        return
    kind = "Engine" if sync[0].type.has_base(fullnames.ENGINE) else "Connection"
    verb = "is" if isinstance(get_proper_type(bind_type), Instance) else "can be"
    ctx.api.fail(
        f"{rule}, and {format_type(bind_type, ctx.api.options)} {verb} a sync {kind}: "
        + SYNC_BIND_ADVICE,
        expr,
        code=errorcodes.SYNC_BIND,
    )


def sync_binds_in(bind_type: Type) -> list[Instance]:
    """The sync Engine and Connection types (subclasses too) that ``bind_type`` is or includes."""
    proper = get_proper_type(bind_type)
    items = flatten_nested_unions([proper]) if isinstance(proper, UnionType) else [proper]
    return [
        item
        for item in map(get_proper_type, items)
        if isinstance(item, Instance)
        and (item.type.has_base(fullnames.ENGINE) or item.type.has_base(fullnames.CONNECTION))
    ]


def bind_values(binds: Expression, api: TypeChecker) -> list[tuple[Type, Expression]]:
    """The values given by a ``binds`` argument, each with the expression to report it at.

    Each value of a ``{...}`` display (those of a ``**mapping`` in it too), or else the value
    type of the mapping passed.
    """
    if isinstance(binds, DictExpr):
        values: list[tuple[Type, Expression]] = []
        for key, value in binds.items:
            if key is None:
                values.extend(bind_values(value, api))
            else:
                values.append((expression_type(value, api), value))
        return values
    mapping = get_proper_type(expression_type(binds, api))
    if not isinstance(mapping, Instance):
        return []
    base = next((base for base in mapping.type.mro if base.fullname == fullnames.MAPPING), None)
    if base is None:
        return []
    as_mapping = map_instance_to_supertype(mapping, base)
    return [(as_mapping.args[1], binds)] if len(as_mapping.args) == 2 else []


def with_mapping_values(formal: Type, extra: list[Instance]) -> Type:
    """``formal`` with each ``Mapping[K, V]`` in it widened to ``Mapping[K, V | <extra>]``."""
    proper = get_proper_type(formal)
    if isinstance(proper, UnionType):
        return UnionType.make_union([with_mapping_values(item, extra) for item in proper.items])
    if isinstance(proper, Instance) and proper.type.fullname == fullnames.MAPPING:
        if len(proper.args) == 2:
            key, value = proper.args
            return proper.copy_modified(args=[key, make_simplified_union([value, *extra])])
    return formal


def expression_type(expr: Expression, api: TypeChecker) -> Type:
    """The type of ``expr`` on its own, neither reporting its errors again nor storing it."""
    with api.msg.filter_errors(), api.local_type_map:
        return api.expr_checker.accept(expr)
