"""``await obj.awaitable_attrs.name``: typed as ``obj.name``, unknown names and methods rejected.

The stubs give ``AsyncAttrs.awaitable_attrs`` the type ``_AwaitableAttrs[Self]``, whose
``__getattr__`` returns ``Coroutine[Any, Any, Any]`` for any name. mypy asks the plugin about each
name read through that ``__getattr__`` (fullname ``sa_async.attrs._AwaitableAttrs.<name>``);
this module puts the type that ``obj.name`` has, descriptors applied (``Mapped[int]`` gives
``int``, a relationship its class or collection, a ``hybrid_property`` or ``property`` its
value), in place of the last ``Any``.
"""

from __future__ import annotations

from mypy.checker import TypeChecker
from mypy.checkmember import analyze_member_access
from mypy.messages import best_matches, pretty_seq
from mypy.nodes import (
    Decorator,
    FuncDef,
    MemberExpr,
    OverloadedFuncDef,
    SymbolNode,
    TypeInfo,
    Var,
)
from mypy.plugin import AttributeContext
from mypy.server.trigger import make_trigger
from mypy.typeops import make_simplified_union
from mypy.types import (
    CallableType,
    FunctionLike,
    Instance,
    ProperType,
    Type,
    TypeVarType,
    UnionType,
    get_proper_type,
    has_type_vars,
)

from .. import errorcodes, fullnames


def awaitable_attribute(ctx: AttributeContext) -> Type:
    """Type ``obj.awaitable_attrs.<name>`` as a coroutine returning ``obj.<name>``'s type."""
    awaited = get_proper_type(ctx.default_attr_type)
    if not (
        isinstance(ctx.context, MemberExpr)
        and isinstance(ctx.api, TypeChecker)
        and isinstance(awaited, Instance)
        and awaited.type.fullname == fullnames.COROUTINE
        and len(awaited.args) == 3
    ):
        return ctx.default_attr_type
    # On a union (`either.awaitable_attrs` of `A | B`) mypy calls the hook once per member with
    # the whole union as the type: each call answers for all of them, and mypy merges duplicates.
    owner = get_proper_type(ctx.type)
    loaders = owner.items if isinstance(owner, UnionType) else [owner]
    loaded_types: list[Type] = []
    for loader in map(get_proper_type, loaders):
        if not (
            isinstance(loader, Instance)
            and loader.type.fullname == fullnames.AWAITABLE_ATTRS
            and len(loader.args) == 1
        ):
            return ctx.default_attr_type
        loaded = _load(ctx.api, ctx.context, loader.args[0])
        if loaded is None:
            return ctx.default_attr_type
        loaded_types.append(loaded)
    return awaited.copy_modified(
        args=[awaited.args[0], awaited.args[1], make_simplified_union(loaded_types)]
    )


def _load(checker: TypeChecker, context: MemberExpr, instance_type: Type) -> Type | None:
    """The type of ``instance.<name>``, or None (after reporting any error) if it has none."""
    name = context.name
    info = _class_of(get_proper_type(instance_type))
    if info is None:
        return None
    _recheck_when_attribute_changes(checker, info, name)

    symbol = info.get(name)
    if symbol is None and not _has_dynamic_attributes(info):
        checker.fail(
            _unknown_attribute_message(info, name), context, code=errorcodes.AWAITABLE_ATTRS
        )
        return None

    declared = _declared_value_type(symbol.node) if symbol is not None else None
    if declared is not None:
        return declared
    # The attribute as `obj.name` reads it: descriptors applied, errors left to `obj.name` itself.
    with checker.msg.filter_errors(filter_deprecated=True):
        loaded = analyze_member_access(
            name,
            instance_type,
            context,
            is_lvalue=False,
            is_super=False,
            is_operator=False,
            original_type=instance_type,
            chk=checker,
            suppress_errors=True,
        )
    if symbol is not None and _is_method(symbol.node, get_proper_type(loaded)):
        checker.fail(
            f'"{name}" of "{info.name}" is a method, not an attribute awaitable_attrs can load',
            context,
            code=errorcodes.AWAITABLE_ATTRS,
        )
        return None
    return loaded


