"""Read replicas: the recipe of examples/scaling/ on a real primary and its streaming replica.

Where a statement ran is asked of the server itself (``pg_is_in_recovery()`` is true on the
replica only) and read from the statements each engine sent. Replication lag is made real by
pausing the replica's WAL replay; the replica is halted mid-run for the failover tests. The
recipe and its demo type-check (``mypy --strict`` with the plugin, basedpyright), and the demo
runs against the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_type

import pytest
from sqlalchemy import Boolean, delete, event, exc, func, insert, select, text, update
from sqlalchemy.util import await_

from examples.scaling.routing import ReplicaSet, RoutingSession
from sa_async import (
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)
from sa_async._completion import COMMITTED_NOTE
from tests._pg import ReplicatedCluster
from tests.conftest import checked_out, recreate_tables
from tests.models import User

ROOT = Path(__file__).resolve().parent.parent
ROUTING_LOGGER = "examples.scaling.routing"
Routed = AsyncSession[RoutingSession]
Maker = async_sessionmaker[Routed]
Operation = Callable[[Routed, int], Awaitable[object]]

# True on a replica (a server in recovery), False on the primary; a plain SELECT, so routed
# as any read is.
ON_A_REPLICA = select(func.pg_is_in_recovery(type_=Boolean))


async def server_of(session: Routed) -> str:
    """Where the session's next SELECT runs, as the server that runs it says."""
    return "replica" if await session.scalar(ON_A_REPLICA) else "primary"


def recorder(statements: list[str]) -> Callable[..., None]:
    """A ``before_cursor_execute`` listener that appends each statement to ``statements``."""

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    return record


