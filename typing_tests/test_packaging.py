"""The type checkers see what users will see: the stubs agree with the runtime (stubtest),
type-check under --strict, the examples pass with the plugin, and a built wheel exposes runtime,
stubs and plugin to mypy from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def run(*command: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command, fail the test with its output unless it exits 0, return its stdout."""
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, (
        f"{' '.join(command)} exited {completed.returncode}:\n{output}"
    )
    return completed.stdout


def test_stubtest_finds_stubs_and_runtime_in_agreement() -> None:
    output = run(
        PYTHON,
        "-m",
        "mypy.stubtest",
        "sa_async",
        "--mypy-config-file",
        "pyproject.toml",
        "--allowlist",
        "typing_tests/stubtest_allowlist.txt",
    )
    assert "Success" in output


def test_stubs_type_check_under_strict() -> None:
    # Checked from typings/, where `sa_async` is the stub package itself.
    output = run(
        PYTHON, "-m", "mypy", "--strict", "--no-incremental", "sa_async", cwd=ROOT / "typings"
    )
    stub_files = len(list((ROOT / "sa_async-stubs").glob("*.pyi")))
    assert f"Success: no issues found in {stub_files} source files" in output


def test_runtime_and_plugin_type_check_under_strict() -> None:
    output = run(PYTHON, "-m", "mypy", "--strict", "sa_async", "mypy_plugin")
    assert "Success" in output


def test_tests_type_check_under_strict_against_the_stubs() -> None:
    # A separate run: checked together with sa_async/, the tests would see the runtime's types.
    output = run(PYTHON, "-m", "mypy", "--strict", "tests", "typing_tests")
    assert "Success" in output


def test_examples_type_check_with_the_plugin() -> None:
    output = run(PYTHON, "-m", "mypy", "--strict", "examples")
    assert "Success" in output


def test_stubs_shadow_the_runtime_from_the_repository_root() -> None:
    # mypy searches the working directory first; typings/ must keep the stubs in front of sa_async/.
    source = "from sa_async.session import AsyncSession\nreveal_type(AsyncSession.run_sync)\n"
    output = run(PYTHON, "-m", "mypy", "--no-incremental", "-c", source)
    assert "Concatenate" in output or "_S" in output, output


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed (dependencies borrowed from this venv)."""
    workdir = tmp_path_factory.mktemp("wheel")
    run(
        PYTHON,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(workdir / "dist"),
        str(ROOT),
    )
    (wheel,) = (workdir / "dist").glob("sa_async-*.whl")
    target = workdir / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    target_python = target / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(run(str(target_python), "-c", purelib).strip())
    # Dependencies (SQLAlchemy, mypy...) come from the test venv, after the venv's own packages.
    (site_packages / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        PYTHON,
        "-m",
        "pip",
        "--python",
        str(target_python),
        "install",
        "--no-deps",
        "-q",
        str(wheel),
    )
    for package in ("sa_async", "sa_async-stubs", "mypy_plugin"):
        assert (site_packages / package).is_dir(), f"{package} missing from the wheel"
    return target_python


def test_installed_wheel_gives_runtime_stubs_and_plugin(wheel_venv: Path, tmp_path: Path) -> None:
    program = tmp_path / "app.py"
    program.write_text(
        textwrap.dedent("""\
        from typing import TYPE_CHECKING
        from sqlalchemy.orm import Session
        from sa_async import AsyncSession, async_sessionmaker, create_async_engine

        class Routing(Session):
            pass

        maker = async_sessionmaker(
            create_async_engine("sqlite+aiosqlite://"), sync_session_class=Routing
        )
        session = maker()
        if TYPE_CHECKING:
            reveal_type(session.sync_session)
        print(type(session).__module__, type(session.sync_session).__name__)
        """)
    )
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = mypy_plugin\n")
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    printed = run(str(wheel_venv), str(program), cwd=tmp_path, env=env)
    assert printed.split() == ["sa_async.session", "Routing"]
    checked = run(
        str(wheel_venv), "-m", "mypy", "--no-incremental", "app.py", cwd=tmp_path, env=env
    )
    assert 'Revealed type is "app.Routing"' in checked
    located = run(
        str(wheel_venv), "-c", "import sa_async; print(sa_async.__file__)", cwd=tmp_path, env=env
    )
    assert str(ROOT) not in located, "the wheel test must not import the repository's sources"
