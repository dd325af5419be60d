"""The assert_type files and the sample application under pyrefly and ty, which editors run too.

Each tool checks the files from a temporary project outside the repository, configured as a
user's would be (its own config file, this virtual environment as the interpreter), so that
``sa_async`` resolves through site-packages to the ``sa_async-stubs`` package. pyrefly runs its
"default" preset (its bare default does not report a failed ``assert_type``).

The verdict per tool, line by line:
- a misuse line (one carrying ``# type: ignore[...]`` for mypy) must be an error: neither tool
  is told to honour ``# type: ignore`` or ``# pyright: ignore`` comments;
- any other line must be clean;
- except for the checks the tool cannot express, listed in LIMITATIONS below with the reason
  (a limitation of the tool, not of the stubs). An entry that no longer matches what the tool
  reports fails the test too, so the list stays true when a tool improves.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING_TESTS = ROOT / "typing_tests"
CHECKED = sorted([*TYPING_TESTS.glob("*_assert_types.py"), TYPING_TESTS / "application.py"])
BIN = Path(sys.executable).parent
NOT_REPORTED = "not reported"


@dataclass(frozen=True)
class Limitation:
    """A check of the assert_type files that a tool cannot express."""

    tool: str
    file: str
    function: str
    line: str
    """Text that occurs on exactly one line of the function."""
    error: str
    """The error code the tool reports there, or NOT_REPORTED for a misuse it lets through."""
    reason: str


LIMITATIONS = (
    Limitation(
        "pyrefly",
        "session_assert_types.py",
        "misuse_of_the_constructor_is_an_error",
        "_routing: AsyncSession[RoutingSession] = AsyncSession(engine)",
        NOT_REPORTED,
        "pyrefly specialises a constructor call from the declared type of the assignment "
        "target first, and so picks the plain-self overload of AsyncSession.__init__ instead "
        "of reporting the mismatch; no stub spelling tried avoids it (mypy, pyright and ty report "
        "it).",
    ),
    *(
        Limitation(
            "ty",
            file,
            function,
            "execution_options, immutabledict[str, Any])",
            "type-assertion-failure",
            "SQLAlchemy decorates immutabledict with `cython.cclass`, where `cython` is "
            "`import cython` (not installed, so Unknown) or SQLAlchemy's fallback module; ty "
            "keeps both, reads every immutabledict[str, Any] annotation (SQLAlchemy's own too) "
            "as `Unknown | immutabledict[str, Any]`, and the asserted type as "
            "immutabledict[Unknown, Unknown].",
        )
        for file, function in (
            ("session_assert_types.py", "properties_and_transactions_are_typed"),
            ("scoping_assert_types.py", "scoped_session_proxies_are_typed_as_session_members"),
        )
    ),
    Limitation(
        "ty",
        "session_assert_types.py",
        "properties_and_transactions_are_typed",
        'session.execution_options = {"yield_per": 10}',
        NOT_REPORTED,
        "The same reading of SQLAlchemy's immutabledict: its Unknown part accepts a dict.",
    ),
    # sa_async's classes subclass SQLAlchemy's (issue 12), whose attributes are declared with
    # SQLAlchemy's own types; ty reads an attribute a subclass declares again with the base
    # class's declaration (or the union of both), so these narrower types are lost to it.
    *(
        Limitation(
            "ty",
            file,
            function,
            line,
            "type-assertion-failure",
            "ty types an attribute that SQLAlchemy's base class declares (AsyncSession."
            "sync_session: Session, sync_session_class: type[Session], the registries' "
            "registry and session_factory, async_sessionmaker.class_) by that declaration, not "
            "by the narrower one that sa_async's subclass declares in its stub.",
        )
        for file, function, line in (
            (
                "session_assert_types.py",
                "the_session_type_follows_the_sync_session_class",
                "assert_type(routing.sync_session, RoutingSession)",
            ),
            (
                "session_assert_types.py",
                "the_session_type_follows_the_sync_session_class",
                "assert_type(routing.sync_session_class, type[RoutingSession])",
            ),
            (
                "session_assert_types.py",
                "the_session_type_follows_the_sync_session_class",
                "assert_type(RoutingAsyncSession(engine).sync_session, RoutingSession)",
            ),
            (
                "session_assert_types.py",
                "sessionmakers_carry_the_session_type",
                "assert_type(custom.class_, type[RoutingAsyncSession])",
            ),
            (
                "session_assert_types.py",
                "sharded_sessions_are_typed_end_to_end",
                "assert_type(session.sync_session, ShardedSession)",
            ),
            (
                "session_assert_types.py",
                "sessionmakers_carry_the_session_type",
                "assert_type(routing(autoflush=False).sync_session, RoutingSession)",
            ),
            (
                "scoping_assert_types.py",
                "scoped_session_carries_the_session_type",
                "assert_type(routing.session_factory, sessionmaker[RoutingSession])",
            ),
            (
                "scoping_assert_types.py",
                "scoped_session_carries_the_session_type",
                "assert_type(routing.registry, ScopeRegistry[RoutingSession])",
            ),
            (
                "scoping_assert_types.py",
                "scoped_session_carries_the_session_type",
                "assert_type(routing.registry(), RoutingSession)",
            ),
            (
                "scoping_assert_types.py",
                "async_scoped_session_carries_the_session_type",
                "assert_type(custom.session_factory, async_sessionmaker[MyAsyncSession])",
            ),
            (
                "scoping_assert_types.py",
                "async_scoped_session_carries_the_session_type",
                "assert_type(custom.registry, ScopeRegistry[MyAsyncSession])",
            ),
        )
    ),
    Limitation(
        "ty",
        "scoping_assert_types.py",
        "scoped_session_carries_the_session_type",
        "assert_type(len(routing.registry), int)",
        "invalid-argument-type",
        "The same reading of the registry attribute: SQLAlchemy's ScopedRegistry, in the union "
        "ty makes, has no __len__ (sa_async's ScopeRegistry has).",
    ),
    Limitation(
        "pyrefly",
        "session_assert_types.py",
        "properties_and_transactions_are_typed",
        "assert_type(await session.begin_nested(), AsyncSessionTransaction)",
        "assert-type",
        "pyrefly, as pyright, types an await by the Awaitable base class that SQLAlchemy's "
        "AsyncSessionTransaction declares (StartableContext[AsyncSessionTransaction]), so it "
        "sees SQLAlchemy's transaction class (the same members), not sa_async's subclass.",
    ),
    Limitation(
        "ty",
        "protocols_assert_types.py",
        "every_async_session_kind_is_accepted",
        "await routed(routing)",
        "invalid-argument-type",
        "ty does not find AsyncSession[RoutingSession] to match AsyncSessionProtocol["
        "RoutingSession]: it reads sync_session by the declaration of SQLAlchemy's base class "
        "(a plain Session), as it reads the attributes above.",
    ),
)


@dataclass(frozen=True)
class Diagnostic:
    path: Path
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: [{self.code}] {self.message}"


PROBE = """\
from sqlalchemy.orm import Session
from typing_extensions import assert_type