@dataclass
class Servers:
    """Async engines on the primary and on the replica, and the statements each one sent."""

    cluster: ReplicatedCluster
    primary: AsyncEngine
    replica: AsyncEngine
    sent: dict[str, list[str]] = field(default_factory=lambda: {"primary": [], "replica": []})

    def record(self) -> None:
        """Record the SQL each engine sends from now on (upper case, on one line)."""
        for name, engine in (("primary", self.primary), ("replica", self.replica)):
            event.listen(engine.sync_engine, "before_cursor_execute", recorder(self.sent[name]))

    def writes_sent_to_the_replica(self) -> list[str]:
        """The replica's statements that are neither plain reads nor savepoints (there must
        be none)."""
        return [
            sql
            for sql in self.sent["replica"]
            if not sql.startswith(("SELECT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))
            or "FOR UPDATE" in sql
            or "FOR SHARE" in sql
        ]

    def checked_out(self) -> tuple[int, int]:
        return checked_out(self.primary), checked_out(self.replica)

    async def halt_replica(self) -> None:
        await asyncio.to_thread(self.cluster.replica.halt)

    async def replica_caught_up(self) -> None:
        """Start the replica if halted; return once it has replayed all of the primary's WAL."""
        if not await asyncio.to_thread(self.cluster.replica.is_running):
            await asyncio.to_thread(self.cluster.replica.start)
        await asyncio.to_thread(self.cluster.replica.wait_for_replay)

    async def names_on_the_primary(self) -> list[str]:
        async with self.primary.connect() as connection:
            return list((await connection.scalars(select(User.name).order_by(User.id))).all())


@asynccontextmanager
async def open_servers(cluster: ReplicatedCluster, **engine_kw: Any) -> AsyncIterator[Servers]:
    """Engines on both servers (``engine_kw`` for both), with the test tables created empty
    on the primary and replayed on the replica; dropped and disposed afterwards, the replica
    started again if a test left it halted."""
    servers = Servers(
        cluster,
        create_async_engine(cluster.primary.url, **engine_kw),
        # pre-ping: a pooled connection to a halted replica is noticed at checkout, where the
        # routing session can still fall back to the primary.
        create_async_engine(cluster.replica.url, pool_pre_ping=True, **engine_kw),
    )
    try:
        await recreate_tables(servers.primary)
        await servers.replica_caught_up()
        servers.record()
        yield servers
    finally:
        try:
            await servers.replica_caught_up()
            await recreate_tables(servers.primary, create=False)
        finally:
            await servers.primary.dispose()
            await servers.replica.dispose()


@pytest.fixture
async def servers(replicated_cluster: ReplicatedCluster) -> AsyncIterator[Servers]:
    async with open_servers(replicated_cluster) as opened:
        yield opened


def routing_maker(servers: Servers, retry_after: float = 0.0) -> Maker:
    """A sessionmaker of routing sessions on ``servers``."""
    replicas = ReplicaSet(servers.replica, retry_after=retry_after)
    maker = async_sessionmaker(
        servers.primary, sync_session_class=RoutingSession, replicas=replicas
    )
    assert_type(maker, async_sessionmaker[AsyncSession[RoutingSession]])
    return maker


@pytest.fixture
def maker(servers: Servers) -> Maker:
    """Routing sessions that try the replica again at once after it refused a connection."""
    return routing_maker(servers)


async def stored_user(servers: Servers, maker: Maker, name: str = "ada") -> int:
    """Store a user; return its id once the replica has it too."""
    async with maker.begin() as session:
        user = User(name=name)
        session.add(user)
        await session.flush()
        user_id = user.id
    await servers.replica_caught_up()
    return user_id


def routing_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == ROUTING_LOGGER]


# -- where statements run


async def test_a_select_runs_on_the_replica_and_what_writes_on_the_primary(
    servers: Servers, maker: Maker
) -> None:
    async with maker() as session:
        assert_type(session, AsyncSession[RoutingSession])
        assert_type(session.sync_session, RoutingSession)
        assert isinstance(session.sync_session, RoutingSession)
        assert await server_of(session) == "replica"
        assert (await session.scalars(select(User))).all() == []
        session.add(User(name="ada"))
        await session.flush()
        # It wrote: the rest of its work reads its own writes, on the primary.
        assert session.sync_session.pinned_to_primary
        assert await server_of(session) == "primary"
        assert (await session.scalars(select(User.name))).all() == ["ada"]
        await session.commit()
        assert await server_of(session) == "primary"
    async with maker() as session:
        # A new session reads on the replica again.
        assert await server_of(session) == "replica"
    assert any(sql.startswith("INSERT INTO USERS") for sql in servers.sent["primary"])
    assert servers.writes_sent_to_the_replica() == []
    assert servers.checked_out() == (0, 0)
    assert await servers.names_on_the_primary() == ["ada"]


async def test_the_replica_is_a_read_only_hot_standby(servers: Servers) -> None:
    # What the routing protects against: a write sent to the replica fails there.
    async with servers.replica.connect() as connection:
        with pytest.raises(exc.DBAPIError, match="read-only transaction"):
            await connection.execute(text("INSERT INTO users (name) VALUES ('lost')"))


async def flush_a_new_user(session: Routed, user_id: int) -> None:
    session.add(User(name="new"))
    await session.flush()


async def commit_a_new_user(session: Routed, user_id: int) -> None:
    session.add(User(name="new"))
    await session.commit()


async def change_a_loaded_user(session: Routed, user_id: int) -> None:
    assert await server_of(session) == "replica"  # the user loads there
    user = await session.get_one(User, user_id)
    user.name = "changed"
    await session.commit()


async def delete_a_loaded_user(session: Routed, user_id: int) -> None:
    assert await server_of(session) == "replica"  # the user loads there
    await session.delete(await session.get_one(User, user_id))
    await session.commit()


async def insert_statement(session: Routed, user_id: int) -> None:
    await session.execute(insert(User).values(name="core"))


async def bulk_insert(session: Routed, user_id: int) -> None:
    await session.execute(insert(User), [{"name": "bulk 1"}, {"name": "bulk 2"}])


async def update_statement(session: Routed, user_id: int) -> None:
    await session.execute(update(User).where(User.id == user_id).values(name="updated"))


async def delete_statement(session: Routed, user_id: int) -> None:
    await session.execute(delete(User).where(User.id == user_id))


async def select_for_update(session: Routed, user_id: int) -> None:
    assert len((await session.scalars(select(User).with_for_update())).all()) == 1


async def select_for_share(session: Routed, user_id: int) -> None:
    await session.scalars(select(User).with_for_update(read=True))


async def get_for_update(session: Routed, user_id: int) -> None:
    assert await session.get(User, user_id, with_for_update=True) is not None


async def refresh_for_update(session: Routed, user_id: int) -> None:
    assert await server_of(session) == "replica"  # the user loads there, then locks on the primary
    await session.refresh(await session.get_one(User, user_id), with_for_update=True)


async def text_statement(session: Routed, user_id: int) -> None:
    await session.execute(text("UPDATE users SET bio = 'from text()'"))


# Each operation, and what it must send to the primary.
WRITES = [
    (flush_a_new_user, "INSERT INTO USERS"),
    (commit_a_new_user, "INSERT INTO USERS"),
    (change_a_loaded_user, "UPDATE USERS SET NAME"),
    (delete_a_loaded_user, "DELETE FROM USERS"),
    (insert_statement, "INSERT INTO USERS"),
    (bulk_insert, "INSERT INTO USERS"),
    (update_statement, "UPDATE USERS SET NAME"),
    (delete_statement, "DELETE FROM USERS"),
    (select_for_update, "FOR UPDATE"),
    (select_for_share, "FOR SHARE"),
    (get_for_update, "FOR UPDATE"),
    (refresh_for_update, "FOR UPDATE"),
    (text_statement, "UPDATE USERS SET BIO"),
]


@pytest.mark.parametrize(
    ("operation", "sql"), [pytest.param(*write, id=write[0].__name__) for write in WRITES]
)
async def test_nothing_that_writes_or_locks_reaches_the_replica(
    servers: Servers, maker: Maker, operation: Operation, sql: str
) -> None:
    user_id = await stored_user(servers, maker)
    servers.sent["primary"].clear()
    async with maker() as session:
        await operation(session, user_id)
        # It wrote or locked rows: the session stays on the primary.
        assert await server_of(session) == "primary"
        await session.commit()
    assert any(sql in sent for sent in servers.sent["primary"]), servers.sent["primary"]
    assert servers.writes_sent_to_the_replica() == []
    assert servers.checked_out() == (0, 0)


async def test_savepoints_span_the_reads_on_the_replica_and_the_writes_on_the_primary(
    servers: Servers, maker: Maker
) -> None:
    async with maker() as session:
        async with session.begin_nested():
            assert await server_of(session) == "replica"
            session.add(User(name="kept"))
        savepoint = await session.begin_nested()
        session.add(User(name="undone"))
        await session.flush()
        await savepoint.rollback()
        await session.commit()
    assert "SAVEPOINT SA_SAVEPOINT_1" in servers.sent["replica"]
    assert "ROLLBACK TO SAVEPOINT SA_SAVEPOINT_2" in servers.sent["primary"]
    assert servers.writes_sent_to_the_replica() == []
    assert servers.checked_out() == (0, 0)
    assert await servers.names_on_the_primary() == ["kept"]


# -- the primary on request


FORCED_READS: dict[str, Callable[[Routed], Awaitable[bool | None]]] = {
    "statement option": lambda session: session.scalar(
        ON_A_REPLICA.execution_options(primary=True)
    ),
    "call option": lambda session: session.scalar(
        ON_A_REPLICA, execution_options={"primary": True}
    ),
    "bind argument": lambda session: session.scalar(ON_A_REPLICA, bind_arguments={"primary": True}),
}


@pytest.mark.parametrize("how", FORCED_READS)
async def test_a_read_forced_to_the_primary_leaves_the_next_ones_on_the_replica(
    servers: Servers, maker: Maker, how: str
) -> None:
    async with maker() as session:
        assert await FORCED_READS[how](session) is False
        assert not session.sync_session.pinned_to_primary
        assert await server_of(session) == "replica"


async def test_use_primary_sends_the_reads_of_its_block_to_the_primary(
    servers: Servers, maker: Maker
) -> None:
    async with maker() as session:
        with session.sync_session.use_primary():
            assert await server_of(session) == "primary"
            with session.sync_session.use_primary():
                assert await server_of(session) == "primary"
            assert await server_of(session) == "primary"
        assert await server_of(session) == "replica"


async def test_a_session_with_the_primary_option_reads_only_on_the_primary(
    servers: Servers, maker: Maker
) -> None:
    async with maker(execution_options={"primary": True}) as session:
        assert await server_of(session) == "primary"
        assert (await session.scalars(select(User))).all() == []
    assert servers.sent["replica"] == []


async def test_reads_forced_to_the_primary_see_writes_the_replica_has_not_replayed(
    servers: Servers, maker: Maker
) -> None:
    name = select(User.name).where(User.name == "lagging")
    with servers.cluster.replica.replay_paused():
        async with maker() as session:
            user = User(name="lagging")
            session.add(user)
            await session.commit()
            # The session that wrote reads on the primary: its expired object reloads there.
            await session.refresh(user)
            assert user.name == "lagging"
        async with maker() as session:
            assert await server_of(session) == "replica"
            assert await session.scalar(name) is None  # the replica lags behind
            assert await session.scalar(name, execution_options={"primary": True}) == "lagging"
            with session.sync_session.use_primary():
                assert await session.scalar(name) == "lagging"
    await servers.replica_caught_up()  # replayed since the block ended
    async with maker() as session:
        assert await server_of(session) == "replica"
        assert await session.scalar(name) == "lagging"
    assert servers.checked_out() == (0, 0)


# -- a replica that goes away


async def test_reads_fail_over_to_the_primary_when_the_replica_is_halted_mid_run(
    servers: Servers, maker: Maker, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = await stored_user(servers, maker)
    async with maker() as session:
        assert await server_of(session) == "replica"  # the replica's pool keeps a connection
    await servers.halt_replica()
    with caplog.at_level(logging.WARNING, logger=ROUTING_LOGGER):
        async with maker() as session:
            assert await server_of(session) == "primary"
            user = await session.get_one(User, user_id)
            assert user.name == "ada"
            assert not session.sync_session.pinned_to_primary
            await session.commit()
    assert servers.checked_out() == (0, 0)
    # Each read tried the replica (retry_after=0), and said so.
    warnings = routing_warnings(caplog)
    assert len(warnings) == 2, warnings
    for warning in warnings:
        assert f":{servers.cluster.replica.port}/postgres refused a connection" in warning
    await servers.replica_caught_up()
    async with maker() as session:
        assert await server_of(session) == "replica"
    assert servers.checked_out() == (0, 0)


async def test_a_transaction_on_a_replica_halted_under_it_fails_with_the_drivers_error(
    servers: Servers, maker: Maker
) -> None:
    async with maker() as session:
        assert await server_of(session) == "replica"
        await servers.halt_replica()
        # Its connection died in use: the statement's error, not a silent retry elsewhere.
        with pytest.raises(exc.DBAPIError) as raised:
            await session.scalar(select(func.count(User.id)))
        assert raised.value.connection_invalidated
        await session.rollback()
        assert servers.checked_out() == (0, 0)
        # The next transaction fails over.
        assert await server_of(session) == "primary"
    assert servers.checked_out() == (0, 0)


async def test_a_replica_down_from_the_start_with_one_connection_per_pool(
    replicated_cluster: ReplicatedCluster, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_servers(
        replicated_cluster, pool_size=1, max_overflow=0, pool_timeout=5
    ) as servers:
        await servers.halt_replica()
        # Skipped for a minute once refused: the later sessions do not try again.
        maker = routing_maker(servers, retry_after=60)
        with caplog.at_level(logging.WARNING, logger=ROUTING_LOGGER):
            for name in ("ada", "bob", "cy"):
                async with maker() as session:
                    assert await server_of(session) == "primary"
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    await session.refresh(user)
                assert servers.checked_out() == (0, 0)
        assert len(routing_warnings(caplog)) == 1
        assert await servers.names_on_the_primary() == ["ada", "bob", "cy"]
        assert servers.sent["replica"] == []
        # Back up: one connection each way serves a session that reads, writes, then reads.
        await servers.replica_caught_up()
        async with routing_maker(servers)() as session:
            assert await server_of(session) == "replica"
            assert len((await session.scalars(select(User))).all()) == 3
            session.add(User(name="dee"))
            await session.commit()
            assert await server_of(session) == "primary"
        assert servers.checked_out() == (0, 0)


# -- the session's other doors: run_sync, the scoped registry, cancellation


def names_and_whether_on_a_replica(session: RoutingSession) -> tuple[list[str], bool]:
    names = list(session.scalars(select(User.name).order_by(User.name)))
    return names, bool(session.scalar(ON_A_REPLICA))


async def test_run_sync_passes_the_routing_session(servers: Servers, maker: Maker) -> None:
    await stored_user(servers, maker, "ada")
    async with maker() as session:
        result = await session.run_sync(names_and_whether_on_a_replica)
        assert_type(result, tuple[list[str], bool])
        assert result == (["ada"], True)
        with session.sync_session.use_primary():
            assert await session.run_sync(names_and_whether_on_a_replica) == (["ada"], False)
    assert servers.checked_out() == (0, 0)


async def test_a_scoped_registry_routes_each_tasks_session(servers: Servers, maker: Maker) -> None:
    scoped = async_scoped_session(maker, asyncio.current_task)
    assert_type(scoped, async_scoped_session[AsyncSession[RoutingSession]])
    assert_type(scoped.sync_session, RoutingSession)
    assert isinstance(scoped.sync_session, RoutingSession)

    async def in_a_task_of_its_own() -> bool | None:
        try:
            return await scoped.scalar(ON_A_REPLICA)
        finally:
            await scoped.remove()

    try:
        assert await scoped.scalar(ON_A_REPLICA) is True
        scoped.add(User(name="scoped"))
        await scoped.commit()
        assert await scoped.scalar(ON_A_REPLICA) is False  # this task's session wrote
        assert await asyncio.create_task(in_a_task_of_its_own()) is True
    finally:
        await scoped.remove()
    assert servers.checked_out() == (0, 0)
    assert await servers.names_on_the_primary() == ["scoped"]


@asynccontextmanager
async def held(
    engine: AsyncEngine, event_name: str, started: asyncio.Event
) -> AsyncIterator[asyncio.Event]:
    """Hold ``engine``'s connections at ``event_name`` (inside the bridge) until released."""
    release = asyncio.Event()

    def hold(*args: Any) -> None:
        if not release.is_set():
            started.set()
            await_(release.wait())

    event.listen(engine.sync_engine, event_name, hold)
    try:
        yield release
    finally:
        release.set()
        event.remove(engine.sync_engine, event_name, hold)


@pytest.mark.parametrize(
    ("server", "event_name", "committed"),
    [
        ("primary", "commit", True),
        ("replica", "commit", True),
        ("primary", "before_cursor_execute", False),
    ],
    ids=["at the primary's COMMIT", "at the replica's COMMIT", "in the flush"],
)
async def test_a_routed_commit_cancelled_midway_leaves_no_connection_checked_out(
    servers: Servers, maker: Maker, server: str, event_name: str, committed: bool
) -> None:
    started = asyncio.Event()
    async with maker() as session:
        assert await server_of(session) == "replica"  # the transaction holds both servers
        assert await session.scalar(ON_A_REPLICA.execution_options(primary=True)) is False
        session.add(User(name="cancelled"))
        async with held(getattr(servers, server), event_name, started) as release:
            commit = asyncio.create_task(session.commit())
            await started.wait()
            commit.cancel()
            release.set()
            with pytest.raises(asyncio.CancelledError) as raised:
                await commit
    assert commit.cancelled()
    assert getattr(raised.value, "__notes__", None) == ([COMMITTED_NOTE] if committed else None)
    assert servers.checked_out() == (0, 0)
    assert await servers.names_on_the_primary() == (["cancelled"] if committed else [])


def test_routing_session_refuses_a_maker_without_the_primary() -> None:
    maker = async_sessionmaker(sync_session_class=RoutingSession, replicas=ReplicaSet())
    with pytest.raises(exc.ArgumentError, match="needs the primary's engine as its bind"):
        maker()


# -- the example itself

DEMO_OUTPUT = """\
a SELECT runs on the replica: True
committed 2 orders on the primary
read from the primary at once: [('cake', 1), ('tea', 2)]
inside use_primary(), a SELECT runs on the replica: False
after it, a SELECT runs on the replica: True
the replica has caught up: 2 orders
after its commit, the session reads on the replica: False
and sees its own write: tea 3
"""


def test_the_demo_runs_on_the_cluster(replicated_cluster: ReplicatedCluster) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "examples.scaling"],
        cwd=ROOT,
        env={
            **os.environ,
            "PRIMARY_URL": replicated_cluster.primary.url,
            "REPLICA_URL": replicated_cluster.replica.url,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (completed.returncode, completed.stderr) == (0, ""), completed.stderr
    assert completed.stdout == DEMO_OUTPUT


def test_the_recipe_and_demo_type_check_with_mypy_and_basedpyright() -> None:
    # Both at once: each takes seconds, mostly loading SQLAlchemy's types.
    checks = [
        subprocess.Popen(
            [sys.executable, "-m", *command, "examples/scaling"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in (
            ["mypy", "--strict"],
            ["basedpyright", "--pythonpath", sys.executable],
        )
    ]
    mypy_output, _ = checks[0].communicate(timeout=300)
    pyright_output, _ = checks[1].communicate(timeout=300)
    assert checks[0].returncode == 0 and "Success: no issues found" in mypy_output, mypy_output
    assert checks[1].returncode == 0 and "0 errors, 0 warnings" in pyright_output, pyright_output
