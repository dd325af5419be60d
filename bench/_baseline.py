"""A second copy of sa_async, from another checkout, timed beside this one in the same run.

``python -m bench.runtime --baseline DIR`` imports ``DIR/sa_async`` as the package
``sa_async_baseline`` (sa_async imports its own modules relatively, so a copy under another name
is a separate, complete library) and adds it as a fourth implementation, "baseline": the tables
then show this tree's sa_async against that one, round by round, as they show it against
SQLAlchemy. ``DIR`` is typically a ``git worktree`` of an earlier commit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "sa_async_baseline"


def load_baseline(checkout: Path) -> ModuleType:
    """Import ``checkout/sa_async`` as ``sa_async_baseline`` (once) and return it."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    init = checkout / "sa_async" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"--baseline: {init} not found")
    spec = importlib.util.spec_from_file_location(
        PACKAGE, init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
