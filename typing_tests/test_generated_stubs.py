"""The stub members and runtime docstrings that ``tools/generate_stubs.py`` writes are up to date.

The generator copies ``AsyncSession``'s members (``session.pyi``) into ``async_scoped_session``
and ``AsyncSessionProtocol``, ``scoped_session``'s into ``SyncSessionProtocol``, and the stubs'
docstrings into the runtime classes; its ``--check`` mode says what a run would change. These
tests run that check, show that it fails when a source changes, and that the generated regions
declare every member that ``sa_async/_surface.py`` says the registries forward.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sa_async._surface import Registries, forwarded_by

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tools" / "generate_stubs.py"
STUBS = ROOT / "sa_async-stubs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_stubs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def check(root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_generated_stub_members_and_runtime_docstrings_are_up_to_date() -> None:
    completed = check()
    assert completed.returncode == 0, (
        "the generated stub members or runtime docstrings differ from their sources: "
        "run python tools/generate_stubs.py\n" + completed.stdout + completed.stderr
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The stubs, the runtime and the project's configuration (ruff's), in a folder of their own."""
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("sa_async", "sa_async-stubs"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _contents(root: Path) -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(root.rglob("*.py*"))}


# What is changed in session.pyi, what it becomes, and the members --check then names.
SOURCE_CHANGES = {
    "a docstring": (
        '"""Write pending changes (all, or those of ``objects``) to the database."""',
        '"""Write the pending changes (all, or those of ``objects``) to the database."""',
        ["async_scoped_session.flush", "AsyncSessionProtocol.flush"],
    ),
    "a signature": (
        "def expunge(self, instance: object) -> None:",
        "def expunge(self, instance: object, /) -> None:",
        ["async_scoped_session.expunge", "AsyncSessionProtocol.expunge"],
    ),
    "the docstring of a member the runtime class defines": (
        '"""Return the AsyncConnection of the current transaction, beginning one if needed."""',
        '"""Return the AsyncConnection of the transaction in progress, beginning one if needed."""',
        ["AsyncSession.connection", "async_scoped_session.connection"],
    ),
}


@pytest.mark.parametrize("change", SOURCE_CHANGES)
def test_the_check_reports_a_changed_source_and_writes_nothing(copy: Path, change: str) -> None:
    before, after, reported = SOURCE_CHANGES[change]
    session = copy / "sa_async-stubs" / "session.pyi"
    text = session.read_text()
    assert text.count(before) == 1
    session.write_text(text.replace(before, after))
    written = _contents(copy)

    completed = check(copy)

    assert completed.returncode == 1, completed.stdout + completed.stderr
    for member in reported:
        assert member in completed.stdout, (member, completed.stdout)
    assert after.removesuffix(" -> None:") in completed.stdout  # the diff shows the new text
    assert "run python tools/generate_stubs.py" in completed.stdout.lower()
    assert _contents(copy) == written


def test_a_run_brings_the_copies_and_the_runtime_docstrings_up_to_date(copy: Path) -> None:
    before, after, _ = SOURCE_CHANGES["the docstring of a member the runtime class defines"]
    session = copy / "sa_async-stubs" / "session.pyi"
    session.write_text(session.read_text().replace(before, after))

    ran = subprocess.run(
        [sys.executable, str(GENERATOR), "--root", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert check(copy).returncode == 0
    assert after in (copy / "sa_async" / "session.py").read_text()
    assert after in (copy / "sa_async-stubs" / "protocols.pyi").read_text()


def _declared(file: str, class_name: str) -> set[str]:
    tree = ast.parse((STUBS / file).read_text())
    (cls,) = [
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name
    ]
    names = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_stubs_declare_every_member_the_registries_forward() -> None:
    left_out_of_the_sync_protocol = _generator().SYNC_PROTOCOL_LEFT_OUT
    async_forwarded = set(forwarded_by(Registries.ASYNC_SCOPED))
    sync_forwarded = set(forwarded_by(Registries.SCOPED))
    missing = {
        "async_scoped_session": async_forwarded - _declared("scoping.pyi", "async_scoped_session"),
        "AsyncSessionProtocol": async_forwarded
        - _declared("protocols.pyi", "AsyncSessionProtocol"),
        "scoped_session": sync_forwarded - _declared("scoping.pyi", "scoped_session"),
        # Less the members left out with a reason (SQLAlchemy's Session must satisfy it).
        "SyncSessionProtocol": sync_forwarded
        - _declared("protocols.pyi", "SyncSessionProtocol")
        - set(left_out_of_the_sync_protocol),
    }
    assert not any(missing.values()), missing
    assert set(left_out_of_the_sync_protocol) <= sync_forwarded
    assert not set(left_out_of_the_sync_protocol) & _declared(
        "protocols.pyi", "SyncSessionProtocol"
    )
