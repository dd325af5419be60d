"""Routed reads and writes: sa_async against SQLAlchemy's ext.asyncio, both running the
read-replica recipe (``examples/scaling/routing.py``) on a PostgreSQL primary and its streaming
replica.

Each layer's sessionmaker is configured as the recipe says, on the same engines and the same
``ReplicaSet``: ``async_sessionmaker(primary, sync_session_class=RoutingSession,
replicas=ReplicaSet(replica))``; only the async session around ``RoutingSession`` differs. The
operations (``OPERATIONS``) run on both layers interleaved in rounds, as in ``bench.runtime``:
a sample is many iterations timed together, setup outside the timed region, and the report gives
the median CPU time per operation (this process only: the servers' work is not in it) and the
median of the per-round ratios sa_async / SQLAlchemy with their interquartile range, wall time as
a second column.

Before timing anything, each layer's sessions are asked which server they read from
(``pg_is_in_recovery()``, routed and with ``primary=True``), and every operation runs once on
each layer with the statements of both engines recorded: all of them must reach the server the
operation is meant for, and both layers must send the same ones. The listeners are removed
before the rounds start.

Run from the repository root (``--help`` for every option)::

    .venv/bin/python -m bench.routing              # ~20 s, starts a primary and a replica
    .venv/bin/python -m bench.routing --quick      # smoke run, ~3 s
    .venv/bin/python -m bench.routing --primary-url URL --replica-url URL

It writes the results as JSON (``--output``) and a Markdown table beside it, and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import greenlet  # type: ignore[import-untyped]
import sqlalchemy
from sqlalchemy import Boolean, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio

import sa_async
from bench._operations import (
    SEED_ROWS,
    SELECT_MANY,
    SELECT_ONE,
    Base,
    Clock,
    Item,
    Samples,
    User,
    calibrated_iterations,
)
from bench._report import quartiles, sa_async_provenance, write_results
from examples.scaling.routing import PRIMARY, ReplicaSet, RoutingSession

REPOSITORY = Path(__file__).resolve().parents[1]
LAYERS = ("sa_async", "sqlalchemy")
SERVERS = ("primary", "replica")
DEFAULT_OUTPUT = REPOSITORY / "bench" / "results" / "routing.json"
# Iterations of each operation in the routing check that precedes the rounds.
CHECK_ITERATIONS = 3
# True on a replica (a server in recovery), False on the primary; a plain SELECT, so routed as
# any read is.
ON_A_REPLICA = select(func.pg_is_in_recovery(type_=Boolean))

# An async_sessionmaker of either layer (they share one API: one function times both).
Maker = Any
Sample = Callable[[Maker, int, Clock], Awaitable[None]]


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    # The server every statement of the operation must reach: "replica" or "primary".
    server: str
    run: Sample
    max_iterations: int = 100_000


def _idents(n: int) -> list[int]:
    """``n`` primary keys of seeded users, in turn."""
    return [index % SEED_ROWS + 1 for index in range(n)]


def _new_items(n: int) -> list[Item]:
    return [Item(name=f"routed {index}") for index in range(n)]


async def _replica_get(maker: Maker, n: int, clock: Clock) -> None:
    idents = _idents(n)
    session = maker()
    # The transaction picks its replica on the first read; the loop times the reads after it.
    await session.get(User, 1, populate_existing=True)
    clock.start()
    for ident in idents:
        await session.get(User, ident, populate_existing=True)
    clock.stop()
    await session.close()


async def _replica_execute(maker: Maker, n: int, clock: Clock) -> None:
    session = maker()
    await session.execute(SELECT_ONE)
    clock.start()
    for _ in range(n):
        (await session.execute(SELECT_ONE)).scalar_one()
    clock.stop()
    await session.close()


async def _replica_scalars(maker: Maker, n: int, clock: Clock) -> None:
    session = maker()
    await session.execute(SELECT_ONE)
    clock.start()
    for _ in range(n):
        (await session.scalars(SELECT_MANY)).all()
    clock.stop()
    await session.close()


async def _replica_session_get(maker: Maker, n: int, clock: Clock) -> None:
    idents = _idents(n)
    clock.start()
    for ident in idents:
        async with maker() as session:
            await session.get(User, ident)
    clock.stop()


async def _primary_execute(maker: Maker, n: int, clock: Clock) -> None:
    session = maker()
    options = {PRIMARY: True}
    await session.execute(SELECT_ONE, execution_options=options)
    clock.start()
    for _ in range(n):
        (await session.execute(SELECT_ONE, execution_options=options)).scalar_one()
    clock.stop()
    await session.close()


async def _write_commit(maker: Maker, n: int, clock: Clock) -> None:
    items = _new_items(n)
    session = maker()
    clock.start()
    for item in items:
        session.add(item)
        await session.commit()
    clock.stop()
    await session.close()


async def _read_after_write(maker: Maker, n: int, clock: Clock) -> None:
    items = _new_items(n)
    clock.start()
    for item in items:
        async with maker() as session:
            session.add(item)
            await session.commit()
            # The session wrote: pinned to the primary, it reads its own write.
            await session.get(Item, item.id, populate_existing=True)
    clock.stop()


OPERATIONS = (
    Operation("replica_get", "get(), populate_existing", "replica", _replica_get),
    Operation("replica_execute_1", "execute() by primary key, 1 row", "replica", _replica_execute),
    Operation("replica_scalars_100", "scalars(), 100 rows", "replica", _replica_scalars),
    Operation(
        "replica_session_get", "new session + get() + close", "replica", _replica_session_get
    ),
    Operation(
        "primary_execute_1",
        "execute() by primary key, primary=True",
        "primary",
        _primary_execute,
    ),
    Operation("write_commit", "add(obj) + commit", "primary", _write_commit),
    Operation(
        "read_after_write",
        "new session + add + commit + get() + close",
        "primary",
        _read_after_write,
    ),
)
OPERATION_KEYS = tuple(operation.key for operation in OPERATIONS)


@dataclass
class Cluster:
    """Async engines on the primary and the replica, and the two layers' sessionmakers on them."""

    primary: sa_async.AsyncEngine
    replica: sa_async.AsyncEngine
    makers: dict[str, Maker] = field(init=False)

    def __post_init__(self) -> None:
        # One ReplicaSet, as an application has; both layers configured as the recipe says.
        # expire_on_commit=False, as async code usually has it: the read after a write
        # takes the new row's id after the commit without a refresh.
        replicas = ReplicaSet(self.replica)
        self.makers = {
            "sa_async": sa_async.async_sessionmaker(
                self.primary,
                sync_session_class=RoutingSession,
                replicas=replicas,
                expire_on_commit=False,
            ),
            "sqlalchemy": sqlalchemy_asyncio.async_sessionmaker(
                self.primary,
                sync_session_class=RoutingSession,
                replicas=replicas,
                expire_on_commit=False,
            ),
        }

    async def dispose(self) -> None:
        await self.primary.dispose()
        await self.replica.dispose()


