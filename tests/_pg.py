"""A throw-away PostgreSQL server for the test session.

The server lives in a temporary directory, listens on 127.0.0.1 on a free port, trusts local
connections and is stopped (and its directory removed) by ``stop()``. ``halt()`` and ``start()``
stop and start it again on the same data and port, for the fault tests. PostgreSQL refuses to run
as root, so when the tests run as root every server command runs as the ``postgres`` user.
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
    """One initdb'd cluster, started and stopped by the caller.

    ``settings`` override server settings (``{"synchronous_commit": "on"}``). By default the
    server trades durability for speed: a committed transaction survives a clean ``halt()``
    ("fast") but may be lost in an "immediate" one, which stops it as a crash would.
    """

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = {"synchronous_commit": "off", **(settings or {})}
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
        """Create the cluster on first use, then start the server."""
        if not self.datadir.exists():
            self._init_cluster()
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200 "
            f"{settings}"
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

    def _init_cluster(self) -> None:
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

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: "fast" cleanly, "immediate" as a crash would."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
