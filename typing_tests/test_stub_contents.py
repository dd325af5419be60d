"""What the public stubs say, read from their source: every ``Any`` left in them has a reason,
every public name has a docstring (what IDEs show on hover), and the constructor that the stub
declares as ``__new__`` takes the parameters of the runtime's ``__init__``.

``python typing_tests/test_stub_contents.py`` prints the ``Any`` inventory, grouped by reason.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import sa_async.maker

STUBS = Path(__file__).resolve().parent.parent / "sa_async-stubs"
# The modules users import from; the ones whose names start with an underscore are private.
PUBLIC_MODULES = (
    "__init__",
    "attrs",
    "exc",
    "maker",
    "protocols",
    "registry",
    "scoping",
    "session",
    "transaction",
)
# Dunder methods users reach (``async with``, ``await``, ``in``, calls); others need no docstring.
DOCUMENTED_DUNDERS = {
    "__aenter__",
    "__aexit__",
    "__await__",
    "__call__",
    "__contains__",
    "__init__",
    "__iter__",
    "__len__",
    "__new__",
}

# Every Any that a public signature still holds, by reason. The patterns (fnmatch) match the
# labels of ``any_inventory()``: "module.Class.member(parameter)", "module.Class.member -> return"
# for return types (properties included), "module.Class.attribute" for attributes.
ANY_REASONS: dict[str, tuple[str, ...]] = {
    "Untyped statements (text(), other plain Executables): their column types are unknown, so "
    "the result's rows are Any, as in SQLAlchemy. Typed statements get their column types.": (
        "*.execute -> return",
        "*.scalar -> return",
        "*.scalars -> return",
        "*.stream -> return",
        "*.stream_scalars -> return",
    ),
    "Legacy Query API: any column expression, entity or table may be queried "
    "(SQLAlchemy's own open-ended argument), and a Query of those has untyped rows; "
    "query_property() takes a Query subclass of any entity (Query is invariant).": (
        "scoping.scoped_session.query(*entities)",
        "scoping.scoped_session.query -> return",
        "scoping.scoped_session.query_property(query_cls)",
        "protocols.SyncSessionProtocol.query(*entities)",
        "protocols.SyncSessionProtocol.query -> return",
    ),
    "Mapper is invariant in its mapped class: Mapper[Any] is the only spelling of the mapper "
    "of any class (a mapped class itself is type[object]).": (
        "*.bind_mapper(mapper)",
        "*.get_bind(mapper)",
        "*.get_async_bind(mapper)",
        "transaction.AsyncSessionTransaction.bound_connection(bindkey)",
        "*.bulk_insert_mappings(mapper)",
        "*.bulk_update_mappings(mapper)",
    ),
    "The keys of Session.binds as SQLAlchemy declares them (type[Any] | Mapper[Any] | ...): "
    "Mapping is invariant in its keys, so another spelling would make Session, its proxies and "
    "the protocols disagree; a dict literal passed as binds= takes the declared type.": (
        "*.binds -> return",
        "scoping.scoped_session.binds(attr)",
        "session.AsyncSession.__init__(binds)",
    ),
    "Execution option values are of many types (bools, ints, strings, callables): Session "
    "declares them immutabledict[str, Any], and the setter must take exactly that class, "
    "which Session's own execution relies on (.union()).": (
        "*.execution_options -> return",
        "*.execution_options(attr)",
    ),
    "The user's own dictionary, shared with Session.info, which SQLAlchemy declares "
    "dict[Any, Any]; dict is invariant, so only Any keys and values accept every user dict.": (
        "*.info -> return",
        "maker.async_sessionmaker.__new__(info)",
    ),
    "The keyword arguments of every session, values of any type: SQLAlchemy's sessionmakers "
    "declare the same dict[str, Any], and code reads entries as what they are "
    "(maker.kw['bind'] as an engine); object would make that valid code an error.": (
        "maker.async_sessionmaker.kw",
    ),
    "What SQLAlchemy's class, which sa_async's subclasses, accepts: its private execute "
    "parameters and the **kw of scalar(s), stream(_scalars), connection and get_bind (passed on "
    "to the sync Session); an override must accept at least as much, so they are Any as there.": (
        "*.execute(_add_event)",
        "*.execute(_parent_execute_state)",
        "session.AsyncSession.*(**kw)",
        "scoping.async_scoped_session.*(**kw)",
        "protocols.AsyncSessionProtocol.*(**kw)",
        "scoping.scoped_session.scalar(**kw)",
        "scoping.scoped_session.scalars(**kw)",
        "scoping.scoped_session.get_bind(**kw)",
    ),
    "A Row of any shape: only the gradual *tuple[Any, ...] accepts rows of every column count.": (
        "*.identity_key(row)",
    ),
    "awaitable_attrs without the plugin: the attribute name is any string, so the loaded value "
    "is Any; the mypy plugin types it as the mapped attribute (and rejects unknown names).": (
        "attrs._AwaitableAttrs.__getattr__ -> return",
    ),
    "Part of the open-ended columns argument of the legacy query(): SQLAlchemy's own protocol "
    "for objects with __clause_element__() is generic, and any element type is accepted.": (
        "*._HasClauseElement.__clause_element__ -> return",
    ),
    "The event-loop side of a coroutine (what it yields to the loop and is sent back) is "
    "untyped, as it is for every `async def`.": (
        "transaction.AsyncSessionTransaction.__await__ -> return",
    ),
    "SyncSessionProtocol must be satisfied by SQLAlchemy's Session as it is declared: "
    "bind_arguments as dict[str, Any] (dict is invariant), get_bind(**kw: Any) beside keyword "
    "parameters of its own.": (
        "protocols.SyncSessionProtocol.*(bind_arguments)",
        "protocols.SyncSessionProtocol.get_bind(**kw)",
    ),
    "SyncSessionProtocol, typed statement with a list of parameter sets: pyright does not "
    "match two TypeVarTuple overloads of Session.execute to one protocol, so this overload "
    "takes and returns untyped rows (Session and scoped_session still type them).": (
        "protocols.SyncSessionProtocol.execute(statement)",
    ),
    "Legacy bulk API: Session declares the mappings as dict[str, Any] and copies them as "
    "dicts; dict is invariant, so only this spelling accepts every dict of column values.": (
        "*.bulk_insert_mappings(mappings)",
        "*.bulk_update_mappings(mappings)",
    ),
}


def _stub(module: str) -> ast.Module:
    return ast.parse((STUBS / f"{module}.pyi").read_text())


def _aliases(tree: ast.Module) -> dict[str, ast.expr]:
    """The module's type aliases (``_Name: TypeAlias = ...``), to look inside them."""
    return {
        node.target.id: node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.value is not None
    }


