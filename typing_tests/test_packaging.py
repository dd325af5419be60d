"""The type checkers see what users will see, and the release is what it says: the stubs agree
with the runtime (stubtest) and type-check under --strict, the examples pass with the plugin; the
release archives (an sdist, and the wheel built from it) hold the three packages, nothing else, and
release-ready metadata; the installed wheel exposes runtime, stubs and plugin to mypy from outside
the repository."""

from __future__ import annotations

import email.message
import email.parser
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import sa_async

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Each shipped package, and the repository folder it comes from.
PACKAGES = {
    "sa_async": "sa_async",
    "sa_async-stubs": "sa_async-stubs",
    "sa_async_mypy": "mypy_plugin",
}
# Never in a release archive: what the repository keeps for itself, and what runs leave behind.
NOT_SHIPPED = frozenset(
    {"tests", "typing_tests", "bench", "examples", "docs", "typings", "__pycache__", ".cache",
     ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist"}
)  # fmt: skip


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
    output = run(PYTHON, "-m", "mypy", "--strict", "sa_async", "sa_async_mypy")
    assert "Success" in output


def test_tests_type_check_under_strict_against_the_stubs() -> None:
    # A separate run: checked together with sa_async/, the tests would see the runtime's types.
    output = run(PYTHON, "-m", "mypy", "--strict", "tests", "typing_tests")
    assert "Success" in output


def test_examples_type_check_with_the_plugin() -> None:
    output = run(PYTHON, "-m", "mypy", "--strict", "examples")
    assert "Success" in output


def test_benchmarks_type_check_under_strict() -> None:
    output = run(PYTHON, "-m", "mypy", "--strict", "bench")
    assert "Success" in output


def test_ruff_finds_nothing_to_fix() -> None:
    # Lint and format, the stubs (flake8-pyi rules) and the docs' code blocks included.
    ruff = str(Path(PYTHON).parent / "ruff")
    run(ruff, "check", ".")
    run(ruff, "format", "--check", ".")


def test_stubs_shadow_the_runtime_from_the_repository_root() -> None:
    # mypy searches the working directory first; typings/ must keep the stubs in front of sa_async/.
    source = "from sa_async.session import AsyncSession\nreveal_type(AsyncSession.run_sync)\n"
    output = run(PYTHON, "-m", "mypy", "--no-incremental", "-c", source)
    assert "Concatenate" in output or "_S" in output, output


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The sdist, and the wheel built from the unpacked sdist, as a release builds them.

    ``python -m build`` without ``--sdist``/``--wheel`` builds the wheel from the sdist, which shows
    that the sdist holds everything a build needs; ``--no-isolation`` uses this venv's hatchling
    instead of downloading one (about 3 s).
    """
    outdir = tmp_path_factory.mktemp("dist")
    run(PYTHON, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(ROOT))
    (sdist,) = outdir.glob("sa_async-*.tar.gz")
    (wheel,) = outdir.glob("sa_async-*-py3-none-any.whl")
    return Distributions(sdist=sdist, wheel=wheel)


def source_files(package: str, *, installed: bool = False) -> set[str]:
    """The files of shipped ``package`` that a release must hold (posix paths).

    Paths are the repository's (``mypy_plugin/...``), or with ``installed`` the wheel's
    (``sa_async_mypy/...``).
    """
    folder = PACKAGES[package]
    pattern = "*.pyi" if package.endswith("-stubs") else "*.py"
    found = (
        path.relative_to(ROOT / folder).as_posix()
        for path in (ROOT / folder).rglob(pattern)
        if "__pycache__" not in path.parts
    )
    return {f"{package if installed else folder}/{name}" for name in found}


def assert_nothing_unshipped(names: list[str]) -> None:
    for name in names:
        parts = PurePosixPath(name).parts
        assert not NOT_SHIPPED.intersection(parts), f"{name} must not be in a release archive"
        assert not name.endswith((".pyc", ".pyo")), f"{name} must not be in a release archive"


def wheel_metadata(wheel_path: Path) -> email.message.Message:
    """The wheel's METADATA: core-metadata headers, the long description as the body."""
    with zipfile.ZipFile(wheel_path) as wheel:
        text = wheel.read(f"sa_async-{sa_async.__version__}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def claimed_pythons(classifiers: list[str]) -> list[tuple[int, int]]:
    """The (major, minor) versions of the "Programming Language :: Python :: X.Y" classifiers."""
    found = (
        re.fullmatch(r"Programming Language :: Python :: (\d+)\.(\d+)", c) for c in classifiers
    )
    return sorted((int(match[1]), int(match[2])) for match in found if match)


def test_wheel_holds_the_three_packages_and_the_license(distributions: Distributions) -> None:
    with zipfile.ZipFile(distributions.wheel) as wheel:
        names = wheel.namelist()
        dist_info = f"sa_async-{sa_async.__version__}.dist-info"
        shipped_license = wheel.read(f"{dist_info}/licenses/LICENSE").decode()
    assert_nothing_unshipped(names)
    for package in PACKAGES:
        expected = source_files(package, installed=True)
        assert expected, f"no source files found for {package}"
        assert expected <= set(names), f"missing from the wheel: {sorted(expected - set(names))}"
    assert "sa_async_mypy/transformers/__init__.py" in names
    # Nothing may install a top-level mypy_plugin: another project's module of that name.
    assert not [name for name in names if name.startswith("mypy_plugin/")]
    strays = [name for name in names if name.split("/", 1)[0] not in {*PACKAGES, dist_info}]
    assert not strays, f"files outside the three packages: {strays}"
    assert shipped_license == (ROOT / "LICENSE").read_text()


def test_sdist_holds_the_sources_and_what_describes_them(distributions: Distributions) -> None:
    top = distributions.sdist.name.removesuffix(".tar.gz")
    with tarfile.open(distributions.sdist) as sdist:
        names = [
            member.name.removeprefix(f"{top}/") for member in sdist.getmembers() if member.isfile()
        ]
    assert_nothing_unshipped(names)
    for package in PACKAGES:
        expected = source_files(package)
        assert expected <= set(names), f"missing from the sdist: {sorted(expected - set(names))}"
    top_level = {name for name in names if "/" not in name}
    # .gitignore: hatchling always adds it, so that a build from the sdist ignores the same files.
    assert top_level == {
        "README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO", ".gitignore"
    }  # fmt: skip
    folders = set(PACKAGES.values())
    strays = [name for name in names if "/" in name and name.split("/", 1)[0] not in folders]
    assert not strays, f"files outside the three packages: {strays}"


def test_metadata_is_release_ready(distributions: Distributions) -> None:
    metadata = wheel_metadata(distributions.wheel)
    assert metadata["Name"] == "sa-async"
    assert metadata["Version"] == sa_async.__version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]

    classifiers = metadata.get_all("Classifier") or []
    assert {"Typing :: Typed", "Framework :: AsyncIO"} <= set(classifiers)
    # PEP 639: a License classifier beside License-Expression is deprecated and may be rejected.
    assert not [c for c in classifiers if c.startswith("License ::")]
    # The Python versions claimed start at Requires-Python's floor and include the one testing.
    pythons = claimed_pythons(classifiers)
    python_floor = "{}.{}".format(*pythons[0])
    assert metadata["Requires-Python"] == f">={python_floor}"
    assert sys.version_info[:2] in pythons, f"Python {sys.version_info[:2]} is not claimed"

    requirements = {
        requirement.name: requirement
        for requirement in map(Requirement, metadata.get_all("Requires-Dist") or [])
        if requirement.marker is None
    }
    sqlalchemy = requirements["sqlalchemy"]
    assert sqlalchemy.extras == {"asyncio"}
    assert sqlalchemy.specifier == SpecifierSet(">=2.1.7,<2.2")
    assert "greenlet" in requirements

    # The long description is the README, which tells what the wheel holds and how checkers find it.
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.strip() == (ROOT / "README.md").read_text().strip()
    for phrase in ("PEP 561", "sa_async-stubs", 'plugins = ["sa_async_mypy"]'):
        assert phrase in description
    # What it says it needs is what the metadata requires.
    assert f"Python {python_floor} or later, SQLAlchemy 2.1.7 or a later 2.1 release" in description


def test_sdist_metadata_agrees_with_the_wheel(distributions: Distributions) -> None:
    top = distributions.sdist.name.removesuffix(".tar.gz")
    with tarfile.open(distributions.sdist) as sdist:
        member = sdist.extractfile(f"{top}/PKG-INFO")
        assert member is not None
        pkg_info = email.parser.Parser().parsestr(member.read().decode())
    metadata = wheel_metadata(distributions.wheel)
    fields = ("Version", "License-Expression", "Requires-Python", "Classifier", "Requires-Dist")
    for field in fields:
        assert pkg_info.get_all(field) == metadata.get_all(field), field


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory, distributions: Distributions) -> Path:
    """A fresh venv with the built wheel installed (dependencies borrowed from this venv)."""
    workdir = tmp_path_factory.mktemp("wheel")
    wheel = distributions.wheel
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
    for package in PACKAGES:
        assert (site_packages / package).is_dir(), f"{package} missing from the wheel"
    assert not (site_packages / "mypy_plugin").exists()
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
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = sa_async_mypy\n")
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


