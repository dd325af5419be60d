"""The session members that the stubs declare more than once say the same thing in each place.

Why they are declared more than once: the classes are not related (a registry is no
``AsyncSession``, a protocol cannot inherit a concrete class's members), so no stub class can
take its members from another; stubtest wants each runtime member, the registries' proxies
built from tuples of names included, declared on its own class; and a protocol matches only the
members it spells out. So ``AsyncSession``, ``async_scoped_session`` and ``AsyncSessionProtocol``
(and, for the sync ``Session``, ``scoped_session`` and ``SyncSessionProtocol``) each write every
member out: signature, overloads and docstring. ``tools/generate_stubs.py`` writes the copies
from ``AsyncSession`` and ``scoped_session`` (``test_generated_stubs.py`` runs its ``--check``);
this test reads what it wrote in another way, so that a copy that drifts (an overload added to
``AsyncSession.execute`` alone, a parameter renamed or a default changed in one copy, a
docstring corrected in one place) fails here too, by a rule of its own.

What is compared, read from the stub sources with ``ast`` (no type checker runs):

- ``async_scoped_session`` with ``AsyncSession``, and ``AsyncSessionProtocol`` with
  ``AsyncSession``: each member's form (method, coroutine, property and whether it has a setter,
  classmethod, deprecation), its overloads in order, each parameter's name, kind, default and
  annotation, and the return annotation. Normalised first: the annotation of ``self`` (a
  registry reaches the sync session class through it: ``self: async_scoped_session[
  AsyncSession[_S2]]`` makes ``_S2`` stand for ``AsyncSession``'s ``_S_co``), the class name in a
  deprecation message, and an attribute of ``AsyncSession`` (``sync_session``), which the
  others declare as a read-only property.
- ``SyncSessionProtocol`` with ``scoped_session``, the two sync copies. SQLAlchemy's own
  ``Session`` is not the reference: its annotations use private aliases of its own and are
  looser than ours (a plain ``Result`` for DML, ``Any`` for parameters), so a comparison would
  be a list of differences; that the protocol accepts ``Session`` as declared is what
  ``test_protocols.yml`` and ``protocols_assert_types.py`` check with the type checkers. What
  matters between the two copies is that a call written against the protocol means the same on
  ``scoped_session``: forms, overload counts, parameter names, kinds and defaults always agree;
  annotations and docstrings agree except on the members listed in ``SYNC_PROTOCOL_LOOSER``,
  where the protocol takes what ``Session`` declares.
- The members one class leaves out are listed with their reason; a listed member that is not
  left out any more fails, as does an unlisted one that is missing.
- The module-level names these annotations use (type aliases, type variables, imports) are
  defined alike in every stub that defines them, so that comparing annotations as text is
  comparing types.

Docstrings: the protocol repeats ``AsyncSession``'s word for word (IDEs show the same help for
both). A member declared in another form (``AsyncSession``'s attribute ``sync_session``, a
property in the registry and the protocol) is documented in the copy's own words. The
registries' proxies are written for the registry ("... the current session ..."), so they
cannot be compared word for word: a proxy's docstring is ``AsyncSession``'s, or its summary line
alone, or a rewrite whose summary line names the current session. ``SyncSessionProtocol``'s
docstrings are ``scoped_session``'s with "the current session" read as "the session".
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "sa_async-stubs"


def _generator() -> ModuleType:
    """``tools/generate_stubs.py``, which writes the copies and holds their tables."""
    spec = importlib.util.spec_from_file_location(
        "generate_stubs", ROOT / "tools" / "generate_stubs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generate_stubs = _generator()

# Members of the registries that are their own, not a session's.
REGISTRY_OWN = frozenset(
    {
        "__new__",
        "__init__",
        "__call__",
        "configure",
        "remove",
        "query_property",
        "registry",
        "session_factory",
    }
)
# AsyncSession members that async_scoped_session does not proxy, and why.
NOT_PROXIED_BY_THE_ASYNC_REGISTRY = {
    "sync_session_class": "configuration of a session, read from session_factory.kw",
    "__aenter__": "a registry is no context manager; 'async with Session() as session' is",
    "__aexit__": "a registry is no context manager; 'async with Session() as session' is",
}
# AsyncSession members that AsyncSessionProtocol leaves out, and why.
LEFT_OUT_OF_THE_ASYNC_PROTOCOL = {
    "__init__": "a protocol describes instances; construction is the implementation's",
    "sync_session_class": "not on async_scoped_session, which the protocol must also describe",
    "__aenter__": "not on async_scoped_session, which the protocol must also describe",
    "__aexit__": "not on async_scoped_session, which the protocol must also describe",
    "close_all": "a deprecated classmethod, called on the class",
}
# SyncSessionProtocol's exceptions are the generator's tables, each entry with its reason: the
# scoped_session members it leaves out, those it types looser (because the protocol must accept
# Session as SQLAlchemy declares it), those it declares without **kw, and the aliases it spells
# as Session declares them (dict is invariant), where scoped_session accepts any Mapping.
LEFT_OUT_OF_THE_SYNC_PROTOCOL = dict(generate_stubs.SYNC_PROTOCOL_LEFT_OUT)
SYNC_PROTOCOL_LOOSER = {
    name: loose.why for name, loose in generate_stubs.SYNC_PROTOCOL_LOOSER.items()
}
SYNC_PROTOCOL_WITHOUT_KW = dict(generate_stubs.SYNC_PROTOCOL_WITHOUT_KW)
SYNC_PROTOCOL_ALIASES = {
    ours: theirs for theirs, ours in generate_stubs.SYNC_PROTOCOL_ALIASES.items()
}


Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Member:
    """One member of a stub class: its overloads (a property: its getter), or an attribute."""

    file: str
    class_name: str
    name: str
    form: str  # "method", "coroutine", "classmethod", "property", "settable property", "attribute"
    functions: tuple[Function, ...]
    annotation: ast.expr | None  # an attribute's
    docstring: str | None
    deprecation: str | None

    def __str__(self) -> str:
        return f"{self.file} {self.class_name}.{self.name}"


@dataclass(frozen=True)
class Parameter:
    kind: str  # "positional-only", "positional", "*", "keyword-only", "**"
    name: str
    annotation: str
    default: str | None

    def __str__(self) -> str:
        default = "" if self.default is None else f" = {self.default}"
        return f"{self.kind} {self.name}: {self.annotation}{default}"


@dataclass(frozen=True)
class Copies:
    """A class that declares members of another again, and the rules it follows in doing so."""

    reference: tuple[str, str]  # (stub file, class)
    copy: tuple[str, str]
    left_out: dict[str, str]  # reference members the copy does not declare, and why
    docstring_rule: Callable[[str, str], bool]  # (reference's, copy's) -> follows the rule
    read_only: bool = False  # a protocol: the copy's properties have no setter
    aliases: dict[str, str] = field(default_factory=dict)  # copy's spelling -> reference's
    looser: dict[str, str] = field(default_factory=dict)  # members typed looser, and why
    # members whose copy leaves out the reference's **kw, and why
    without_kw: dict[str, str] = field(default_factory=dict)


# The docstring rules.


def _summary(docstring: str) -> str:
    return docstring.split("\n\n")[0]


def word_for_word(reference: str, copy: str) -> bool:
    """the same docstring"""
    return copy == reference


def written_for_the_registry(reference: str, proxy: str) -> bool:
    """the session's docstring, its summary line alone, or a summary naming the current session"""
    return proxy in (reference, _summary(reference)) or "current session" in _summary(proxy)


