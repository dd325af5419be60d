"""The session type of sessionmakers, sessions and registries where the stubs' overloads fall short.

Three gaps, each filled here:

- ``async_sessionmaker(engine, class_=AsyncSession)``: mypy solves ``type[_AS_co]`` against the
  bare generic class as ``AsyncSession[Any]``, ignoring the type parameter's default. The
  function hook builds ``AsyncSession[Session]`` (or ``AsyncSession[X]`` with
  ``sync_session_class=X``), as pyright does.
- ``**{"class_": X, ...}``, ``**dict(class_=X, ...)`` and ``**options`` (a variable assigned one
  of those): mypy checks the dictionary's value type against every keyword parameter, so no
  overload matches. The signature hook checks the call as if each key were written as a keyword
  argument and, when that call is valid, gives its result type.
- ``class MySession(AsyncSession): sync_session_class = Routing``: the base class hook makes the
  class an ``AsyncSession[Routing]``, so ``sync_session`` and ``run_sync`` see ``Routing``, and so
  do the sessionmakers and registries that build it.

The signature hook of ``async_sessionmaker(...)`` and ``AsyncSession(...)`` also lets a sync
``Engine`` or ``Connection`` through as a bind when it is the call's one mistake, for
``misuse.py`` to report it alone.
"""

from __future__ import annotations

from mypy.checker import TypeChecker
from mypy.errors import ErrorInfo
from mypy.expandtype import expand_type
from mypy.maptype import map_instance_to_supertype
from mypy.nodes import (
    ARG_NAMED,
    ARG_STAR,
    ARG_STAR2,
    ArgKind,
    AssignmentStmt,
    CallExpr,
    DictExpr,
    Expression,
    FuncItem,
    MypyFile,
    NameExpr,
    PlaceholderNode,
    RefExpr,
    StrExpr,
    TypeInfo,
    Var,
)
from mypy.plugin import ClassDefContext, FunctionContext, FunctionSigContext
from mypy.traverser import NameAndMemberCollector
from mypy.types import (
    AnyType,
    CallableType,
    FunctionLike,
    Instance,
    Type,
    TypeOfAny,
    TypeType,
    TypeVarId,
    TypeVarType,
    get_proper_type,
)
from mypy.typevars import fill_typevars

from .. import fullnames
from ..helpers import (
    built_instance,
    defaulted_instance,
    has_unpacked_arguments,
    named_argument,
)
from . import misuse

# -- async_sessionmaker(...) and AsyncSession(...)


def async_sessionmaker_type(ctx: FunctionContext) -> Type:
    """Report a sync bind, or a wrong ``class_`` or ``sync_session_class``; give the bare class
    its defaults."""
    misuse.check_sync_binds(ctx, "async_sessionmaker()")
    misuse.check_async_sessionmaker_classes(ctx)
    default = get_proper_type(ctx.default_return_type)
    if (
        has_unpacked_arguments(ctx)
        or not isinstance(default, Instance)
        or default.type.fullname != fullnames.ASYNC_SESSIONMAKER
        or len(default.args) != 1
    ):
        return ctx.default_return_type
    class_argument = named_argument(ctx, "class_")
    if class_argument is None:
        return ctx.default_return_type
    session = built_instance(class_argument[0])
    if session is None or not session.type.has_base(fullnames.ASYNC_SESSION):
        return ctx.default_return_type
    sync_argument = named_argument(ctx, "sync_session_class")
    if sync_argument is not None:
        sync_session = built_instance(sync_argument[0])
        if sync_session is None or not sync_session.type.has_base(fullnames.SESSION):
            return ctx.default_return_type
        session = with_sync_session(session, sync_session)
    return default.copy_modified(args=[session])


def with_sync_session(session: Instance, sync_session: Instance) -> Instance:
    """``session``'s class, parametrised so that it proxies ``sync_session`` if it is generic in it.

    ``AsyncSession`` gives ``AsyncSession[Routing]``; a class that fixed its sync session class
    (``class Mine(AsyncSession[Other])``) stays what it is.
    """
    info = session.type
    own_type_vars = fill_typevars(info)
    if not isinstance(own_type_vars, Instance):
        return session
    base = next((base for base in info.mro if base.fullname == fullnames.ASYNC_SESSION), None)
    if base is None:
        return session
    as_base = map_instance_to_supertype(own_type_vars, base)
    if len(as_base.args) != 1:
        return session
    parameter = get_proper_type(as_base.args[0])
    if not isinstance(parameter, TypeVarType):
        return session
    environment: dict[TypeVarId, Type] = {
        type_var.id: (sync_session if type_var.id == parameter.id else type_var.default)
        for type_var in info.defn.type_vars
    }
    expanded = get_proper_type(expand_type(own_type_vars, environment))
    return expanded if isinstance(expanded, Instance) else session


