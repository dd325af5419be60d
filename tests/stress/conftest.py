"""Shared by the stress tests: printing their figures, the ledger of commits, and a PostgreSQL
server of their own that the fault tests may kill and restart."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from sa_async import AsyncEngine
from tests._pg import PostgresServer, find_pg_bindir
from tests.conftest import IN_CI
from tests.models import User

Report = Callable[[str], None]


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print a line of figures, even when pytest captures the output."""

    def print_line(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}")

    return print_line


@pytest.fixture
def fault_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for one fault test, which may stop and restart it.

    Unlike the session's server it waits for the commit record to be written before reporting a
    commit (``synchronous_commit=on``), so a commit it reported survives a crash of the server.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if IN_CI:
            pytest.fail(f"{message}; CI must install the 'postgresql' package")
        pytest.skip(message)
    server = PostgresServer(bindir, settings={"synchronous_commit": "on"})
    server.start()
    try:
        yield server
    finally:
        # Already down if the test failed between a halt() and a start().
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()


class LedgerSession(Session):
    """The sync session of the stress tests: records each transaction that committed, by the
    ``tag`` in its ``info``, when SQLAlchemy reports the commit done (``after_commit``)."""


@dataclass
class Ledger:
    """What each task was told, and what SQLAlchemy reported, about its transaction."""

    # after_commit fired: the database acknowledged the COMMIT.
    committed: set[str] = field(default_factory=set)
    # commit() (or the begin() block) returned to the task without an exception.
    reported: set[str] = field(default_factory=set)
    # The COMMIT was sent but its answer was lost with the connection: stored or not.
    in_doubt: set[str] = field(default_factory=set)

    def listen(self) -> Callable[[], None]:
        """Record commits of LedgerSession sessions; returns the function that stops it."""

        def after_commit(session: Session) -> None:
            tag = session.info.get("tag")
            if tag is not None:
                self.committed.add(tag)

        event.listen(LedgerSession, "after_commit", after_commit)
        return lambda: event.remove(LedgerSession, "after_commit", after_commit)


async def stored_tags(engine: AsyncEngine) -> set[str]:
    """The tags (user names) the database holds, read on a connection of its own."""
    async with engine.connect() as connection:
        return set((await connection.scalars(select(User.name))).all())


@contextlib.contextmanager
def logged_problems() -> Iterator[list[str]]:
    """Collect SQLAlchemy's log records of WARNING and above (the pool logs a failed reset or
    close of a connection there, instead of raising)."""
    problems: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            problems.append(f"log: {record.name}: {record.getMessage()}")

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("sqlalchemy")
    logger.addHandler(handler)
    try:
        yield problems
    finally:
        logger.removeHandler(handler)