def the_current_session_read_as_the_session(scoped: str, protocol: str) -> bool:
    """scoped_session's docstring with "the current session" read as "the session\""""
    return protocol == scoped.replace("the current session", "the session").replace(
        "The current session", "The session"
    )


ASYNC_REGISTRY = Copies(
    reference=("session.pyi", "AsyncSession"),
    copy=("scoping.pyi", "async_scoped_session"),
    left_out=NOT_PROXIED_BY_THE_ASYNC_REGISTRY,
    docstring_rule=written_for_the_registry,
)
ASYNC_PROTOCOL = Copies(
    reference=("session.pyi", "AsyncSession"),
    copy=("protocols.pyi", "AsyncSessionProtocol"),
    left_out=LEFT_OUT_OF_THE_ASYNC_PROTOCOL,
    docstring_rule=word_for_word,
    read_only=True,
)
SYNC_PROTOCOL = Copies(
    reference=("scoping.pyi", "scoped_session"),
    copy=("protocols.pyi", "SyncSessionProtocol"),
    left_out=LEFT_OUT_OF_THE_SYNC_PROTOCOL,
    docstring_rule=the_current_session_read_as_the_session,
    read_only=True,
    aliases=SYNC_PROTOCOL_ALIASES,
    looser=SYNC_PROTOCOL_LOOSER,
    without_kw=SYNC_PROTOCOL_WITHOUT_KW,
)


