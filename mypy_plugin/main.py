"""The plugin's entry point; the hook methods only dispatch."""

from __future__ import annotations

from typing import Any

from mypy.options import Options
from mypy.plugin import Plugin, ReportConfigContext


class SaAsyncPlugin(Plugin):
    """mypy plugin for sa_async."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)

    def report_config_data(self, ctx: ReportConfigContext) -> dict[str, Any]:
        # Cached results of a different plugin version must not be reused.
        from mypy_plugin import __version__

        return {"sa_async_plugin_version": __version__}


def plugin(version: str) -> type[Plugin]:
    """Return the plugin class; mypy calls this with its own version string."""
    return SaAsyncPlugin