from sa_async import AsyncEngine, AsyncSession


class RoutingSession(Session):
    pass


def probe(engine: AsyncEngine) -> None:
    # Only the stubs make AsyncSession generic in its sync session class.
    routing = AsyncSession(engine, sync_session_class=RoutingSession)
    assert_type(routing, AsyncSession[RoutingSession])
    # A failed assert_type is an error for the tool as configured.
    assert_type(AsyncSession(engine).sync_session, RoutingSession)
"""
PROBE_FAILING_LINE = 16


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project outside the repository, with a config file for each tool."""
    root = tmp_path_factory.mktemp("other_checkers")
    (root / "probe.py").write_text(PROBE)
    # Python 3.11, as mypy and basedpyright check these files; typed_models.py on the path;
    # only `# pyrefly: ignore` comments honoured, so that the misuse lines stay errors.
    (root / "pyrefly.toml").write_text(
        f'preset = "default"\n'
        f"python-interpreter-path = {json.dumps(sys.executable)}\n"
        f'python-version = "3.11"\n'
        f"search-path = [{json.dumps(str(TYPING_TESTS))}]\n"
        f'enabled-ignores = ["pyrefly"]\n'
    )
    # ty honours a `# type: ignore[code]` only when its codes are ty's; none is honoured here.
    (root / "ty.toml").write_text(
        f"[environment]\n"
        f"python = {json.dumps(sys.prefix)}\n"
        f'python-version = "3.11"\n'
        f"extra-paths = [{json.dumps(str(TYPING_TESTS))}]\n"
        f"\n"
        f"[analysis]\n"
        f"respect-type-ignore-comments = false\n"
    )
    return root


def run(project: Path, *command: str) -> tuple[int, str]:
    completed = subprocess.run(
        command, cwd=project, capture_output=True, text=True, check=False, timeout=120
    )
    return completed.returncode, completed.stdout + completed.stderr


def pyrefly(project: Path) -> list[Diagnostic]:
    status, output = run(
        project,
        str(BIN / "pyrefly"),
        "check",
        "--config",
        "pyrefly.toml",
        "--output-format",
        "json",
        "--summary=none",
        "--progress-bar=no",
        "probe.py",
        *map(str, CHECKED),
    )
    assert status in (0, 1), output
    errors = json.loads(output[output.index("{") :])["errors"]
    return [
        Diagnostic(
            (project / error["path"]).resolve(), error["line"], error["name"], error["description"]
        )
        for error in errors
        if error["severity"] in ("error", "warn")
    ]


