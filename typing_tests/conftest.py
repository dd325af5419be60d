"""Settings for the YAML type cases (pytest-mypy-plugins).

The cases run ``mypy`` in a temporary directory under one absolute testing base, so that its
incremental cache survives from case to case (a relative base loses it: ~2.4 s a case instead
of ~0.2 s), with one shared ini (``mypy.ini``). Each case's ``MYPYPATH`` starts with
``typings/`` (the stubs, in front of the runtime package that pytest-mypy-plugins also puts on
the path through the repository root) and this directory (``typed_models.py``).

A case whose name contains ``without_the_plugin`` (a parameter counts too:
``[mypy=without_the_plugin]``) runs with ``mypy_cases_without_plugin.ini``, the same options
without the plugin, and a cache of its own: with one cache for both configurations, each switch
invalidated all of it (the 32 cases of ``test_plugin_sessionmakers.yml`` took 215-250 s instead
of 18-20 s).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

import pytest

TYPING_TESTS = Path(__file__).resolve().parent
ROOT = TYPING_TESTS.parent
CASES_BASE = ROOT / ".cache" / "mypy-cases"
CACHE_WITHOUT_PLUGIN = CASES_BASE / ".mypy_cache_without_plugin"
MYPY_PATH = os.pathsep.join([str(ROOT / "typings"), str(TYPING_TESTS)])

# pytest-mypy-plugins runs the `mypy` found on PATH: this interpreter's, even when the venv is
# not activated (CI runs `.venv/bin/python -m pytest`).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


class _YamlCase(Protocol):
    name: str
    environment_variables: dict[str, str]
    base_ini_fpath: str | None
    incremental_cache_dir: str


def put_stubs_on_mypy_path(case: _YamlCase) -> None:
    """pytest-mypy-plugins extension hook: called for each case before mypy runs."""
    case.environment_variables["MYPYPATH"] = MYPY_PATH
    if "without_the_plugin" in case.name:
        case.base_ini_fpath = str(TYPING_TESTS / "mypy_cases_without_plugin.ini")
        case.incremental_cache_dir = str(CACHE_WITHOUT_PLUGIN)


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if not hasattr(option, "mypy_testing_base"):
        return
    CASES_BASE.mkdir(parents=True, exist_ok=True)
    option.mypy_testing_base = str(CASES_BASE)
    option.mypy_ini_file = str(TYPING_TESTS / "mypy.ini")
    option.mypy_extension_hook = f"{__name__}.put_stubs_on_mypy_path"
