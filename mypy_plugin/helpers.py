"""Small readers of mypy's nodes and types that several transformers share."""

from __future__ import annotations

from mypy.nodes import ARG_STAR, ARG_STAR2, Expression, TypeInfo
from mypy.plugin import FunctionContext
from mypy.types import (
    FunctionLike,
    Instance,
    Type,
    TypeType,
    TypeVarType,
    get_proper_type,
    has_type_vars,
)

from . import fullnames


def named_argument(ctx: FunctionContext, name: str) -> tuple[Type, Expression] | None:
    """The type and expression of the argument passed as ``name=...``, if the call has one."""
    for types, names, exprs in zip(ctx.arg_types, ctx.arg_names, ctx.args, strict=True):
        for arg_type, arg_name, expr in zip(types, names, exprs, strict=True):
            if arg_name == name:
                return arg_type, expr
    return None


def has_unpacked_arguments(ctx: FunctionContext) -> bool:
    """Whether the call passes ``*args`` or ``**kwargs``, whose names the hook cannot see."""
    return any(kind in (ARG_STAR, ARG_STAR2) for kinds in ctx.arg_kinds for kind in kinds)


def built_instance(class_type: Type) -> Instance | None:
    """The instance type that a class argument builds: ``X`` for a class object or ``type[X]``.

    A bare generic class gets its type parameters' defaults (``AsyncSession`` is
    ``AsyncSession[Session]``); anything else (a type variable, ``type[Any]``) gives None.
    """
    proper = get_proper_type(class_type)
    if isinstance(proper, TypeType):
        item = get_proper_type(proper.item)
        return item if isinstance(item, Instance) else None
    if isinstance(proper, FunctionLike) and proper.is_type_obj():
        return defaulted_instance(proper.type_object())
    return None


def defaulted_instance(info: TypeInfo) -> Instance | None:
    """``info``'s instance type with each type parameter at its default (``Any`` if it has none).

    None for a class with a ``TypeVarTuple`` or ``ParamSpec`` parameter, or a default that
    names another type parameter: the plugin leaves those to mypy.
    """
    args: list[Type] = []
    for type_var in info.defn.type_vars:
        if not isinstance(type_var, TypeVarType) or has_type_vars(type_var.default):
            return None
        args.append(type_var.default)
    return Instance(info, args)


def is_async_session_class(info: TypeInfo) -> bool:
    return info.has_base(fullnames.ASYNC_SESSION) or info.has_base(
        fullnames.SQLALCHEMY_ASYNC_SESSION
    )
