"""The plugin's answers follow edits in mypy's incremental mode and in the daemon (dmypy).

Each test writes a small project into a temporary directory: a model with an AsyncAttrs base, a
repository function returning it, a service assigning ``await user.awaitable_attrs.name`` to an
``int`` and a report revealing the loaded type. It is checked once, the model's attribute is
edited, and the project is checked again from the cache (or by the running daemon): the new type
must show. The service reports nothing before the edit on purpose: the daemon rechecks every
target that had a message, so only a clean target shows whether the plugin's dependency on the
model's attribute was recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mypy.options import Options
from mypy.plugin import ReportConfigContext

import sa_async_mypy
from sa_async_mypy.main import SaAsyncPlugin

ROOT = Path(__file__).resolve().parent.parent

MODELS = """\
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sa_async import AsyncAttrs


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[int]
"""
REPOSITORY = """\
from models import User


def newest_user() -> User:
    return User()
"""
SERVICE = """\
from repository import newest_user


async def name_of_newest_user() -> int:
    name: int = await newest_user().awaitable_attrs.name
    return name
"""
REPORT = """\
from models import User


async def show(user: User) -> None:
    reveal_type(await user.awaitable_attrs.name)
"""
FILES = ("models.py", "repository.py", "service.py", "report.py")

ASSIGNED_STR = (
    'service.py:5: error: Incompatible types in assignment (expression has type "str", '
    'variable has type "int")  [assignment]'
)
NO_ATTRIBUTE = (
    'service.py:5: error: "User" has no attribute "name" for awaitable_attrs to load  '
    "[sa-async-awaitable-attrs]"
)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def run(project: Path, *command: str, pythonpath: Path | None = None) -> tuple[int, str]:
    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": str(pythonpath)}
    completed = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def mypy(project: Path, *options: str, pythonpath: Path | None = None) -> tuple[int, str]:
    return run(
        project,
        "mypy",
        "--config-file",
        "mypy.ini",
        "--cache-dir",
        ".mypy_cache",
        *options,
        *FILES,
        pythonpath=pythonpath,
    )


def parsed_files(verbose_output: str) -> set[str]:
    """The files a ``mypy -v`` run parsed: the others' results came from the cache."""
    return set(re.findall(r"LOG:  Parsing (\S+) ", verbose_output))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in zip(FILES, (MODELS, REPOSITORY, SERVICE, REPORT), strict=True):
        (tmp_path / name).write_text(text)
    (tmp_path / "mypy.ini").write_text(
        f"[mypy]\nstrict = True\nplugins = sa_async_mypy\nmypy_path = {ROOT / 'typings'}\n"
    )
    return tmp_path


def test_an_incremental_run_sees_the_edited_attribute_type(project: Path) -> None:
    status, output = mypy(project)
    assert status == 0, output
    assert 'report.py:5: note: Revealed type is "int"' in output, output

    edit(project / "models.py", "name: Mapped[int]", "name: Mapped[str]")
    status, output = mypy(project, "-v")
    assert status == 1, output
    assert 'report.py:5: note: Revealed type is "str"' in output, output
    assert ASSIGNED_STR in output, output
    # SQLAlchemy and the stubs came from the cache: only the project was checked again.
    assert {"models.py"} <= parsed_files(output) <= set(FILES), output


def test_the_daemon_follows_the_edited_attribute(project: Path) -> None:
    status_file = project.parent / f"dmypy-{uuid.uuid4().hex}.json"
    dmypy = ("mypy.dmypy", "--status-file", str(status_file))
    check = (*dmypy, "run", "--timeout", "600", "--", "--config-file", "mypy.ini", *FILES)
    try:
        status, output = run(project, *check)
        assert status == 0, output
        assert "service.py" not in output, output

        edit(project / "models.py", "name: Mapped[int]", "name: Mapped[str]")
        status, output = run(project, *check)
        assert status == 1, output
        assert ASSIGNED_STR in output, output
        assert 'report.py:5: note: Revealed type is "str"' in output, output

        edit(project / "models.py", "name: Mapped[str]", "full_name: Mapped[str]")
        status, output = run(project, *dmypy, "check", *FILES)
        assert status == 1, output
        assert NO_ATTRIBUTE in output, output
    finally:
        stopped, output = run(project, *dmypy, "stop")
        if stopped != 0 and status_file.exists():
            run(project, *dmypy, "kill")


@pytest.fixture
def plugin_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the plugin package, to put first on PYTHONPATH, that a test may edit."""
    directory = tmp_path_factory.mktemp("plugin")
    shutil.copytree(
        ROOT / "mypy_plugin",
        directory / "sa_async_mypy",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return directory


def test_an_edit_to_any_plugin_module_invalidates_the_cache(
    project: Path, plugin_copy: Path
) -> None:
    # mypy fingerprints only the plugin's entry module; this edit leaves it, and the version,
    # unchanged, and must still invalidate the results cached with the plugin before the edit.
    edit(project / "models.py", "name: Mapped[int]", "full_name: Mapped[int]")
    status, output = mypy(project, pythonpath=plugin_copy)
    assert NO_ATTRIBUTE in output, output

    edit(
        plugin_copy / "sa_async_mypy" / "transformers" / "awaitable_attrs.py",
        "for awaitable_attrs to load",
        "for the edited plugin to load",
    )
    status, output = mypy(project, pythonpath=plugin_copy)
    assert status == 1, output
    assert NO_ATTRIBUTE.replace("awaitable_attrs", "the edited plugin") in output, output


def test_the_configuration_data_changes_with_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    context = ReportConfigContext(id="service", path="service.py", is_check=True)
    before = SaAsyncPlugin(Options()).report_config_data(context)
    monkeypatch.setattr(sa_async_mypy, "__version__", f"{sa_async_mypy.__version__}.post1")
    assert SaAsyncPlugin(Options()).report_config_data(context) != before