def _agree(differences: list[str]) -> None:
    assert not differences, "the stub copies disagree:\n" + "\n".join(differences)


def test_async_scoped_session_proxies_every_async_session_member_as_it_is_declared() -> None:
    _agree(_differences(ASYNC_REGISTRY, without=REGISTRY_OWN))


def test_async_session_protocol_declares_the_members_of_async_session_as_it_does() -> None:
    _agree(_differences(ASYNC_PROTOCOL))


def test_sync_session_protocol_declares_the_members_of_scoped_session_as_it_does() -> None:
    _agree(_differences(SYNC_PROTOCOL, without=REGISTRY_OWN))


def test_the_names_the_copies_use_are_defined_alike_in_each_stub() -> None:
    files = ("session.pyi", "scoping.pyi", "protocols.pyi")
    definitions = {file: _definitions(file) for file in files}
    differences = [
        f"{name}: {file} defines it as {definitions[file][name]!r}, "
        f"{other} as {definitions[other][name]!r}"
        for index, file in enumerate(files)
        for other in files[index + 1 :]
        for name in sorted(set(definitions[file]) & set(definitions[other]))
        if definitions[file][name] != definitions[other][name]
    ]
    _agree(differences)


# Reading and comparing the stubs.


@cache
def _tree(file: str) -> ast.Module:
    return ast.parse((STUBS / file).read_text())


def _class(file: str, name: str) -> ast.ClassDef:
    (found,) = (
        node for node in _tree(file).body if isinstance(node, ast.ClassDef) and node.name == name
    )
    return found


def _class_parameter(file: str, name: str) -> str:
    """The type variable of ``Generic[...]`` (or ``Protocol[...]``) among the class's bases."""
    for base in _class(file, name).bases:
        if isinstance(base, ast.Subscript) and ast.unparse(base.value) in ("Generic", "Protocol"):
            return ast.unparse(base.slice)
    raise AssertionError(f"{file} {name} is not generic")


def _string_after(body: list[ast.stmt], index: int) -> str | None:
    """An attribute's docstring: the string right after it (PEP 257)."""
    following = body[index + 1] if index + 1 < len(body) else None
    if (
        isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
    ):
        return following.value.value
    return None


def _deprecation(function: Function) -> str | None:
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "deprecated":
            message = decorator.args[0]
            assert isinstance(message, ast.Constant) and isinstance(message.value, str)
            return message.value
    return None


def _members(file: str, class_name: str) -> dict[str, Member]:
    """The class's members by name: overloads grouped, a setter folded into the property's form."""
    body = _class(file, class_name).body
    members: dict[str, Member] = {}
    overloads: dict[str, list[Function]] = {}
    settable: set[str] = set()
    for index, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            docstring = _string_after(body, index)
            members[name] = Member(
                file, class_name, name, "attribute", (), node.annotation, docstring, None
            )
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = [ast.unparse(decorator) for decorator in node.decorator_list]
            if any(decorator.endswith(".setter") for decorator in decorators):
                settable.add(node.name)
            else:
                overloads.setdefault(node.name, []).append(node)
    for name, functions in overloads.items():
        first = functions[0]
        decorators = [ast.unparse(decorator) for decorator in first.decorator_list]
        if "property" in decorators:
            form = "settable property" if name in settable else "property"
        elif "classmethod" in decorators:
            form = "classmethod"
        else:
            form = "coroutine" if isinstance(first, ast.AsyncFunctionDef) else "method"
        docstring = next(filter(None, map(ast.get_docstring, functions)), None)
        members[name] = Member(
            file, class_name, name, form, tuple(functions), None, docstring, _deprecation(first)
        )
    return members


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.names.get(node.id, node.id), node.ctx)


