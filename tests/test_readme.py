"""The README's two set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_shows_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert "examples/quickstart.py" in commands[0] and "mypy" in commands[0]
    assert commands[1] == ".venv/bin/python -m pytest"


def test_ci_runs_the_readme_commands_verbatim() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in readme_commands():
        assert command in ci_lines, f"CI does not run the README command: {command}"
