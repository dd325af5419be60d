"""The scoped registries' types: ``scoping_assert_types.py`` passes ``mypy --strict``.

Run from the repository root, where the pyproject's ``mypy_path`` puts the stubs in front of the
runtime package and enables the plugin, as an installed wheel does for users.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = Path("typing_tests") / "scoping_assert_types.py"


def test_scoping_assert_types_pass_mypy_strict() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(CASES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"mypy --strict {CASES} failed:\n{output}"
    assert "Success: no issues found in 1 source file" in output, output
