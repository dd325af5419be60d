"""The plugin's entry point: each hook method looks the fullname up in a table and dispatches.

The work is done in ``mypy_plugin/transformers/`` (one module per concern); the names matched are
in ``fullnames.py`` and the error codes in ``errorcodes.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mypy.build import PRI_LOW
from mypy.nodes import MypyFile, TypeInfo
from mypy.options import Options
from mypy.plugin import (
    AttributeContext,
    ClassDefContext,
    FunctionContext,
    FunctionSigContext,
    Plugin,
    ReportConfigContext,
)
from mypy.types import FunctionLike, Type

from . import fullnames
from .transformers import awaitable_attrs, misuse, sessionmakers

_Hook = TypeVar("_Hook")
AWAITABLE_ATTRS_MODULE = fullnames.AWAITABLE_ATTRS.rpartition(".")[0]

# fullname -> hook, one table per kind of hook; the transformer modules provide the functions.
FUNCTION_HOOKS: dict[str, Callable[[FunctionContext], Type]] = {
    fullnames.ASYNC_SESSIONMAKER: sessionmakers.async_sessionmaker_type,
    fullnames.ASYNC_SESSION: sessionmakers.async_session_type,
    fullnames.SESSIONMAKER: misuse.sessionmaker_of_async_sessions,
    fullnames.SCOPED_SESSION: misuse.scoped_session_of_async_sessionmaker,
    fullnames.ASYNC_SCOPED_SESSION: misuse.async_scoped_session_of_sessionmaker,
}
# Calls that unpack a dictionary the plugin can read (`**{"class_": X}`, `**options`) are
# checked as if its items were keyword arguments; the async ones take a sync bind, which their
# function hook reports.
FUNCTION_SIGNATURE_HOOKS: dict[str, Callable[[FunctionSigContext], FunctionLike]] = {
    fullnames.ASYNC_SESSIONMAKER: sessionmakers.async_session_signature,
    fullnames.ASYNC_SESSION: sessionmakers.async_session_signature,
    fullnames.SESSIONMAKER: sessionmakers.keyword_dicts_as_keywords,
}
ATTRIBUTE_HOOKS: dict[str, Callable[[AttributeContext], Type]] = {
    fullnames.SQLALCHEMY_AWAITABLE_ATTRS_PROPERTY: awaitable_attrs.sqlalchemy_loader_as_ours,
}
# Class fullname -> hook for every name its __getattr__ serves (mypy asks "<class>.<any name>").
GETATTR_HOOKS: dict[str, Callable[[AttributeContext], Type]] = {
    fullnames.AWAITABLE_ATTRS: awaitable_attrs.awaitable_attribute,
}
BASE_CLASS_HOOKS: dict[str, Callable[[ClassDefContext], None]] = {
    fullnames.ASYNC_SESSION: sessionmakers.adopt_sync_session_class,
}


class SaAsyncPlugin(Plugin):
    """mypy plugin for sa_async."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        # Cached results of a different plugin version must not be reused, nor those of an edited
        # plugin whose version was not bumped (mypy fingerprints the entry module alone).
        from . import __version__

        self._config_data = {
            "sa_async_plugin_version": __version__,
            "sa_async_plugin_source": _source_digest(),
        }

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return self._hook_of_class(FUNCTION_HOOKS, fullname)

    def get_function_signature_hook(
        self, fullname: str
    ) -> Callable[[FunctionSigContext], FunctionLike] | None:
        return self._hook_of_class(FUNCTION_SIGNATURE_HOOKS, fullname)

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        hook = ATTRIBUTE_HOOKS.get(fullname)
        if hook is None:
            owner, _, _ = fullname.rpartition(".")
            hook = GETATTR_HOOKS.get(owner)
        return hook

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return self._hook_of_class(BASE_CLASS_HOOKS, fullname)

    def _hook_of_class(self, table: dict[str, _Hook], fullname: str) -> _Hook | None:
        """The hook of ``fullname`` in ``table``, or of the first class in it that ``fullname``
        subclasses: a user's subclass of a hooked class gets the same treatment."""
        hook = table.get(fullname)
        if hook is not None or "." not in fullname:
            return hook
        symbol = self.lookup_fully_qualified(fullname)
        info = None if symbol is None else symbol.node
        if not isinstance(info, TypeInfo):
            return None
        return next((hook for base, hook in table.items() if info.has_base(base)), None)

    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        # sa_async's stubs in every build: the awaitable_attrs of models on SQLAlchemy's
        # AsyncAttrs are typed with sa_async's loader class, also where nothing imports sa_async.
        if file.fullname.startswith(("sa_async", "sqlalchemy", "builtins", "typing")):
            return []
        return [(PRI_LOW, AWAITABLE_ATTRS_MODULE, -1)]

    def report_config_data(self, ctx: ReportConfigContext) -> dict[str, Any]:
        # Asked twice for every module: computed once, in __init__.
        return self._config_data


def _source_digest() -> str:
    """A digest of the plugin's modules (every ``.py`` under ``mypy_plugin/``)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    try:
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    except OSError:
        return ""
    return digest.hexdigest()[:16]


def plugin(version: str) -> type[Plugin]:
    """Return the plugin class; mypy calls this with its own version string."""
    return SaAsyncPlugin
