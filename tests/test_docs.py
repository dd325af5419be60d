"""Every ```python block of docs/*.md and README.md is run or type-checked, so the docs cannot rot.

A block says what is done with it in an HTML comment on the line before its fence (blank lines
between are allowed; the comment does not show once rendered)::

    <!-- docs-test: run typecheck -->

- ``run``: the block is a program, run with this interpreter in an empty directory; it must exit
  with status 0 and write nothing to stderr (blocks state what they show with ``assert``). What
  it prints must be shown: a ``text`` block marked ``<!-- docs-test: output -->`` after it (before
  the next program) holds its exact stdout, and a program that prints without one fails.
- ``typecheck``: ``mypy --strict`` with the sa_async plugin (the repository's configuration)
  and basedpyright ("standard" mode) must both pass it.
- ``mypy-plugin``: only ``mypy --strict`` with the plugin checks it: what the plugin adds to the
  stubs, which pyright cannot see.
- ``pyright``: only basedpyright checks it: what the stubs alone give, where the plugin gives
  more.
- ``continue``: the block carries on the program of the block before it in the same file (and is
  run or checked with it, as that block says), so that prose can come between its parts.

A line that must be a type error ends with ``# error: [code]`` (mypy's error code; several
separated by commas): mypy must report exactly those codes on that line and basedpyright some
error there. Every other line must be clean. Types are stated with ``assert_type``, which both
checkers verify. A python block without a ``docs-test`` comment fails the test.

The other blocks: toml and ini blocks (checker configuration) must parse, and the mypy plugins
they name must load; the added lines of a diff block (an import change) must run. Shell
commands and sample output (sh, text) are not run.

mypy runs once over all the blocks (one module per program), and basedpyright once.
"""

from __future__ import annotations

import configparser
import importlib
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
MODES = {"run", "typecheck", "mypy-plugin", "pyright", "continue"}
MARKER = re.compile(r"^<!-- docs-test: ([a-z -]+?) -->$")
EXPECTED_ERROR = re.compile(r"#\s*error:\s*\[([a-z0-9, -]+)\]\s*$")
MYPY_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<message>.*)$")
MYPY_CODE = re.compile(r"\s\s\[(?P<code>[a-z0-9-]+)\]$")


@dataclass
class Program:
    """One or more blocks of one document, run or checked as one module."""

    document: Path
    modes: set[str]
    lines: list[str] = field(default_factory=list)
    # For each line of the program: the line of the document it comes from (1-based).
    origins: list[int] = field(default_factory=list)
    # The stdout the document shows for it (an "output" text block), if any.
    expected_output: str | None = None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.origins[0]}"

    @property
    def module(self) -> str:
        stem = re.sub(r"\W", "_", self.document.stem.lower())
        return f"docs_{stem}_line{self.origins[0]}"

    @property
    def source(self) -> str:
        return "\n".join(self.lines) + "\n"

    def where(self, line: int) -> str:
        """The document line of the program's ``line`` (1-based), for messages."""
        return f"{self.document.relative_to(ROOT)}:{self.origins[line - 1]}"

    def expected_errors(self) -> dict[int, set[str]]:
        expected: dict[int, set[str]] = {}
        for number, text in enumerate(self.lines, start=1):
            match = EXPECTED_ERROR.search(text)
            if match:
                expected[number] = {code.strip() for code in match.group(1).split(",")}
        return expected


