"""The sa_async mypy plugin: enable it with ``plugins = ["sa_async_mypy"]`` in your mypy config."""

from .main import plugin

# Bumped whenever the plugin's behaviour changes: mypy fingerprints only this entry module, and
# the version is part of the configuration data that invalidates cached results.
__version__ = "0.4.0"

__all__ = ["__version__", "plugin"]
