"""Faults on a PostgreSQL server of the tests' own: backends terminated mid-transaction
(``pg_terminate_backend``) and a crash and restart of the server, alone and under load.

The sessions hit raise clear errors (SQLAlchemy's DBAPIError family, or the OSError of a refused
connection while the server is down); nothing whose commit was reported is lost; nothing whose
transaction never sent its COMMIT appears (a COMMIT whose answer was lost with the connection
is "in doubt": either outcome is correct, and the figures count both); no connection is left
checked out; and new sessions work once the server is back, through pool pre-ping or through
the pool invalidation that follows a disconnect error."""

from __future__ import annotations

import asyncio
import collections
import random
import time

import pytest
from sqlalchemy import NullPool, select, text
from sqlalchemy import exc as sa_exc

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from tests._pg import PostgresServer
from tests.conftest import checked_out, recreate_tables
from tests.models import User
from tests.scoping_support import recorded_problems
from tests.stress.conftest import Ledger, LedgerSession, Report, logged_problems, stored_tags

APPLICATION = "sa_async faults"
WORKERS = 24
POOL_SIZE = 8
LOAD_SECONDS = 6.0
RESTART_AT_SECONDS = 2.5
TERMINATE_EVERY_SECONDS = 0.05


def app_engine(server: PostgresServer, *, pre_ping: bool) -> AsyncEngine:
    return create_async_engine(
        server.url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": {"application_name": APPLICATION}},
    )


def admin_engine(server: PostgresServer) -> AsyncEngine:
    return create_async_engine(server.url, poolclass=NullPool)


async def terminate_backends(admin: AsyncEngine, *, count: int, rng: random.Random) -> int:
    """Terminate up to ``count`` of the application's backends that are inside a transaction."""
    async with admin.connect() as connection:
        pids = list(
            await connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                    "AND state IN ('active', 'idle in transaction') ORDER BY pid"
                ),
                {"name": APPLICATION},
            )
        )
        chosen = rng.sample(pids, min(count, len(pids)))
        for pid in chosen:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return len(chosen)


def is_clear(error: BaseException) -> bool:
    """SQLAlchemy's wrapped driver errors, or the OSError of a refused connection."""
    return isinstance(error, (sa_exc.DBAPIError, OSError))


async def test_backends_terminated_mid_transaction_and_a_restart_lose_nothing(
    fault_server: PostgresServer, report: Report
) -> None:
    admin = admin_engine(fault_server)
    await recreate_tables(admin)
    pinged = app_engine(fault_server, pre_ping=True)
    unpinged = app_engine(fault_server, pre_ping=False)
    ledger = Ledger()
    stop_listening = ledger.listen()
    try:
        # Six sessions, each inside a transaction with a row written; then three of their
        # backends are terminated and every session tries to commit.
        async def open_transaction(tag: str) -> AsyncSession:
            session = AsyncSession(pinged, sync_session_class=LedgerSession, info={"tag": tag})
            session.add(User(name=tag))
            await session.flush()
            return session

        sessions = [await open_transaction(f"open-{index}") for index in range(6)]
        pids = [await session.scalar(text("SELECT pg_backend_pid()")) for session in sessions]
        async with admin.connect() as connection:
            for pid in pids[:3]:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        errors: list[BaseException] = []
        for session in sessions:
            try:
                await session.commit()
                ledger.reported.add(session.info["tag"])
            except sa_exc.DBAPIError as error:
                errors.append(error)
                # A clear error: the driver's, wrapped, saying the connection is gone.
                assert error.connection_invalidated
                await session.rollback()
            # The session works again, on a new connection.
            assert await session.scalar(text("SELECT 1")) == 1
            await session.close()
        assert len(errors) == 3
        assert ledger.reported == {"open-3", "open-4", "open-5"}
        assert await stored_tags(admin) == ledger.reported
        assert checked_out(pinged) == 0

        # Three sessions inside a transaction when the server crashes and comes back.
        sessions = [await open_transaction(f"crash-{index}") for index in range(3)]
        await asyncio.to_thread(fault_server.halt, "immediate")
        await asyncio.to_thread(fault_server.start)
        for session in sessions:
            with pytest.raises(sa_exc.DBAPIError) as crashed:
                await session.commit()
            assert crashed.value.connection_invalidated
            await session.close()
        assert checked_out(pinged) == 0
        # With pre-ping, the first session after the restart works at once.
        async with AsyncSession(pinged) as session:
            assert await session.scalar(text("SELECT 1")) == 1
        # Without it, the first use of a stale pooled connection raises the disconnect error,
        # which invalidates the whole pool: the next session works.
        async with AsyncSession(unpinged) as session:
            assert await session.scalar(text("SELECT 1")) == 1
        await asyncio.to_thread(fault_server.halt, "immediate")
        await asyncio.to_thread(fault_server.start)
        async with AsyncSession(unpinged) as session:
            with pytest.raises(sa_exc.DBAPIError) as stale:
                await session.scalar(text("SELECT 1"))
            assert stale.value.connection_invalidated
        async with AsyncSession(unpinged) as session:
            assert await session.scalar(text("SELECT 1")) == 1
        assert await stored_tags(admin) == ledger.reported == ledger.committed
        assert checked_out(unpinged) == 0
    finally:
        stop_listening()
        await pinged.dispose()
        await unpinged.dispose()
        await admin.dispose()
    report(
        "fault test on postgresql: 3 of 6 open transactions' backends terminated, then 3 open "
        "transactions through a server crash and restart: 6 clear errors "
        "(DBAPIError, connection invalidated), 3 commits kept, 0 lost or phantom rows, "
        "0 connections leaked; new sessions work after the restart with pre-ping at once, "
        "without it after one invalidating error"
    )


