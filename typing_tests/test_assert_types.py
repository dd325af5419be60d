"""The assert_type files and the sample application pass both checkers with zero errors.

``*_assert_types.py`` state what users see, and ``application.py`` is code a user would write
(strict mode on both checkers). Each file is checked by ``mypy --strict`` with the plugin (the
repository's configuration), by ``mypy --strict`` without it, and by basedpyright (the
``[tool.basedpyright]`` settings: "standard" mode, only ``# pyright: ignore[rule]`` comments,
unneeded ones reported), which also checks the stubs themselves. The application also runs, on
an in-memory SQLite database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPING_TESTS = Path("typing_tests")
CHECKED = sorted(
    [
        *(str(path.relative_to(ROOT)) for path in (ROOT / TYPING_TESTS).glob("*_assert_types.py")),
        str(TYPING_TESTS / "application.py"),
    ]
)


def run(*command: str) -> tuple[int, str]:
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def test_every_assert_type_file_is_checked() -> None:
    names = {Path(path).name for path in CHECKED}
    assert {
        "application.py",
        "protocols_assert_types.py",
        "scoping_assert_types.py",
        "session_assert_types.py",
    } <= names


def test_mypy_strict_with_the_plugin() -> None:
    status, output = run(sys.executable, "-m", "mypy", "--strict", *CHECKED)
    assert status == 0, output
    assert f"Success: no issues found in {len(CHECKED)} source files" in output, output


def test_mypy_strict_without_the_plugin() -> None:
    status, output = run(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(TYPING_TESTS / "mypy_without_plugin.ini"),
        # A cache of its own: sharing one with the plugin's runs would invalidate it each time.
        "--cache-dir",
        ".mypy_cache/without-plugin",
        *CHECKED,
    )
    assert status == 0, output
    assert f"Success: no issues found in {len(CHECKED)} source files" in output, output


def test_basedpyright_on_these_files_and_the_stubs() -> None:
    status, output = run(
        sys.executable,
        "-m",
        "basedpyright",
        "--pythonpath",
        sys.executable,
        "sa_async-stubs",
        *CHECKED,
    )
    assert status == 0, output
    assert "0 errors, 0 warnings" in output, output


def test_the_application_runs() -> None:
    status, output = run(sys.executable, str(TYPING_TESTS / "application.py"))
    assert status == 0, output
    assert output.splitlines()[0] == "created The Dispossessed by Le Guin", output
    assert "Le Guin has 3 books" in output, output


def test_basedpyright_on_the_integration_tests() -> None:
    # tests/integration/ runs published libraries on sa_async: code of the kind users write,
    # where sa_async's objects meet annotations of SQLAlchemy's classes. (mypy --strict checks
    # it with the rest of tests/, in test_packaging.py.)
    status, output = run(
        sys.executable, "-m", "basedpyright", "--pythonpath", sys.executable, "tests/integration"
    )
    assert status == 0, output
    assert "0 errors, 0 warnings" in output, output


# What pyright reveals where mypy and pyright disagree, for sa_async's session beside
# SQLAlchemy's: mypy widens a union with Any to Any, so an assert_type file cannot state these for
# both checkers at once.
PYRIGHT_ONLY = """
from typing import Any
from sqlalchemy import Select
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import Session
from sa_async import AsyncSession, scoped_session

async def untyped_select(
    ours: AsyncSession, theirs: sqlalchemy_asyncio.AsyncSession,
    registry: scoped_session[Session], statement: Select[Any],
) -> None:
    reveal_type(await ours.scalar(statement))
    reveal_type(await theirs.scalar(statement))
    reveal_type(registry.scalar(statement))
    reveal_type(ours.sync_session.scalar(statement))
"""


def test_pyright_gives_an_untyped_select_scalar_as_optional_as_sqlalchemy_does(
    tmp_path: Path,
) -> None:
    program = tmp_path / "untyped_select.py"
    program.write_text(PYRIGHT_ONLY)
    status, output = run(
        sys.executable, "-m", "basedpyright", "--pythonpath", sys.executable, str(program)
    )
    revealed = [line.split(" is ", 1)[1] for line in output.splitlines() if "Type of" in line]
    assert revealed == ['"Any | None"'] * 4, output
    assert status == 0, output