def _mentions_any(annotation: ast.expr, aliases: dict[str, ast.expr], seen: frozenset[str]) -> bool:
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            if node.id == "Any":
                return True
            if node.id in aliases and node.id not in seen:
                if _mentions_any(aliases[node.id], aliases, seen | {node.id}):
                    return True
        elif isinstance(node, ast.Attribute) and node.attr == "Any":
            return True
    return False


def _is_public(name: str) -> bool:
    return not name.startswith("_") or name in DOCUMENTED_DUNDERS


def _is_reachable(name: str) -> bool:
    """Public names and dunders: what a user's code reaches, directly or through a public name."""
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _signature_members(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    """(qualified name, node) of the functions and class members a user's code reaches.

    Private classes count: a public member may return one (``awaitable_attrs``).
    """
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_reachable(node.name):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if _is_reachable(member.name):
                        yield f"{node.name}.{member.name}", member
                elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                    if _is_reachable(member.target.id):
                        yield f"{node.name}.{member.target.id}", member


def any_inventory() -> set[str]:
    """Labels of every place where a public stub signature or attribute holds an Any."""
    found: set[str] = set()
    for module in PUBLIC_MODULES:
        tree = _stub(module)
        aliases = _aliases(tree)

        def mentions_any(
            annotation: ast.expr | None, aliases: dict[str, ast.expr] = aliases
        ) -> bool:
            return annotation is not None and _mentions_any(annotation, aliases, frozenset())

        for name, node in _signature_members(tree):
            label = f"{module}.{name}"
            if isinstance(node, ast.AnnAssign):
                if mentions_any(node.annotation):
                    found.add(label)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args
                for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                    if mentions_any(argument.annotation):
                        found.add(f"{label}({argument.arg})")
                if arguments.vararg and mentions_any(arguments.vararg.annotation):
                    found.add(f"{label}(*{arguments.vararg.arg})")
                if arguments.kwarg and mentions_any(arguments.kwarg.annotation):
                    found.add(f"{label}(**{arguments.kwarg.arg})")
                if mentions_any(node.returns):
                    found.add(f"{label} -> return")
    return found


def _reason_of(label: str) -> str | None:
    for reason, patterns in ANY_REASONS.items():
        if any(fnmatchcase(label, pattern) for pattern in patterns):
            return reason
    return None


def test_every_any_in_the_public_stubs_has_a_reason() -> None:
    inventory = any_inventory()
    unexplained = sorted(label for label in inventory if _reason_of(label) is None)
    assert not unexplained, f"Any without a reason in ANY_REASONS: {unexplained}"
    stale = [
        pattern
        for patterns in ANY_REASONS.values()
        for pattern in patterns
        if not any(fnmatchcase(label, pattern) for label in inventory)
    ]
    assert not stale, f"ANY_REASONS entries that match no Any any more: {stale}"


def _has_docstring(node: ast.stmt, following: ast.stmt | None) -> bool:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return ast.get_docstring(node) is not None
    # An attribute's docstring is the string right after it (PEP 257).
    return (
        isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
    )


def _undocumented(module: str) -> list[str]:
    tree = _stub(module)
    missing: list[str] = []
    documented: set[str] = set()
    overloaded: set[str] = set()
    containers: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    containers += [
        (f"{node.name}.", node.body)
        for node in tree.body
        if isinstance(node, ast.ClassDef) and _is_public(node.name)
    ]
    for prefix, body in containers:
        for index, node in enumerate(body):
            following = body[index + 1] if index + 1 < len(body) else None
            if isinstance(node, ast.ClassDef):
                name = node.name
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorators = {ast.unparse(decorator) for decorator in node.decorator_list}
                if any(decorator.endswith((".setter", ".deleter")) for decorator in decorators):
                    continue  # the property's getter carries its documentation
                name = node.name
                if "overload" in decorators:
                    # One docstring per overloaded name: on the overload IDEs show first.
                    overloaded.add(prefix + name)
                    if _has_docstring(node, following):
                        documented.add(prefix + name)
                    continue
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if not prefix:
                    continue  # module-level names: type aliases and __version__
                name = node.target.id
            else:
                continue
            if _is_public(name) and not _has_docstring(node, following):
                missing.append(f"{module}.{prefix}{name}")
    missing += [
        f"{module}.{name}"
        for name in sorted(overloaded - documented)
        if _is_public(name.rpartition(".")[2])
    ]
    return missing


def test_every_public_name_of_the_stubs_has_a_docstring() -> None:
    missing = [name for module in PUBLIC_MODULES for name in _undocumented(module)]
    assert not missing, f"public names without a docstring: {missing}"


def test_the_sessionmaker_constructor_takes_the_runtime_parameters() -> None:
    # The stub's __new__ overloads stand for the runtime's __init__ (stubtest allowlists it).
    tree = _stub("maker")
    (maker,) = (
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "async_sessionmaker"
    )
    stub_parameters: set[str] = set()
    for node in maker.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__new__":
            arguments = node.args
            names = [argument.arg for argument in (*arguments.args, *arguments.kwonlyargs)]
            stub_parameters.update(names[1:])  # without cls
            if arguments.kwarg:
                stub_parameters.add(f"**{arguments.kwarg.arg}")
    runtime = inspect.signature(sa_async.maker.async_sessionmaker.__init__).parameters
    runtime_parameters = {
        f"**{name}" if parameter.kind is parameter.VAR_KEYWORD else name
        for name, parameter in runtime.items()
        if name != "self"
    }
    # sync_session_class travels in **kw at run time; the stub names it to infer the type.
    assert stub_parameters - {"sync_session_class"} == runtime_parameters


if __name__ == "__main__":
    inventory = any_inventory()
    for reason, patterns in ANY_REASONS.items():
        print(f"- {reason}")
        for label in sorted(inventory):
            if any(fnmatchcase(label, pattern) for pattern in patterns):
                print(f"    {label}")