def _declared_value_type(node: SymbolNode | None) -> Type | None:
    """What an instance's attribute reads as, when its declaration says so plainly; else None.

    ``Mapped[T]`` (columns, relationships) and ``hybrid_property[T]`` read as ``T`` on an
    instance, a ``property`` as its getter's return type. Anything else, or anything with type
    variables, is left to a full member access, which resolves ``__get__``'s overloads at many
    times the cost.
    """
    if isinstance(node, Var):
        return _descriptor_value_type(node.type, fullnames.MAPPED)
    if isinstance(node, Decorator):
        if not node.var.is_property:
            return _descriptor_value_type(node.var.type, fullnames.HYBRID_PROPERTY)
        getter = get_proper_type(node.func.type)
        if isinstance(getter, CallableType) and not has_type_vars(getter.ret_type):
            return getter.ret_type
    return None


def _descriptor_value_type(declared: Type | None, descriptor_fullname: str) -> Type | None:
    """``T`` for ``declared`` spelled ``descriptor[T]`` without type variables."""
    descriptor = get_proper_type(declared)
    if (
        isinstance(descriptor, Instance)
        and descriptor.type.fullname == descriptor_fullname
        and len(descriptor.args) == 1
        and not has_type_vars(descriptor)
    ):
        return descriptor.args[0]
    return None


def _class_of(instance_type: ProperType) -> TypeInfo | None:
    """The class whose attributes are loaded: ``Self`` in a method stands for its bound."""
    if isinstance(instance_type, TypeVarType):
        instance_type = get_proper_type(instance_type.upper_bound)
    if isinstance(instance_type, Instance):
        return instance_type.type
    return None


def _has_dynamic_attributes(info: TypeInfo) -> bool:
    """Whether any name may be an attribute: a base of type Any, or a ``__getattr__``."""
    if info.fallback_to_any:
        return True
    for method_name in ("__getattr__", "__getattribute__"):
        method = info.get_method(method_name)
        if method is not None and method.info.fullname != "builtins.object":
            return True
    return False


def _unknown_attribute_message(info: TypeInfo, name: str) -> str:
    message = f'"{info.name}" has no attribute "{name}" for awaitable_attrs to load'
    candidates = {
        candidate
        for base in info.mro
        if base.fullname != "builtins.object"
        for candidate in base.names
        if not candidate.startswith("__")
    }
    matches = best_matches(name, candidates, n=3)
    if matches:
        message += f"; maybe {pretty_seq(matches, 'or')}?"
    return message


def _is_method(node: SymbolNode | None, loaded: ProperType) -> bool:
    """A function defined in the class (not a property, hybrid or other descriptor of a value)."""
    if isinstance(node, Decorator):
        is_property = node.var.is_property
    elif isinstance(node, (FuncDef, OverloadedFuncDef)):
        is_property = node.is_property
    else:
        return False
    return not is_property and isinstance(loaded, FunctionLike)


def _recheck_when_attribute_changes(checker: TypeChecker, info: TypeInfo, name: str) -> None:
    """Make dmypy recheck the current function when ``info.name`` changes (or appears).

    mypy's fine-grained dependencies of ``obj.awaitable_attrs.name`` name the loader's
    ``__getattr__``, not the model's attribute; the daemon would keep a stale type without this.
    """
    options = checker.options
    if not (options.fine_grained_incremental or options.cache_fine_grained):
        return
    if not checker.tscope.module:
        return
    trigger = make_trigger(f"{info.fullname}.{name}")
    checker.tree.plugin_deps.setdefault(trigger, set()).add(checker.tscope.current_target())


def sqlalchemy_loader_as_ours(ctx: AttributeContext) -> Type:
    """Type ``obj.awaitable_attrs`` of a model on SQLAlchemy's ``AsyncAttrs`` as sa_async's
    loader of ``obj``'s class, so that each name read through it is typed as above.

    SQLAlchemy declares the loader ``AsyncAttrs._AsyncAttrGetitem``, which does not say whose
    attributes it loads (every name is ``Awaitable[Any]``); sa_async's loader class, which
    subclasses it, does.
    """
    if not isinstance(ctx.api, TypeChecker):
        return ctx.default_attr_type
    module_name, _, class_name = fullnames.AWAITABLE_ATTRS.rpartition(".")
    module = ctx.api.modules.get(module_name)
    symbol = None if module is None else module.names.get(class_name)
    if symbol is None or not isinstance(symbol.node, TypeInfo):
        return ctx.default_attr_type  # sa_async is not part of this build
    return Instance(symbol.node, [ctx.type])