def async_session_type(ctx: FunctionContext) -> Type:
    """Report a sync bind, or a ``sync_session_class`` that is an AsyncSession class."""
    misuse.check_sync_binds(ctx, "AsyncSession()")
    misuse.check_sync_session_class(ctx, "AsyncSession()", "{name}(...)")
    return ctx.default_return_type


# -- **{"class_": X}, **dict(class_=X) and **options


def async_session_signature(ctx: FunctionSigContext) -> FunctionLike:
    """The signature of ``async_sessionmaker(...)`` and ``AsyncSession(...)``: keyword
    dictionaries read as keywords, and a sync bind accepted if it is the call's one mistake.

    The function hook reports the sync bind, and the call keeps the type it has with an async
    one. A call with another mistake too is checked against the stubs' signature, as before.
    """
    call = ctx.context
    api = ctx.api
    if not isinstance(call, CallExpr) or not isinstance(api, TypeChecker):
        return ctx.default_signature
    arguments = keywords_written_out(call, api) or (call.args, call.arg_kinds, call.arg_names)
    accepting = misuse.sync_binds_accepted(ctx.default_signature, arguments, api)
    if accepting is not ctx.default_signature:
        _, errors = checked_call(accepting, arguments, call, api)
        if not misuse.only_sync_bind_errors(errors):
            accepting = ctx.default_signature
    return keyword_dicts_as_keywords(ctx._replace(default_signature=accepting))


def keyword_dicts_as_keywords(ctx: FunctionSigContext) -> FunctionLike:
    """Check ``f(**{"k": v})`` as ``f(k=v)``; when that is valid, accept the call with its result.

    Called once for each overload of the callee: an overload that accepts the call written out
    becomes one that accepts anything and returns that call's type, so mypy picks the first
    overload that the written-out call matches. An overload that the written-out call does not
    match stays as it is, so that mypy reports the call as the user wrote it.
    """
    call = ctx.context
    api = ctx.api
    if not isinstance(call, CallExpr) or not isinstance(api, TypeChecker):
        return ctx.default_signature
    written_out = keywords_written_out(call, api)
    if written_out is None:
        return ctx.default_signature
    result_type, errors = checked_call(ctx.default_signature, written_out, call, api)
    if not misuse.only_sync_bind_errors(errors):
        return ctx.default_signature
    # A sync bind (accepted by async_session_signature) is the one mistake: the function hook
    # reported it in the call written out, and no longer sees it in the call accepted here.
    # Each overload that accepts the call reports it again, and mypy shows one of the copies.
    api.msg.add_errors(errors)
    anything = AnyType(TypeOfAny.implementation_artifact)
    return CallableType(
        [anything, anything],
        [ARG_STAR, ARG_STAR2],
        [None, None],
        result_type,
        ctx.default_signature.fallback,
        name=ctx.default_signature.name,
        definition=ctx.default_signature.definition,
    )


def checked_call(
    signature: CallableType,
    arguments: tuple[list[Expression], list[ArgKind], list[str | None]],
    call: CallExpr,
    api: TypeChecker,
) -> tuple[Type, list[ErrorInfo]]:
    """The type of ``call`` made with ``arguments`` against ``signature``, and the errors it
    has, held back."""
    args, kinds, names = arguments
    callee_name = call.callee.fullname if isinstance(call.callee, RefExpr) else None
    with (
        api.msg.filter_errors(
            filter_deprecated=True, filter_revealed_type=True, save_filtered_errors=True
        ) as watcher,
        api.local_type_map,
    ):
        result_type, _ = api.expr_checker.check_call(
            signature, args, kinds, call, names, callable_name=callee_name
        )
    return result_type, watcher.filtered_errors()


def keywords_written_out(
    call: CallExpr, api: TypeChecker
) -> tuple[list[Expression], list[ArgKind], list[str | None]] | None:
    """The call's arguments with each ``**`` dictionary spelled as keyword arguments.

    None when the call unpacks no dictionary the plugin can read: a ``{...}`` display whose keys
    are all string literals, a ``dict(key=value, ...)`` call, or a variable that is assigned one
    of those once, in its module or function, and used nowhere but in ``**`` unpacking.
    """
    args: list[Expression] = []
    kinds: list[ArgKind] = []
    names: list[str | None] = []
    changed = False
    for arg, kind, name in zip(call.args, call.arg_kinds, call.arg_names, strict=True):
        items = dictionary_items(arg, api) if kind == ARG_STAR2 else None
        if items is None:
            args.append(arg)
            kinds.append(kind)
            names.append(name)
            continue
        changed = True
        for key, value in items:
            args.append(value)
            kinds.append(ARG_NAMED)
            names.append(key)
    return (args, kinds, names) if changed else None


