"""The plugin's entry point: each hook method looks the fullname up in a table and dispatches.

The work is done in ``mypy_plugin/transformers/`` (one module per concern); the names matched are
in ``fullnames.py`` and the error codes in ``errorcodes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mypy.options import Options
from mypy.plugin import (
    AttributeContext,
    ClassDefContext,
    FunctionContext,
    MethodContext,
    MethodSigContext,
    Plugin,
    ReportConfigContext,
)
from mypy.types import FunctionLike, Type

# fullname -> hook, one table per kind of hook; the transformer modules provide the functions.
FUNCTION_HOOKS: dict[str, Callable[[FunctionContext], Type]] = {}
METHOD_HOOKS: dict[str, Callable[[MethodContext], Type]] = {}
METHOD_SIGNATURE_HOOKS: dict[str, Callable[[MethodSigContext], FunctionLike]] = {}
ATTRIBUTE_HOOKS: dict[str, Callable[[AttributeContext], Type]] = {}
BASE_CLASS_HOOKS: dict[str, Callable[[ClassDefContext], None]] = {}


class SaAsyncPlugin(Plugin):
    """mypy plugin for sa_async."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return FUNCTION_HOOKS.get(fullname)

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return METHOD_HOOKS.get(fullname)

    def get_method_signature_hook(
        self, fullname: str
    ) -> Callable[[MethodSigContext], FunctionLike] | None:
        return METHOD_SIGNATURE_HOOKS.get(fullname)

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        return ATTRIBUTE_HOOKS.get(fullname)

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return BASE_CLASS_HOOKS.get(fullname)

    def report_config_data(self, ctx: ReportConfigContext) -> dict[str, Any]:
        # Cached results of a different plugin version must not be reused.
        from mypy_plugin import __version__

        return {"sa_async_plugin_version": __version__}


def plugin(version: str) -> type[Plugin]:
    """Return the plugin class; mypy calls this with its own version string."""
    return SaAsyncPlugin