async def seed(cluster: Cluster, timeout: float = 30.0) -> None:
    """Create the tables on the primary, store the users, and wait until the replica has them."""
    async with cluster.primary.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
        users = [{"id": ident, "name": f"user {ident}"} for ident in range(1, SEED_ROWS + 1)]
        await connection.execute(insert(User), users)
    count_users = select(func.count()).select_from(User)
    deadline = time.monotonic() + timeout
    while True:
        async with cluster.replica.connect() as connection:
            exists = await connection.scalar(text("SELECT to_regclass('bench_users') IS NOT NULL"))
            if exists and await connection.scalar(count_users) == SEED_ROWS:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the replica did not show the {SEED_ROWS} users in {timeout} s")
        await asyncio.sleep(0.05)


async def check_servers(cluster: Cluster) -> None:
    """Ask, through each layer's session, which server runs a routed read and a forced one."""
    for layer, maker in cluster.makers.items():
        async with maker() as session:
            routed = await session.scalar(ON_A_REPLICA)
            forced = await session.scalar(ON_A_REPLICA, execution_options={PRIMARY: True})
        if routed is not True or forced is not False:
            raise RuntimeError(
                f"{layer}: a routed read ran on a server in recovery: {routed} (must be True), "
                f"a primary=True read: {forced} (must be False); is --replica-url a replica?"
            )


def _recorder(statements: list[str]) -> Callable[..., None]:
    """A ``before_cursor_execute`` listener that appends each statement to ``statements``."""

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    return record


@asynccontextmanager
async def recorded(cluster: Cluster) -> AsyncIterator[dict[str, list[str]]]:
    """Record the statements each engine sends within the block, by server."""
    sent: dict[str, list[str]] = {server: [] for server in SERVERS}
    listeners = []
    for server, engine in (("primary", cluster.primary), ("replica", cluster.replica)):
        record = _recorder(sent[server])
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        listeners.append((engine, record))
    try:
        yield sent
    finally:
        for engine, record in listeners:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