def dictionary_items(expr: Expression, api: TypeChecker) -> list[tuple[str, Expression]] | None:
    if isinstance(expr, NameExpr) and isinstance(expr.node, Var):
        definition = sole_definition(expr, expr.node, api)
        if definition is None or isinstance(definition, NameExpr):
            return None
        return dictionary_items(definition, api)
    if isinstance(expr, DictExpr):
        items: list[tuple[str, Expression]] = []
        for key, value in expr.items:
            if not isinstance(key, StrExpr):
                return None
            items.append((key.value, value))
        return items
    if (
        isinstance(expr, CallExpr)
        and isinstance(expr.callee, RefExpr)
        and expr.callee.fullname == "builtins.dict"
        and all(kind == ARG_NAMED for kind in expr.arg_kinds)
    ):
        pairs = zip(expr.arg_names, expr.args, strict=True)
        return [(name, value) for name, value in pairs if name is not None]
    return None


def sole_definition(unpacked: NameExpr, variable: Var, api: TypeChecker) -> Expression | None:
    """The value of ``variable`` if it is assigned once, in its scope's own statements, and used
    nowhere else than in ``unpacked``.

    It must be a variable of the call's own scope, module or function. Any other use
    (``options["class_"] = ...``, ``options.update(...)``, passing it on, a second call) could
    change the dictionary or be changed by it, so it gives None.
    """
    # The scope of the call, so that the definition is checked again whenever the call is (a
    # module's dictionary unpacked in one of its functions could change unseen under dmypy).
    function = api.scope.current_function()
    scope: MypyFile | FuncItem = api.tree if function is None else function
    statements = api.tree.defs if function is None else function.body.body
    definitions = [
        statement
        for statement in statements
        if isinstance(statement, AssignmentStmt)
        and len(statement.lvalues) == 1
        and isinstance(statement.lvalues[0], NameExpr)
        and statement.lvalues[0].node is variable
    ]
    if len(definitions) != 1:
        return None
    names = NameAndMemberCollector()
    scope.accept(names)
    # A set: the traversal may meet one expression twice (reveal_type(...) holds its argument
    # both as written and as analysed).
    uses = {id(name) for name in names.name_exprs if name.node is variable}
    if uses != {id(definitions[0].lvalues[0]), id(unpacked)}:
        return None
    return definitions[0].rvalue


# -- class MySession(AsyncSession): sync_session_class = Routing


def adopt_sync_session_class(ctx: ClassDefContext) -> None:
    """Make a subclass of bare ``AsyncSession`` that sets ``sync_session_class = X`` one of X.

    Only where the base is written without type arguments: ``AsyncSession[Other]`` is the
    user's own choice, and mypy checks the assignment against it.
    """
    if not isinstance(ctx.reason, RefExpr):
        return
    sync_class = assigned_sync_session_class(ctx)
    if sync_class is None:
        return
    info = ctx.cls.info
    for index, base in enumerate(info.bases):
        if base.type.fullname == fullnames.ASYNC_SESSION and len(base.args) == 1:
            sync_session = defaulted_instance(sync_class)
            if sync_session is None:
                return
            info.bases[index] = base.copy_modified(args=[sync_session])
            return


def assigned_sync_session_class(ctx: ClassDefContext) -> TypeInfo | None:
    """The Session subclass that the class body assigns to ``sync_session_class``, if any."""
    for statement in ctx.cls.defs.body:
        if not (
            isinstance(statement, AssignmentStmt)
            and len(statement.lvalues) == 1
            and isinstance(statement.lvalues[0], NameExpr)
            and statement.lvalues[0].name == "sync_session_class"
            and isinstance(statement.rvalue, RefExpr)
        ):
            continue
        if statement.unanalyzed_type is not None:
            # A declared type wins over the value (``sync_session_class: type[Session] =
            # Routing`` keeps the session typed as of Session, as its author chose).
            declared = get_proper_type(statement.type)
            if isinstance(declared, TypeType):
                item = get_proper_type(declared.item)
                if isinstance(item, Instance) and item.type.has_base(fullnames.SESSION):
                    return item.type
            return None
        node = statement.rvalue.node
        if isinstance(node, PlaceholderNode) and not ctx.api.final_iteration:
            ctx.api.defer()
            return None
        if isinstance(node, TypeInfo) and node.has_base(fullnames.SESSION):
            return node
        return None
    return None