def parse(document: Path) -> tuple[list[Program], list[str]]:
    """The programs of ``document``, and the problems found (unmarked blocks, unknown modes)."""
    programs: list[Program] = []
    problems: list[str] = []
    lines = document.read_text().splitlines()
    marker: str | None = None
    index = 0
    while index < len(lines):
        text = lines[index]
        match = MARKER.match(text.strip())
        if match:
            marker = match.group(1)
        elif text.startswith("```"):
            language = text[3:].strip()
            end = index + 1
            while not lines[end].startswith("```"):
                end += 1
            if language == "text" and marker == "output":
                where = f"{document.relative_to(ROOT)}:{index + 1}"
                if not programs or programs[-1].expected_output is not None:
                    problems.append(f"{where}: an output block needs a program before it, alone")
                else:
                    programs[-1].expected_output = "\n".join(lines[index + 1 : end])
            elif language in ("python", "py"):
                where = f"{document.relative_to(ROOT)}:{index + 1}"
                modes = set((marker or "").split())
                if not modes:
                    problems.append(f"{where}: python block without a docs-test comment")
                elif modes - MODES:
                    problems.append(f"{where}: unknown docs-test mode(s) {modes - MODES}")
                elif "continue" in modes:
                    if not programs or modes != {"continue"}:
                        problems.append(f"{where}: 'continue' needs a block before it, alone")
                    else:
                        programs[-1].lines.extend(lines[index + 1 : end])
                        programs[-1].origins.extend(range(index + 2, end + 1))
                else:
                    programs.append(
                        Program(
                            document,
                            modes,
                            lines[index + 1 : end],
                            list(range(index + 2, end + 1)),
                        )
                    )
            marker = None
            index = end
        elif text.strip():
            marker = None
        index += 1
    return programs, problems


def all_programs() -> tuple[list[Program], list[str]]:
    programs: list[Program] = []
    problems: list[str] = []
    for document in DOCUMENTS:
        found, trouble = parse(document)
        programs.extend(found)
        problems.extend(trouble)
    return programs, problems


PROGRAMS, PROBLEMS = all_programs()
RUN = [program for program in PROGRAMS if "run" in program.modes]
MYPY = [program for program in PROGRAMS if program.modes & {"typecheck", "mypy-plugin"}]
PYRIGHT = [program for program in PROGRAMS if program.modes & {"typecheck", "pyright"}]


def by_name(programs: list[Program]) -> list[object]:
    return [pytest.param(program, id=program.name) for program in programs]


@pytest.fixture(scope="session")
def program_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("docs-programs")
    for program in PROGRAMS:
        (directory / f"{program.module}.py").write_text(program.source)
    return directory


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="session")
def mypy_errors(program_dir: Path) -> dict[str, dict[int, list[str]]]:
    """mypy's errors per module and line: ``[code] message`` strings."""
    completed = run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-pretty",
        "--hide-error-context",
        "--show-error-codes",
        *(str(program_dir / f"{program.module}.py") for program in MYPY),
    )
    errors: dict[str, dict[int, list[str]]] = {}
    for text in completed.stdout.splitlines():
        match = MYPY_LINE.match(text)
        if match is None or match.group("kind") != "error":
            continue
        message = match.group("message")
        code = MYPY_CODE.search(message)
        module = Path(match.group("path")).stem
        errors.setdefault(module, {}).setdefault(int(match.group("line")), []).append(
            f"[{code.group('code') if code else '?'}] {message}"
        )
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    if completed.returncode == 0:
        assert not errors
    return errors


@pytest.fixture(scope="session")
def pyright_errors(program_dir: Path) -> dict[str, dict[int, list[str]]]:
    """basedpyright's errors per module and line: ``[rule] message`` strings."""
    completed = run(
        sys.executable,
        "-m",
        "basedpyright",
        "--pythonpath",
        sys.executable,
        "--outputjson",
        *(str(program_dir / f"{program.module}.py") for program in PYRIGHT),
    )
    report = json.loads(completed.stdout)
    errors: dict[str, dict[int, list[str]]] = {}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] != "error":
            continue
        module = Path(diagnostic["file"]).stem
        line = diagnostic["range"]["start"]["line"] + 1
        rule = diagnostic.get("rule", "?")
        errors.setdefault(module, {}).setdefault(line, []).append(
            f"[{rule}] {diagnostic['message']}"
        )
    return errors