async def check_routes(cluster: Cluster) -> dict[str, dict[str, dict[str, int]]]:
    """Run each operation once per layer with the statements recorded; check that all of them
    reached the operation's server and that both layers sent the same. Return the counts."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for operation in OPERATIONS:
        sent_by_layer = {}
        for layer, maker in cluster.makers.items():
            async with recorded(cluster) as sent:
                await operation.run(maker, CHECK_ITERATIONS, Clock())
            sent_by_layer[layer] = sent
            elsewhere = [server for server in SERVERS if server != operation.server]
            if not sent[operation.server] or any(sent[server] for server in elsewhere):
                raise RuntimeError(
                    f"{layer} / {operation.key}: must run on the {operation.server} only, "
                    f"sent {sent}"
                )
        if sent_by_layer["sa_async"] != sent_by_layer["sqlalchemy"]:
            raise RuntimeError(
                f"{operation.key}: the layers sent different statements: {sent_by_layer}"
            )
        counts[operation.key] = {
            layer: {server: len(statements) for server, statements in sent.items()}
            for layer, sent in sent_by_layer.items()
        }
    return counts


async def run_sample(maker: Maker, operation: Operation, n: int) -> Clock:
    clock = Clock()
    gc.collect()
    await operation.run(maker, n, clock)
    return clock


async def calibrate(cluster: Cluster, operation: Operation, sample_ns: int) -> int:
    """Return the iterations per sample of ``operation`` (both layers)."""

    async def sample(n: int) -> list[Clock]:
        return [await run_sample(maker, operation, n) for maker in cluster.makers.values()]

    return await calibrated_iterations(sample, sample_ns, operation.max_iterations)


async def measure(
    cluster: Cluster, rounds: int, sample_ns: int, progress: bool
) -> dict[str, Samples]:
    """Run every operation ``rounds`` times per layer, interleaved; the first layer alternates."""
    # What exists now is left out of every garbage collection (as in bench.runtime).
    gc.collect()
    gc.freeze()
    try:
        found = {
            operation.key: Samples(await calibrate(cluster, operation, sample_ns), LAYERS)
            for operation in OPERATIONS
        }
        for round_index in range(rounds):
            if progress:
                print(f"  round {round_index + 1}/{rounds}", file=sys.stderr)
            order = LAYERS if round_index % 2 == 0 else LAYERS[::-1]
            for operation in OPERATIONS:
                samples = found[operation.key]
                for layer in order:
                    clock = await run_sample(cluster.makers[layer], operation, samples.iterations)
                    samples.cpu_ns[layer].append(clock.cpu_ns / samples.iterations)
                    samples.wall_ns[layer].append(clock.wall_ns / samples.iterations)
        return found
    finally:
        gc.unfreeze()


def _ratios(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """Quartiles of the per-round ratios (each round's pair was measured side by side)."""
    return quartiles([top / bottom for top, bottom in zip(numerators, denominators, strict=True)])


def summarise(
    operation: Operation, samples: Samples, statements: dict[str, dict[str, int]]
) -> dict[str, Any]:
    cpu, wall = samples.cpu_ns, samples.wall_ns
    return {
        "key": operation.key,
        "label": operation.label,
        "server": operation.server,
        "iterations": samples.iterations,
        "checked_statements": statements,
        "cpu_ns": {layer: statistics.median(cpu[layer]) for layer in LAYERS},
        "wall_ns": {layer: statistics.median(wall[layer]) for layer in LAYERS},
        "ratios": {
            "cpu_vs_sqlalchemy": _ratios(cpu["sa_async"], cpu["sqlalchemy"]),
            "wall_vs_sqlalchemy": _ratios(wall["sa_async"], wall["sqlalchemy"]),
        },
        "samples": {
            kind: {layer: [round(value, 1) for value in values] for layer, values in found.items()}
            for kind, found in (("cpu_ns", cpu), ("wall_ns", wall))
        },
    }


def markdown_report(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; {results['rounds']} rounds of {results['sample_ms']:g} ms "
        f"samples; Python {results['python']}, SQLAlchemy {results['sqlalchemy']}, greenlet "
        f"{results['greenlet']}, asyncpg {results['asyncpg']}, PostgreSQL "
        f"{results['postgresql']}; {results['machine']}; {results['sa_async']}.",
        "",
        "Both layers run `examples/scaling/routing.py`'s `RoutingSession` on one primary and one "
        "streaming replica; every statement of each operation was checked to reach the server "
        "in the second column, on both layers. µs: median CPU time per operation (this process: "
        "the servers' work is not in it). Ratios: median of the per-round ratios (interquartile "
        "range in brackets); below 1 means sa_async is faster.",
        "",
        "| operation | runs on | sa_async µs | SQLAlchemy µs | sa_async / SQLAlchemy CPU "
        "| wall: / SQLAlchemy |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in results["operations"]:
        cpu, ratio = row["cpu_ns"], row["ratios"]["cpu_vs_sqlalchemy"]
        lines.append(
            f"| {row['label']} | {row['server']} | {cpu['sa_async'] / 1000:.1f} "
            f"| {cpu['sqlalchemy'] / 1000:.1f} "
            f"| {ratio['median']:.2f}x ({ratio['q1']:.2f}-{ratio['q3']:.2f}) "
            f"| {row['ratios']['wall_vs_sqlalchemy']['median']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def cluster_urls(
    primary_url: str | None, replica_url: str | None
) -> AsyncIterator[tuple[str, str]]:
    """Yield the URLs of the primary and the replica: those given, or a throw-away cluster's."""
    if primary_url is not None and replica_url is not None:
        yield primary_url, replica_url
        return
    from tests._pg import ReplicatedCluster, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(
            "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found: install "
            "PostgreSQL, or pass --primary-url and --replica-url."
        )
    servers = ReplicatedCluster(bindir)
    servers.start()
    try:
        yield servers.primary.url, servers.replica.url
    finally:
        servers.stop()


def _asyncpg_url(url: str) -> sqlalchemy.URL:
    return make_url(url).set(drivername="postgresql+asyncpg")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.routing",
        description="Routed reads and writes (examples/scaling/routing.py) on a PostgreSQL "
        "primary and replica: sa_async vs SQLAlchemy's ext.asyncio, CPU time ratios.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 rounds of 2 ms samples (seconds)"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 25; --quick 3)")
    parser.add_argument(
        "--sample-ms",
        type=float,
        help="wall time of one sample, the iterations timed together (default 50; --quick 2)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results JSON; the .md table goes beside it "
        f"(default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})",
    )
    parser.add_argument("--primary-url", help="the primary to use, with --replica-url")
    parser.add_argument(
        "--replica-url",
        help="a streaming replica of --primary-url; without both, a throw-away primary and "
        "replica are started",
    )
    arguments = parser.parse_args(argv)
    if (arguments.primary_url is None) != (arguments.replica_url is None):
        parser.error("--primary-url and --replica-url go together")
    return arguments


async def run(arguments: argparse.Namespace, command: str) -> dict[str, Any]:
    rounds = arguments.rounds or (3 if arguments.quick else 25)
    sample_ns = int((arguments.sample_ms or (2.0 if arguments.quick else 50.0)) * 1e6)
    async with cluster_urls(arguments.primary_url, arguments.replica_url) as urls:
        primary_url, replica_url = urls
        cluster = Cluster(
            sa_async.create_async_engine(_asyncpg_url(primary_url)),
            # As the recipe advises for replicas.
            sa_async.create_async_engine(_asyncpg_url(replica_url), pool_pre_ping=True),
        )
        try:
            print("setting up: seeding the primary, waiting for the replica", file=sys.stderr)
            await seed(cluster)
            async with cluster.primary.connect() as connection:
                server_version = await connection.scalar(text("SHOW server_version"))
            await check_servers(cluster)
            statements = await check_routes(cluster)
            found = await measure(cluster, rounds, sample_ns, progress=True)
            async with cluster.primary.begin() as connection:
                await connection.run_sync(Base.metadata.drop_all)
        finally:
            await cluster.dispose()
    return {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": rounds,
        "sample_ms": sample_ns / 1e6,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "greenlet": greenlet.__version__,
        "asyncpg": importlib.metadata.version("asyncpg"),
        "postgresql": server_version,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "sa_async": sa_async_provenance(),
        "operations": [
            summarise(operation, found[operation.key], statements[operation.key])
            for operation in OPERATIONS
        ],
    }


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    raw = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "-m", "bench.routing", *raw])
    write_results(arguments.output, asyncio.run(run(arguments, command)), markdown_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
