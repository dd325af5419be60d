"""What sa_async's misuse checks cost on the hot operations, on aiosqlite.

- The concurrent-use guard (``AsyncSession._enter``: one operation of one task at a time,
  refused before any IO), against the same session class with the guard taken out of the
  measured operations; also measured alone, in ns. One more baseline variant shows what running
  commits to completion under cancellation costs (``_RunToCompletion``: inline in the task, the
  cancellation deferred to the end).
- The attribute-load check (``ImplicitIOError`` before a lazy, expired or deferred load outside
  the bridge), against SQLAlchemy's unwrapped loader functions, and against the design it
  replaced: a ``do_orm_execute`` listener, which every ORM statement of every session pays.

SQLAlchemy's own ``ext.asyncio`` session runs beside them for reference. One process; the
variants of an operation run interleaved, in a rotating order, for ``--rounds`` rounds; a sample
is ``--iterations`` operations timed together with ``time.process_time`` (CPU time of every
thread, aiosqlite's worker included). The table gives the median per-operation time, the median
of the per-round ratios to the baseline with its interquartile range, and the baseline's own
round-to-round spread, the noise a difference must exceed to mean anything.

    .venv/bin/python -m bench.guard                   # about 2 minutes
    .venv/bin/python -m bench.guard --rounds 5 --iterations 50   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlalchemy
from sqlalchemy import ForeignKey, String, event, select
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    relationship,
)
from sqlalchemy.orm import loading as orm_loading
from sqlalchemy.orm import strategies as orm_strategies

import sa_async
import sa_async.exc
from sa_async import _compat
from sa_async._bridge import in_bridge, run_in_bridge
from sa_async._completion import RunToCompletion
from sa_async._identity import identity_map_hit


class Base(sa_async.AsyncAttrs, DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "guard_bench_parents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    children: Mapped[list[Child]] = relationship()


class Child(Base):
    __tablename__ = "guard_bench_children"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("guard_bench_parents.id"))


class UnguardedAsyncSession(sa_async.AsyncSession):
    """sa_async's AsyncSession with the concurrent-use guard taken out of the operations this
    benchmark runs (and of close, for the sessions' own clean-up): the baseline."""

    async def execute(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Any = None,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Any:
        result = await run_in_bridge(
            self.sync_session.execute,
            statement,
            params=params,
            execution_options={**(execution_options or {}), "prebuffer_rows": True},
            bind_arguments=bind_arguments,
            **kw,
        )
        assert _compat.server_side_cursor_of(result) is None
        return result

    async def scalar(
        self,
        statement: Any,
        params: Any | None = None,
        *,
        execution_options: Any = None,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Any:
        return await run_in_bridge(
            self.sync_session.scalar,
            statement,
            params=params,
            execution_options={**(execution_options or {}), "prebuffer_rows": True},
            bind_arguments=bind_arguments,
            **kw,
        )

    async def get(self, entity: Any, ident: Any, **options: Any) -> Any:
        # With sa_async's identity-map fast path, which the guard's check precedes.
        if not options:
            found = identity_map_hit(self.sync_session, entity, ident)
            if found is not None:
                return found
        return await run_in_bridge(self.sync_session.get, entity, ident, **options)

    # Forwarded as sa_async's compiled forwarders call on, only without the guard's check.
    def add(self, instance: object, _warn: bool = True) -> None:
        self.sync_session.add(instance, _warn=_warn)

    def expunge_all(self) -> None:
        self.sync_session.expunge_all()

    async def flush(self, objects: Any = None) -> None:
        await run_in_bridge(self.sync_session.flush, objects)

    # Run to completion as sa_async runs them (inline, the cancellation deferred to the end).
    async def commit(self) -> None:
        await RunToCompletion(run_in_bridge(self.sync_session.commit))

    async def close(self) -> None:
        if _compat.closes_without_io(self.sync_session):
            self.sync_session.close()
            return
        await RunToCompletion(run_in_bridge(self.sync_session.close))

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await run_in_bridge(fn, self.sync_session, *args, **kw)


class UnshieldedAsyncSession(UnguardedAsyncSession):
    """The baseline, with a commit that a cancellation would stop halfway (as SQLAlchemy's):
    what running commits to completion costs."""

    async def commit(self) -> None:
        await run_in_bridge(self.sync_session.commit)


SESSION_CLASSES: dict[str, Callable[..., Any]] = {
    "sa_async": sa_async.AsyncSession,
    "sa_async without guard": UnguardedAsyncSession,
    "(without guard, commit not run to completion)": UnshieldedAsyncSession,
    "sqlalchemy.ext.asyncio": sqlalchemy_asyncio.AsyncSession,
}

# One session per variant, kept open; an operation runs on it ``iterations`` times.
Operation = Callable[[Any, int], Awaitable[None]]


async def execute_one_row(session: Any, iterations: int) -> None:
    statement = select(Parent).where(Parent.id == 1)
    for _ in range(iterations):
        await session.execute(statement)


async def scalar(session: Any, iterations: int) -> None:
    statement = select(Parent.name).where(Parent.id == 1)
    for _ in range(iterations):
        await session.scalar(statement)


async def get_identity_map_hit(session: Any, iterations: int) -> None:
    parent = await session.get(Parent, 1)  # held: the identity map is weak
    for _ in range(iterations):
        await session.get(Parent, 1)
    del parent


async def add(session: Any, iterations: int) -> None:
    for _ in range(iterations):
        session.add(Parent(name="added"))
    session.expunge_all()


async def add_flush_commit(session: Any, iterations: int) -> None:
    for _ in range(iterations):
        session.add(Parent(name="committed"))
        await session.flush()
        await session.commit()


async def run_sync_trivial(session: Any, iterations: int) -> None:
    for _ in range(iterations):
        await session.run_sync(id)


GUARD_OPERATIONS: dict[str, Operation] = {
    "execute(), 1 row": execute_one_row,
    "scalar()": scalar,
    "get(), identity-map hit": get_identity_map_hit,
    "add()": add,
    "add + flush + commit": add_flush_commit,
    "run_sync(id)": run_sync_trivial,
}


async def lazy_load(session: Any, iterations: int) -> None:
    parent = await session.get(Parent, 1)
    for _ in range(iterations):
        session.expire(parent, ["children"])
        await parent.awaitable_attrs.children


async def expired_reload(session: Any, iterations: int) -> None:
    parent = await session.get(Parent, 1)
    for _ in range(iterations):
        session.expire(parent, ["name"])
        await parent.awaitable_attrs.name


CHECK_OPERATIONS: dict[str, Operation] = {
    "lazy relationship load": lazy_load,
    "expired attribute reload": expired_reload,
    "execute(), 1 row": execute_one_row,
}


@dataclass
class Row:
    operation: str
    variant: str
    median_us: float
    ratio: float | None
    ratio_iqr: tuple[float, float] | None
    spread_percent: float


def quartiles(values: list[float]) -> tuple[float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


async def measure(
    operations: dict[str, Operation],
    variants: dict[str, Callable[[], Any]],
    baseline: str,
    rounds: int,
    iterations: int,
) -> list[Row]:
    """Time each operation on each variant, interleaved; ``variants`` build sessions."""
    rows: list[Row] = []
    for operation_name, operation in operations.items():
        sessions = {name: build() for name, build in variants.items()}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for name, session in sessions.items():
            switch_on, switch_off = _switches.get(name, (_nothing, _nothing))
            switch_on()
            await operation(session, iterations)  # warm-up
            switch_off()
        for round_number in range(rounds):
            rotation = round_number % len(order)
            for name in order[rotation:] + order[:rotation]:
                switch_on, switch_off = _switches.get(name, (_nothing, _nothing))
                switch_on()
                gc.collect()
                started = time.process_time()
                await operation(sessions[name], iterations)
                samples[name].append((time.process_time() - started) / iterations * 1e6)
                switch_off()
        for session in sessions.values():
            await session.close()
        base = samples[baseline]
        base_q1, base_q3 = quartiles(base)
        spread = (base_q3 - base_q1) / statistics.median(base) * 100
        for name in variants:
            ratios = [mine / theirs for mine, theirs in zip(samples[name], base, strict=True)]
            rows.append(
                Row(
                    operation=operation_name,
                    variant=name,
                    median_us=statistics.median(samples[name]),
                    ratio=None if name == baseline else statistics.median(ratios),
                    ratio_iqr=None if name == baseline else quartiles(ratios),
                    spread_percent=spread,
                )
            )
    return rows


# Variants that need something switched on, then off again, around each of their samples.
_switches: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}


def _nothing() -> None:
    pass


def check_variants(engine: sa_async.AsyncEngine) -> dict[str, Callable[[], Any]]:
    """sa_async with its attribute-load check, without it, and with a do_orm_execute listener
    doing the same check (the design it replaced) instead."""
    checked = (orm_strategies._LazyLoader._emit_lazyload, orm_loading._load_on_ident)
    unchecked = tuple(cast(Any, function).__wrapped__ for function in checked)

    def install(functions: tuple[Any, ...]) -> None:
        orm_strategies._LazyLoader._emit_lazyload = functions[0]  # type: ignore[method-assign]
        orm_loading._load_on_ident = functions[1]

    def refuse_outside_the_bridge(state: ORMExecuteState) -> None:
        if in_bridge():
            return
        if state.is_relationship_load or state.is_column_load:
            raise sa_async.exc.ImplicitIOError("refused")

    def listen() -> None:
        install(unchecked)
        event.listen(Session, "do_orm_execute", refuse_outside_the_bridge)

    def unlisten() -> None:
        event.remove(Session, "do_orm_execute", refuse_outside_the_bridge)
        install(checked)

    _switches["sa_async without the check"] = (lambda: install(unchecked), lambda: install(checked))
    _switches["do_orm_execute listener instead"] = (listen, unlisten)
    return {
        "sa_async": lambda: sa_async.AsyncSession(engine),
        "sa_async without the check": lambda: sa_async.AsyncSession(engine),
        "do_orm_execute listener instead": lambda: sa_async.AsyncSession(engine),
    }


async def guard_alone(engine: sa_async.AsyncEngine, rounds: int) -> tuple[float, float]:
    """The guard's own CPU time per operation, in ns, without any operation around it: taking
    the session and giving it back, as every bridged method does; and, for scale, a bare bridge
    round trip (``run_in_bridge(id, None)``)."""
    session: Any = sa_async.AsyncSession(engine)  # its private members are not in the stubs
    iterations = 100_000

    def enter_and_leave() -> float:
        started = time.process_time()
        for _ in range(iterations):
            running = session._enter("execute()")
            try:
                pass
            finally:
                session._operation = running
        return (time.process_time() - started) / iterations * 1e9

    async def round_trip() -> float:
        started = time.process_time()
        for _ in range(iterations // 10):
            await run_in_bridge(id, None)
        return (time.process_time() - started) / (iterations // 10) * 1e9

    guard = [enter_and_leave() for _ in range(rounds)]
    bridge = [await round_trip() for _ in range(rounds)]
    await session.close()
    return statistics.median(guard), statistics.median(bridge)


def table(rows: list[Row], baseline: str) -> str:
    lines = [
        f"| operation | variant | µs/op | / {baseline} (IQR) | {baseline} spread (IQR/median) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.ratio is None or row.ratio_iqr is None:
            ratio = "baseline"
        else:
            ratio = f"{row.ratio:.3f}x ({row.ratio_iqr[0]:.3f}-{row.ratio_iqr[1]:.3f})"
        lines.append(
            f"| {row.operation} | {row.variant} | {row.median_us:.2f} | {ratio} | "
            f"{row.spread_percent:.1f}% |"
        )
    return "\n".join(lines)


async def main(rounds: int, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'guard.db'}"
        engine = sa_async.create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with sa_async.AsyncSession(engine) as session:
            session.add(Parent(id=1, name="parent", children=[Child(), Child()]))
            await session.commit()
        guard_variants: dict[str, Callable[[], Any]] = {
            name: functools.partial(cls, engine) for name, cls in SESSION_CLASSES.items()
        }
        started = time.monotonic()
        guard_ns, round_trip_ns = await guard_alone(engine, rounds)
        guard_rows = await measure(
            GUARD_OPERATIONS, guard_variants, "sa_async without guard", rounds, iterations
        )
        check_rows = await measure(
            CHECK_OPERATIONS,
            check_variants(engine),
            "sa_async without the check",
            rounds,
            iterations,
        )
        await engine.dispose()
    print(
        f"Python {platform.python_version()}, SQLAlchemy "
        f"{sqlalchemy.__version__}, aiosqlite; {rounds} rounds of {iterations} operations; "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print("Concurrent-use guard\n")
    print(
        f"The guard alone (take the session, give it back): {guard_ns:.0f} ns per operation; "
        f"a bare bridge round trip: {round_trip_ns:.0f} ns.\n"
    )
    print(table(guard_rows, "sa_async without guard"))
    print("\nAttribute-load check (ImplicitIOError)\n")
    print(table(check_rows, "sa_async without the check"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.iterations))