async def test_terminations_and_a_crash_under_load_lose_nothing(
    fault_server: PostgresServer, report: Report
) -> None:
    admin = admin_engine(fault_server)
    await recreate_tables(admin)
    engines = {"pre-ping": app_engine(fault_server, pre_ping=True)}
    engines["invalidation"] = app_engine(fault_server, pre_ping=False)
    makers = {
        name: async_sessionmaker(engine, sync_session_class=LedgerSession)
        for name, engine in engines.items()
    }
    ledger = Ledger()
    errors: collections.Counter[str] = collections.Counter()
    samples: dict[str, str] = {}
    unclear: list[BaseException] = []
    attempts = 0
    terminated = 0
    stop = asyncio.Event()
    rng = random.Random(7)

    async def worker(index: int) -> None:
        nonlocal attempts
        maker = makers["pre-ping" if index % 2 else "invalidation"]
        number = 0
        while not stop.is_set():
            tag = f"w{index}-{number}"
            number += 1
            attempts += 1
            phase = "begin"
            try:
                async with maker(info={"tag": tag}) as session:
                    session.add(User(name=tag))
                    await session.flush()
                    await session.scalar(select(User.id).where(User.name == tag))
                    phase = "commit"
                    await session.commit()
                ledger.reported.add(tag)
            except Exception as error:
                kind = f"{type(error).__name__} ({phase})"
                errors[kind] += 1
                samples.setdefault(kind, str(error).splitlines()[0][:160])
                if not is_clear(error):
                    unclear.append(error)
                if phase == "commit":
                    ledger.in_doubt.add(tag)
                await asyncio.sleep(0.01)

    async def terminator() -> None:
        nonlocal terminated
        while not stop.is_set():
            await asyncio.sleep(TERMINATE_EVERY_SECONDS)
            try:
                terminated += await terminate_backends(admin, count=2, rng=rng)
            except (sa_exc.DBAPIError, OSError):
                pass  # the server is restarting

    async def crash_and_restart() -> float:
        await asyncio.sleep(RESTART_AT_SECONDS)
        down = time.monotonic()
        await asyncio.to_thread(fault_server.halt, "immediate")
        await asyncio.to_thread(fault_server.start)
        return time.monotonic() - down

    stop_listening = ledger.listen()
    started = time.monotonic()
    try:
        with recorded_problems() as problems, logged_problems() as logged:
            tasks = [asyncio.create_task(worker(index)) for index in range(WORKERS)]
            tasks.append(asyncio.create_task(terminator()))
            restart = asyncio.create_task(crash_and_restart())
            await asyncio.sleep(LOAD_SECONDS)
            downtime = await restart
            stop.set()
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - started
            leaked = {name: checked_out(engine) for name, engine in engines.items()}
            # New sessions work on both engines now that the server is back: with pre-ping at
            # once; without it, after at most one disconnect error, which invalidates the pool
            # (a terminated backend may be waiting in it).
            stale = {name: 0 for name in makers}
            for name, maker in makers.items():
                for _ in range(POOL_SIZE * 2):
                    async with maker() as session:
                        try:
                            assert await session.scalar(text("SELECT 1")) == 1
                        except sa_exc.DBAPIError as error:
                            assert error.connection_invalidated
                            stale[name] += 1
        stored = await stored_tags(admin)
    finally:
        stop_listening()
        for engine in engines.values():
            await engine.dispose()
        await admin.dispose()

    lost = ledger.reported - stored
    phantom = stored - ledger.reported - ledger.in_doubt
    unacknowledged = ledger.committed - stored
    in_doubt_stored = len(ledger.in_doubt & stored)
    report(
        f"fault load test on postgresql: {WORKERS} workers for {elapsed:.1f} s, {attempts} "
        f"transactions, {terminated} backends terminated, 1 crash and restart "
        f"({downtime:.1f} s down); {len(ledger.reported)} commits reported, "
        f"{sum(errors.values())} clear errors ("
        + ", ".join(f"{name} {count}" for name, count in errors.most_common())
        + f"); rows checked: {len(stored)} stored against {attempts} ledger entries, "
        f"{len(lost)} lost, {len(phantom)} phantom, {len(ledger.in_doubt)} in doubt "
        f"({in_doubt_stored} stored); connections leaked: "
        + ", ".join(f"{name} {count}" for name, count in leaked.items())
        + f"; {len(problems)} warning(s), {len(logged)} pool error log(s); new sessions "
        f"afterwards: {POOL_SIZE * 2} per engine, "
        + ", ".join(f"{name} {count} stale-connection error(s)" for name, count in stale.items())
        + "\n  one message of each kind:\n"
        + "\n".join(f"  - {kind}: {message}" for kind, message in samples.items())
    )
    assert unclear == []
    assert terminated > 0 and ledger.reported and errors
    # Nothing committed is lost; nothing that never sent its COMMIT appears.
    assert lost == set() and unacknowledged == set()
    assert phantom == set()
    assert all(count == 0 for count in leaked.values())
    assert stale["pre-ping"] == 0 and stale["invalidation"] <= 1
    assert problems == []