def ty(project: Path) -> list[Diagnostic]:
    status, output = run(
        project,
        str(BIN / "ty"),
        "check",
        "--config-file",
        "ty.toml",
        "--output-format",
        "gitlab",
        "probe.py",
        *map(str, CHECKED),
    )
    assert status in (0, 1), output
    return [
        Diagnostic(
            (project / found["location"]["path"]).resolve(),
            found["location"]["positions"]["begin"]["line"],
            found["check_name"],
            found["description"].removeprefix(f"{found['check_name']}: "),
        )
        for found in json.loads(output[output.index("[") :])
    ]


TOOLS = {"pyrefly": pyrefly, "ty": ty}


def judge(tool: str, diagnostics: list[Diagnostic]) -> Iterator[str]:
    """Yield each departure from the expected verdict (see the module docstring)."""
    limitations = [limitation for limitation in LIMITATIONS if limitation.tool == tool]
    where = {limitation: locate(limitation) for limitation in limitations}

    found: dict[tuple[Path, int], list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        found.setdefault((diagnostic.path, diagnostic.line), []).append(diagnostic)

    listed_errors = {
        (*where[limitation], limitation.error): limitation
        for limitation in limitations
        if limitation.error != NOT_REPORTED
    }
    not_reported = {
        where[limitation]: limitation
        for limitation in limitations
        if limitation.error == NOT_REPORTED
    }
    for path in CHECKED:
        misuses = misuse_lines(path)
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            here = found.pop((path, number), [])
            if number in misuses:
                limitation = not_reported.get((path, number))
                if limitation is None and not here:
                    yield f"{path.name}:{number}: misuse not reported: {text.strip()}"
                elif limitation is not None and here:
                    yield f"{path.name}:{number}: now reported, drop the entry: {limitation.line}"
                continue
            for diagnostic in here:
                if listed_errors.pop((path, number, diagnostic.code), None) is None:
                    yield f"unexpected: {diagnostic}"
    for limitation in listed_errors.values():
        yield f"no longer reported, drop the entry: {limitation.file}: {limitation.line}"
    for elsewhere in found.values():
        yield from (f"outside the checked lines: {diagnostic}" for diagnostic in elsewhere)


def locate(limitation: Limitation) -> tuple[Path, int]:
    """The file and line number of a limitation's line."""
    path = TYPING_TESTS / limitation.file
    source = path.read_text()
    (function,) = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name == limitation.function
    ]
    lines = [
        number
        for number, text in enumerate(source.splitlines(), start=1)
        if function.lineno <= number <= (function.end_lineno or 0) and limitation.line in text
    ]
    assert len(lines) == 1, f"{limitation.line!r} is on lines {lines} of {path.name}"
    return path, lines[0]


def misuse_lines(path: Path) -> set[int]:
    """The lines with a `# type: ignore[...]` comment: the misuses that must stay errors."""
    with path.open("rb") as source:
        return {
            token.start[0]
            for token in tokenize.tokenize(source.readline)
            if token.type == tokenize.COMMENT and token.string.startswith("# type: ignore[")
        }


@pytest.fixture(scope="module")
def reported(project: Path) -> dict[str, list[Diagnostic]]:
    """What each tool reports on the probe and the checked files (one run per tool)."""
    return {name: run_tool(project) for name, run_tool in TOOLS.items()}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_stubs_are_what_the_tool_reads(
    project: Path, reported: dict[str, list[Diagnostic]], tool: str
) -> None:
    on_probe = [d for d in reported[tool] if d.path == project / "probe.py"]
    assert [(d.line, d.code) for d in on_probe] == [
        (PROBE_FAILING_LINE, "assert-type" if tool == "pyrefly" else "type-assertion-failure")
    ], "\n".join(map(str, on_probe))


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_assert_type_files_pass_but_for_the_listed_limitations(
    project: Path, reported: dict[str, list[Diagnostic]], tool: str
) -> None:
    problems = list(judge(tool, [d for d in reported[tool] if d.path != project / "probe.py"]))
    assert problems == [], "\n".join(problems)


def test_every_limitation_gives_a_reason() -> None:
    assert {limitation.tool for limitation in LIMITATIONS} <= set(TOOLS)
    assert all(len(limitation.reason) > 40 for limitation in LIMITATIONS)
    assert len(set(LIMITATIONS)) == len(LIMITATIONS)