PROJECT_PLUGIN = """\
from collections.abc import Callable

from mypy.plugin import FunctionContext, Plugin
from mypy.types import Type


def _note(ctx: FunctionContext) -> Type:
    ctx.api.note("the project's own mypy_plugin ran", ctx.context)
    return ctx.default_return_type


class ProjectPlugin(Plugin):
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _note if fullname == "app.marker" else None


def plugin(version: str) -> type[Plugin]:
    return ProjectPlugin
"""


def test_a_project_module_named_mypy_plugin_is_loaded_beside_the_installed_plugin(
    wheel_venv: Path, tmp_path: Path
) -> None:
    # The plugin's import name is sa_async's own: a project's mypy_plugin module is its own.
    (tmp_path / "mypy_plugin.py").write_text(PROJECT_PLUGIN)
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""\
        from sqlalchemy.orm import Session
        from sa_async import async_sessionmaker, create_async_engine

        class Routing(Session):
            pass

        def marker() -> None: ...

        marker()
        session = async_sessionmaker(
            create_async_engine("sqlite+aiosqlite://"), sync_session_class=Routing
        )()
        reveal_type(session.sync_session)
        """)
    )
    (tmp_path / "mypy.ini").write_text("[mypy]\nplugins = mypy_plugin, sa_async_mypy\n")
    env = {**os.environ, "PYTHONNOUSERSITE": "1", "PYTHONPATH": str(tmp_path)}
    checked = run(
        str(wheel_venv), "-m", "mypy", "--no-incremental", "app.py", cwd=tmp_path, env=env
    )
    assert "app.py:9: note: the project's own mypy_plugin ran" in checked, checked
    assert 'app.py:13: note: Revealed type is "app.Routing"' in checked, checked
