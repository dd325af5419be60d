import inspect
from collections.abc import Callable
from types import GenericAlias
from typing import Any

from ._surface import Registries

subscriptable: classmethod[Any, [Any], GenericAlias]

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
    """Compile ``def name(self, <signature's parameters>): return <call>(<them>)``."""

def install_session_members(cls: type[Any]) -> None:
    """Give ``cls`` (AsyncSession) the members of ``SURFACE`` that forward to the sync session."""

def install_registry_members(
    cls: type[Any], session_class: type[Any], registries: Registries
) -> None:
    """Give the registry ``cls`` the members that ``registries`` forward to its session."""

__all__ = [
    "compile_forward",
    "install_registry_members",
    "install_session_members",
    "subscriptable",
]
