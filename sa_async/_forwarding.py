"""Forwarding members: built from the table in ``_surface.py`` rather than written out.

``install_session_members`` gives ``AsyncSession`` the members that only forward to its sync
session, each of its kind: a plain call, a call refused during another task's operation, a call
run in the greenlet bridge, a property. ``install_registry_members`` gives a scoped registry the
members that forward to its current session. Their signatures are the proxied members' own, so
that ``inspect.signature`` and a call's errors read as the session's; their types and
documentation are in the stubs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import GenericAlias
from typing import Any

from sqlalchemy.orm import Session

from ._bridge import run_in_bridge
from ._completion import RunToCompletion
from ._surface import SURFACE, Kind, Registries, forwarded_by

# Runtime subscripting (``AsyncSession[RoutingSession]``) for annotations evaluated at run time.
subscriptable: classmethod[Any, [Any], GenericAlias] = classmethod(GenericAlias)


def compile_forward(
    name: str,
    signature: inspect.Signature,
    call: str,
    *,
    module: str,
    prologue: str = "",
    is_async: bool = False,
    **namespace: Any,
) -> Callable[..., Any]:
    """Compile ``def name(self, <signature's parameters>): return <call>(<them>)``.

    A forwarder with the target's own parameters calls on without packing and unpacking
    ``*args`` / ``**kw``, which is most of what a generic forwarder would add to a call as
    cheap as ``add()``. Parameters that have a default are passed on by keyword, as
    SQLAlchemy's own proxies pass them. ``prologue`` (indented source) runs first; ``namespace``
    holds the names that ``call`` and ``prologue`` use; ``module`` is the function's module.
    """
    parameters = ["self"]
    arguments = []
    keyword_only = False
    kinds = inspect.Parameter
    values = list(signature.parameters.values())[1:]
    for index, parameter in enumerate(values):
        spelled, kind = parameter.name, parameter.kind
        if kind is kinds.VAR_POSITIONAL:
            keyword_only = True
            parameters.append(f"*{spelled}")
            arguments.append(f"*{spelled}")
            continue
        if kind is kinds.VAR_KEYWORD:
            parameters.append(f"**{spelled}")
            arguments.append(f"**{spelled}")
            continue
        if kind is kinds.KEYWORD_ONLY and not keyword_only:
            keyword_only = True
            parameters.append("*")
        if parameter.default is parameter.empty:
            parameters.append(spelled)
            arguments.append(f"{spelled}={spelled}" if kind is kinds.KEYWORD_ONLY else spelled)
        else:
            namespace[f"_default_{spelled}"] = parameter.default
            parameters.append(f"{spelled}=_default_{spelled}")
            arguments.append(spelled if kind is kinds.POSITIONAL_ONLY else f"{spelled}={spelled}")
        following = values[index + 1] if index + 1 < len(values) else None
        if kind is kinds.POSITIONAL_ONLY and (
            following is None or following.kind is not kinds.POSITIONAL_ONLY
        ):
            parameters.append("/")
    await_ = "await " if is_async else ""
    source = (
        f"{'async ' if is_async else ''}def {name}({', '.join(parameters)}):\n"
        f"{prologue}    return {await_}{call}({', '.join(arguments)})\n"
    )
    namespace["__name__"] = module
    exec(compile(source, f"<sa_async forwarder of {name}: {call}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function


# -- AsyncSession's members, forwarded to its sync session (``self.sync_session``)

_GUARD_PROLOGUE = (
    "    if self._operation is not None:\n        self._refuse_concurrent_use(_operation)\n"
)


def _sync(cls: type[Any], name: str, *, guarded: bool) -> Callable[..., Any]:
    signature = inspect.signature(getattr(Session, name))
    call = f"self.sync_session.{name}"
    if not guarded:
        return compile_forward(name, signature, call, module=cls.__module__)
    return compile_forward(
        name,
        signature,
        call,
        module=cls.__module__,
        prologue=_GUARD_PROLOGUE,
        _operation=f"{name}()",
    )


def _bridged(cls: type[Any], name: str) -> Callable[..., Any]:
    operation = f"{name}()"

    async def forward(self: Any, *args: Any, **kw: Any) -> Any:
        running = self._enter(operation)
        try:
            return await run_in_bridge(getattr(self.sync_session, name), *args, **kw)
        finally:
            self._operation = running

    return forward


def _to_completion(cls: type[Any], name: str) -> Callable[..., Any]:
    operation = f"{name}()"

    async def forward(self: Any, *args: Any, **kw: Any) -> Any:
        method = getattr(self.sync_session, name)
        return await RunToCompletion(self._run_guarded(operation, method, *args, **kw))

    return forward


def _session_attribute(name: str, *, settable: bool, doc: str) -> property:
    def fget(self: Any) -> Any:
        return getattr(self.sync_session, name)

    def fset(self: Any, value: Any) -> None:
        setattr(self.sync_session, name, value)

    return property(fget, fset if settable else None, doc=doc)


def _registry_attribute(name: str, *, settable: bool, doc: str) -> property:
    def fget(self: Any) -> Any:
        return getattr(self.registry(), name)

    def fset(self: Any, value: Any) -> None:
        setattr(self.registry(), name, value)

    return property(fget, fset if settable else None, doc=doc)


def _classmethod(session_class: type[Any], name: str) -> Callable[..., Any]:
    def forward(cls: type[Any], *args: Any, **kw: Any) -> Any:
        return getattr(session_class, name)(*args, **kw)

    return forward


def _finish(
    cls: type[Any], function: Callable[..., Any], name: str, signature_of: Any, doc: str
) -> Callable[..., Any]:
    function.__name__ = name
    function.__qualname__ = f"{cls.__name__}.{name}"
    function.__module__ = cls.__module__
    function.__doc__ = doc
    function.__signature__ = inspect.signature(signature_of)  # type: ignore[attr-defined]
    return function


def install_session_members(cls: type[Any]) -> None:
    """Give ``cls`` (AsyncSession) the members of ``SURFACE`` that forward to the sync session."""
    for name, member in SURFACE.items():
        kind = member.kind
        doc = f"{kind.value.capitalize()}: ``Session.{name}``."
        if kind in (Kind.SYNC, Kind.GUARDED_SYNC):
            function = _sync(cls, name, guarded=kind is Kind.GUARDED_SYNC)
        elif kind is Kind.BRIDGED:
            function = _bridged(cls, name)
        elif kind is Kind.TO_COMPLETION:
            function = _to_completion(cls, name)
        elif kind in (Kind.PROPERTY, Kind.SETTABLE):
            settable = kind is Kind.SETTABLE
            setattr(cls, name, _session_attribute(name, settable=settable, doc=doc))
            continue
        elif kind is Kind.CLASSMETHOD:
            # The signature of the function under the classmethod, ``cls`` included.
            target = inspect.getattr_static(Session, name).__func__
            function = _finish(cls, _classmethod(Session, name), name, target, doc)
            setattr(cls, name, classmethod(function))
            continue
        else:
            continue  # written out in the class, or not a member of it
        setattr(cls, name, _finish(cls, function, name, getattr(Session, name), doc))


def install_registry_members(
    cls: type[Any], session_class: type[Any], registries: Registries
) -> None:
    """Give the registry ``cls`` the members of ``SURFACE`` that ``registries`` forward to the
    current session (``self.registry()``), each of the kind it has on ``session_class``."""
    session_name = session_class.__name__
    for name in forwarded_by(registries):
        doc = f"Forward to the current session's ``{session_name}.{name}``."
        found = inspect.getattr_static(session_class, name, None)
        if isinstance(found, classmethod):
            target = found.__func__
            function = _finish(cls, _classmethod(session_class, name), name, target, doc)
            setattr(cls, name, classmethod(function))
        elif inspect.isfunction(found):
            # Awaited: the current session is looked up when the coroutine starts, as in
            # SQLAlchemy; SQLAlchemy's proxies pass the defaults of the session's signature
            # explicitly, and so do the compiled forwarders.
            function = compile_forward(
                name,
                inspect.signature(found),
                f"self.registry().{name}",
                module=cls.__module__,
                is_async=inspect.iscoroutinefunction(found),
            )
            setattr(cls, name, _finish(cls, function, name, found, doc))
        else:
            # A property stays read-only unless the session's is settable. A plain attribute of
            # the session (set in its __init__) is settable, but for sync_session: a registry
            # does not swap its session's sync session.
            if hasattr(found, "__get__"):
                settable = hasattr(found, "__set__")
            else:
                settable = name != "sync_session"
            setattr(cls, name, _registry_attribute(name, settable=settable, doc=doc))


__all__ = [
    "compile_forward",
    "install_registry_members",
    "install_session_members",
    "subscriptable",
]