def test_every_python_block_is_marked() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)
    names = {program.document.name for program in PROGRAMS}
    assert {"getting-started.md", "migrating.md", "type-inference.md", "errors.md"} <= names


def fenced_blocks(language: str) -> list[tuple[str, str]]:
    """Every block of ``language`` in the documents: where it starts, and its text."""
    found: list[tuple[str, str]] = []
    for document in DOCUMENTS:
        matches = re.finditer(rf"^```{language}\n(.*?)^```$", document.read_text(), re.M | re.S)
        for match in matches:
            line = document.read_text().count("\n", 0, match.start()) + 1
            found.append((f"{document.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_configuration_blocks_parse_and_name_the_plugin() -> None:
    """The toml and ini blocks (checker configuration) parse, and every plugin they name loads."""
    plugins: list[str] = []
    for where, block in fenced_blocks("toml"):
        settings = tomllib.loads(block)
        plugins.extend(settings.get("tool", {}).get("mypy", {}).get("plugins", []))
        assert settings, where
    for where, block in fenced_blocks("ini"):
        parser = configparser.ConfigParser()
        parser.read_string(block)
        if parser.has_option("mypy", "plugins"):
            plugins.append(parser.get("mypy", "plugins"))
        assert parser.sections(), where
    assert "sa_async_mypy" in plugins
    for name in set(plugins):
        assert callable(importlib.import_module(name).plugin), name


def test_the_added_lines_of_diff_blocks_run() -> None:
    """A diff block shows an import change: its new lines must import."""
    blocks = fenced_blocks("diff")
    assert blocks
    for where, block in blocks:
        added = [line[1:] for line in block.splitlines() if line.startswith("+")]
        exec(compile("\n".join(added), where, "exec"), {})


@pytest.mark.parametrize("program", by_name(RUN))
def test_run(program: Program, tmp_path: Path) -> None:
    script = tmp_path / f"{program.module}.py"
    script.write_text(program.source)
    completed = run(sys.executable, str(script), cwd=tmp_path)
    assert completed.returncode == 0, (
        f"{program.name} failed:\n{completed.stdout}{completed.stderr}"
    )
    assert completed.stderr == "", f"{program.name} wrote to stderr:\n{completed.stderr}"
    shown = program.expected_output
    if shown is None:
        assert completed.stdout == "", (
            f"{program.name} prints, and the document shows no output block for it:\n"
            f"{completed.stdout}"
        )
    else:
        assert completed.stdout.rstrip() == shown.rstrip(), (
            f"{program.name} printed other than its output block shows:\n{completed.stdout}"
        )


def unexpected(program: Program, found: dict[int, list[str]], *, exact_codes: bool) -> list[str]:
    """The differences between the errors ``found`` and those the program expects."""
    expected = program.expected_errors()
    differences: list[str] = []
    for line, messages in sorted(found.items()):
        if line not in expected:
            differences.extend(f"{program.where(line)}: unexpected {text}" for text in messages)
        elif exact_codes:
            codes = {text[1 : text.index("]")] for text in messages}
            if codes != expected[line]:
                differences.append(
                    f"{program.where(line)}: expected {sorted(expected[line])}, got {messages}"
                )
    differences.extend(
        f"{program.where(line)}: expected an error {sorted(codes)}, none reported"
        for line, codes in sorted(expected.items())
        if line not in found
    )
    return differences


@pytest.mark.parametrize("program", by_name(MYPY))
def test_mypy_strict_with_the_plugin(
    program: Program, mypy_errors: dict[str, dict[int, list[str]]]
) -> None:
    differences = unexpected(program, mypy_errors.get(program.module, {}), exact_codes=True)
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("program", by_name(PYRIGHT))
def test_basedpyright(program: Program, pyright_errors: dict[str, dict[int, list[str]]]) -> None:
    differences = unexpected(program, pyright_errors.get(program.module, {}), exact_codes=False)
    assert not differences, "\n".join(differences)
