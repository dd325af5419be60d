"""A throw-away PostgreSQL server for the test session.

The server lives in a temporary directory, listens on 127.0.0.1 on a free port, trusts local
connections and is stopped (and its directory removed) by ``stop()``. PostgreSQL refuses to run as
root, so when the tests run as root every server command runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None when not installed."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One initdb'd cluster, started and stopped by the caller."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = _free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="sa_async_pg_"))
        self.datadir = self.workdir / "data"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The asyncpg URL of the ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.workdir)

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-w",
            "-l",
            str(self.workdir / "server.log"),
            "start",
            "-o",
            options,
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
