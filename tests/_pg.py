"""A throw-away PostgreSQL server for the test session.

The server lives in a temporary directory, listens on 127.0.0.1 on a free port, trusts local
connections and is stopped (and its directory removed) by ``stop()``. ``halt()`` and ``start()``
stop and start it again on the same data and port, for the fault tests. PostgreSQL refuses to run
as root, so when the tests run as root every server command runs as the ``postgres`` user.

``ReplicatedCluster`` is a primary and a hot standby that streams its WAL (``ReplicaServer``,
made with ``pg_basebackup``), with what the replica tests need: wait until the replica has
replayed everything the primary committed, pause its replay to make replication lag real, and
halt or start it like any other server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``initdb``, ``pg_ctl`` and the other server binaries
    (``pg_basebackup``, ``psql``), or None when not installed."""
    on_path = shutil.which("initdb")
    if on_path:
        # A link on PATH (/usr/local/bin/initdb) leads to the directory with all of them.
        return Path(on_path).resolve().parent
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

    def query(self, sql: str) -> str:
        """Run ``sql`` with psql on a connection of its own; return the output, unaligned."""
        completed = subprocess.run(
            [
                str(self.bindir / "psql"),
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--username=postgres",
                "--dbname=postgres",
                f"--command={sql}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"psql on port {self.port} failed on {sql!r}: {completed.stderr}")
        return completed.stdout.strip()

    def is_running(self) -> bool:
        """Return True while the server runs (``pg_ctl status``)."""
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: "fast" cleanly, "immediate" as a crash would."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


# What a primary needs to stream its WAL, and what its replica copies (a hot standby refuses to
# start with max_connections, max_wal_senders... lower than its primary's). Commits wait for their
# WAL flush (synchronous_commit "on" is still local: no standby is waited for), so a committed
# transaction is already on its way to the replica.
REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "4",
    "max_replication_slots": "4",
    "synchronous_commit": "on",
}


class PrimaryServer(PostgresServer):
    """A server whose WAL streams to replicas that connect from 127.0.0.1 as ``postgres``."""

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        super().__init__(bindir, {**REPLICATION_SETTINGS, **(settings or {})})

    def _init_cluster(self) -> None:
        super()._init_cluster()
        # initdb --auth=trust already trusts replication connections from 127.0.0.1 for every
        # user; add the rule only if a packaged pg_hba.conf sample ever stops doing so.
        hba = self.datadir / "pg_hba.conf"
        rules = [line.split() for line in hba.read_text().splitlines()]
        if not any(
            rule[:2] == ["host", "replication"] and "127.0.0.1/32" in rule for rule in rules
        ):
            with hba.open("a") as hba_file:
                hba_file.write("host replication postgres 127.0.0.1/32 trust\n")


class ReplicaServer(PostgresServer):
    """A hot standby of ``primary``: read-only, replaying the WAL that the primary streams.

    Its data directory is a ``pg_basebackup`` of the primary, taken on first ``start()``, with
    ``standby.signal`` and the connection to the primary written (``-R``) and a replication
    slot of its own, so the primary keeps the WAL the replica has not received while it is
    halted. The primary must be running when the replica starts for the first time.
    """

    def __init__(self, primary: PrimaryServer) -> None:
        super().__init__(primary.bindir, primary.settings)
        self.primary = primary

    def _init_cluster(self) -> None:
        if self._as_root:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            "pg_basebackup",
            "--host=127.0.0.1",
            f"--port={self.primary.port}",
            "--username=postgres",
            f"--pgdata={self.datadir}",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--create-slot",
            f"--slot=replica_{self.port}",
            "--no-sync",
        )

    def wait_for_replay(self, timeout: float = 10.0) -> None:
        """Wait until the replica has replayed all the WAL the primary has flushed so far.

        Every transaction committed on the primary before the call is then visible on the
        replica. Raises ``TimeoutError`` (with both positions) after ``timeout`` seconds.
        """
        target = self.primary.query("SELECT pg_current_wal_flush_lsn()")
        deadline = time.monotonic() + timeout
        while self.query(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
            if time.monotonic() > deadline:
                replayed = self.query("SELECT pg_last_wal_replay_lsn()")
                raise TimeoutError(
                    f"the replica replayed the WAL up to {replayed}, not to the primary's "
                    f"{target}, within {timeout} s (is its replay paused?)"
                )
            time.sleep(0.01)

    @contextmanager
    def replay_paused(self) -> Iterator[None]:
        """Pause the replica's WAL replay within the block: it keeps receiving the primary's
        WAL but applies none of it, so the primary's commits stay invisible on the replica
        (replication lag, made real). Replay resumes when the block ends."""
        self.query("SELECT pg_wal_replay_pause()")
        try:
            # A pause is a request, granted between two WAL records: wait until it is.
            deadline = time.monotonic() + 10
            while self.query("SELECT pg_get_wal_replay_pause_state()") != "paused":
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not pause its WAL replay within 10 s")
                time.sleep(0.01)
            yield
        finally:
            self.query("SELECT pg_wal_replay_resume()")


class ReplicatedCluster:
    """A primary and one streaming replica, each on a port of its own on 127.0.0.1."""

    def __init__(self, bindir: Path) -> None:
        self.primary = PrimaryServer(bindir)
        self.replica = ReplicaServer(self.primary)

    def start(self) -> None:
        """Start the primary, then the replica (cloned from it on first start); return when
        the replica has replayed everything the primary holds. Stops both if either fails."""
        try:
            self.primary.start()
            self.replica.start()
            self.replica.wait_for_replay()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop both servers (a replica left halted by a test too) and remove their directories."""
        failures: list[subprocess.CalledProcessError] = []
        for server in (self.replica, self.primary):
            try:
                if server.datadir.exists() and server.is_running():
                    server.halt()
            except subprocess.CalledProcessError as failure:
                failures.append(failure)
            shutil.rmtree(server.workdir, ignore_errors=True)
        if failures:
            raise failures[0]
