"""Print the lowest or the highest SQLAlchemy release that sa-async's requirement allows, among
those on the package index now, so that CI tests both edges of the supported range.

    python .ci/sqlalchemy_releases.py lowest|highest

Run it with the interpreter of a venv where sa-async is installed: the requirement is read from
the installed metadata, and only releases that this Python can install count.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.version import Version


def sqlalchemy_requirement() -> Requirement:
    for line in requires("sa-async") or []:
        requirement = Requirement(line)
        if requirement.name.lower() == "sqlalchemy" and requirement.marker is None:
            return requirement
    raise SystemExit("sa-async does not require sqlalchemy: is it installed in this venv?")


def index_releases() -> list[Version]:
    """The final releases of SQLAlchemy on the index (``pip index versions`` omits pre-releases).

    Its text output is read: ``--json`` needs pip 24, newer than the pip a fresh venv may have.
    """
    command = [sys.executable, "-m", "pip", "index", "versions", "sqlalchemy"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    listed = re.search(r"^Available versions: (.+)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or listed is None:
        raise SystemExit(
            f"{' '.join(command)} exited {completed.returncode} without a list of versions:\n"
            f"{completed.stdout}{completed.stderr}"
        )
    versions = [Version(text) for text in listed[1].split(", ")]
    return [version for version in versions if not version.is_prerelease]


def main() -> None:
    edge = sys.argv[1] if len(sys.argv) == 2 else ""
    if edge not in ("lowest", "highest"):
        raise SystemExit(__doc__)
    requirement = sqlalchemy_requirement()
    allowed = [version for version in index_releases() if version in requirement.specifier]
    if not allowed:
        raise SystemExit(f"no SQLAlchemy release on the index satisfies {requirement}")
    print(min(allowed) if edge == "lowest" else max(allowed))


if __name__ == "__main__":
    main()