def _text(annotation: ast.expr | None, names: dict[str, str]) -> str:
    """The annotation as source text, with ``names`` renamed."""
    if annotation is None:
        return "(no annotation)"
    renamed = _Rename(names).visit(ast.parse(ast.unparse(annotation), mode="eval"))
    return ast.unparse(renamed)


def _self_renames(function: Function, session_type: str) -> dict[str, str]:
    """Type variables that ``self``'s annotation binds stand for the reference's class parameter.

    ``self: async_scoped_session[AsyncSession[_S2]]`` binds ``_S2`` to the sync session class,
    which ``AsyncSession`` calls ``_S_co``.
    """
    arguments = function.args.posonlyargs + function.args.args
    if not arguments or arguments[0].annotation is None:
        return {}
    return {
        node.id: session_type
        for node in ast.walk(arguments[0].annotation)
        if isinstance(node, ast.Name) and node.id.startswith("_")
    }


def _parameters(function: Function, names: dict[str, str]) -> list[Parameter]:
    """The parameters after ``self`` (or ``cls``, which ``_self_renames`` reads), in order."""
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    described: list[tuple[str, ast.arg, ast.expr | None]] = [
        ("positional-only" if index < len(arguments.posonlyargs) else "positional", arg, default)
        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    if arguments.vararg:
        described.append(("*", arguments.vararg, None))
    described += [
        ("keyword-only", arg, default)
        for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    ]
    if arguments.kwarg:
        described.append(("**", arguments.kwarg, None))
    return [
        Parameter(
            kind,
            arg.arg,
            _text(arg.annotation, names),
            None if default is None else ast.unparse(default),
        )
        for kind, arg, default in described[1:]
    ]


def _form_differences(reference: Member, copy: Member, read_only: bool) -> list[str]:
    """Method, coroutine, classmethod or property (settable or not), and the deprecation."""
    expected = reference.form
    if expected == "attribute":
        expected = "property"  # an attribute of the session is read through the copy
    elif expected == "settable property" and read_only:
        expected = "property"
    found = []
    if copy.form != expected:
        found.append(f"{copy}: a {copy.form}, where {reference} is a {reference.form}")
    deprecation = reference.deprecation and reference.deprecation.replace(
        reference.class_name, copy.class_name
    )
    if copy.deprecation != deprecation:
        found.append(
            f"{copy}: deprecated with {copy.deprecation!r}, {reference} with "
            f"{reference.deprecation!r} (its class name read as {copy.class_name})"
        )
    return found


def _parameter_difference(ours: Parameter | None, theirs: Parameter | None) -> str | None:
    if ours == theirs:
        return None
    if ours is None or theirs is None or ours.name != theirs.name:
        return f"is {str(ours or 'missing')!r}, there {str(theirs or 'missing')!r}"
    what = [
        f"{aspect} {mine!r}, there {other!r}"
        for aspect, mine, other in (
            ("kind", ours.kind, theirs.kind),
            ("annotation", ours.annotation, theirs.annotation),
            ("default", ours.default, theirs.default),
        )
        if mine != other
    ]
    return f"{ours.name!r}: " + "; ".join(what)


def _signature_differences(
    reference: Member, copy: Member, copies: Copies, *, annotations: bool
) -> list[str]:
    """Overload count and order, each overload's parameters and return annotation."""
    session_type = _class_parameter(*copies.reference)
    if reference.form == "attribute":
        (getter,) = copy.functions
        returned = _text(getter.returns, _self_renames(getter, session_type) | copies.aliases)
        declared = _text(reference.annotation, {})
        if annotations and returned != declared:
            return [f"{copy}: returns {returned!r}, where {reference} is declared {declared!r}"]
        return []
    if len(copy.functions) != len(reference.functions):
        return [
            f"{copy}: {len(copy.functions)} overloads, {reference} has {len(reference.functions)}"
        ]
    found = []
    for number, (ours, theirs) in enumerate(zip(copy.functions, reference.functions, strict=True)):
        where = f"{copy}, overload {number + 1}," if len(copy.functions) > 1 else f"{copy}:"
        names = _self_renames(ours, session_type) | copies.aliases
        our_parameters, their_parameters = _parameters(ours, names), _parameters(theirs, {})
        if reference.name in copies.without_kw:
            their_parameters = [
                parameter for parameter in their_parameters if parameter.kind != "**"
            ]
        if not annotations:
            our_parameters = [replace(parameter, annotation="") for parameter in our_parameters]
            their_parameters = [replace(parameter, annotation="") for parameter in their_parameters]
        for index in range(max(len(our_parameters), len(their_parameters))):
            difference = _parameter_difference(
                our_parameters[index] if index < len(our_parameters) else None,
                their_parameters[index] if index < len(their_parameters) else None,
            )
            if difference:
                found.append(f"{where} parameter {index + 1} {difference} (in {reference})")
        returned, declared = _text(ours.returns, names), _text(theirs.returns, {})
        if annotations and returned != declared:
            found.append(f"{where} returns {returned!r}, {reference} {declared!r}")
    return found


def _docstring_differences(reference: Member, copy: Member, copies: Copies) -> list[str]:
    rule = copies.docstring_rule
    if reference.docstring is None or copy.docstring is None:
        if reference.docstring == copy.docstring:
            return []
        which = (copy, reference) if reference.docstring is None else (reference, copy)
        return [f"{copy}: {which[0]} has a docstring, {which[1]} has none"]
    if rule(reference.docstring, copy.docstring):
        return []
    return [
        f"{copy}: the docstring breaks the rule {rule.__name__}() ({rule.__doc__}):\n"
        f"    here:  {copy.docstring!r}\n    there: {reference.docstring!r}"
    ]


def _membership_differences(
    reference: dict[str, Member], copy: dict[str, Member], copies: Copies
) -> list[str]:
    """Members missing without a listed reason, listed ones not missing, and extra members."""
    where, reference_where = " ".join(copies.copy), " ".join(copies.reference)
    found = []
    if missing := sorted(set(reference) - set(copy) - set(copies.left_out)):
        found.append(f"{where}: does not declare {missing}, and they are not listed as left out")
    if declared := sorted(set(copies.left_out) & set(copy)):
        found.append(f"{where}: declares {declared}, which are listed as left out")
    if unknown := sorted(set(copies.left_out) - set(reference)):
        found.append(f"{where}: lists {unknown} as left out, but {reference_where} has none")
    if extra := sorted(set(copy) - set(reference)):
        found.append(f"{where}: declares {extra}, which {reference_where} does not")
    return found


def _kind(member: Member) -> str:
    return member.form.removeprefix("settable ")


def _differences(copies: Copies, *, without: frozenset[str] = frozenset()) -> list[str]:
    """Everything that disagrees between the copy and its reference, ``without`` those names."""
    reference, copy = (
        {name: member for name, member in _members(*side).items() if name not in without}
        for side in (copies.reference, copies.copy)
    )
    found = _membership_differences(reference, copy, copies)
    for name in sorted(set(reference) & set(copy)):
        form = _form_differences(reference[name], copy[name], copies.read_only)
        strict = name not in copies.looser
        found += form or _signature_differences(
            reference[name], copy[name], copies, annotations=strict
        )
        # Declared in another form (the attribute sync_session as a property): its own words.
        if strict and _kind(reference[name]) == _kind(copy[name]):
            found += _docstring_differences(reference[name], copy[name], copies)
        elif not strict and not (
            _signature_differences(reference[name], copy[name], copies, annotations=True)
            + _docstring_differences(reference[name], copy[name], copies)
        ):
            found.append(f"{copy[name]}: listed as typed looser, but agrees with {reference[name]}")
    if unknown := sorted(set(copies.looser) - (set(reference) & set(copy))):
        found.append(f"{' '.join(copies.copy)}: lists {unknown} as typed looser, but has no such")
    return found


def _definitions(file: str) -> dict[str, str]:
    """The module-level names an annotation can use, each as what it is defined to be."""
    defined: dict[str, str] = {}
    for node in _tree(file).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                defined[alias.asname or alias.name] = f"imported from {node.module}"
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id != "__all__":
                defined[node.targets[0].id] = ast.unparse(node.value)  # a type variable
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            defined[node.target.id] = ast.unparse(node.value)  # a type alias
        elif isinstance(node, ast.ClassDef) and node.name.startswith("_"):
            defined[node.name] = ast.unparse(node)  # a private helper protocol
    return defined
