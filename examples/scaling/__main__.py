"""Run the read-replica recipe on a real PostgreSQL primary and one of its streaming replicas::

    python -m examples.scaling postgresql+asyncpg://app@primary/app postgresql+asyncpg://app@replica/app

(or set ``PRIMARY_URL`` and ``REPLICA_URL``). Creates its own table on the primary, shows where
reads and writes go and how a read sees the latest writes, and drops the table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from sqlalchemy import Boolean, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .routing import ReplicaSet, RoutingSession


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "scaling_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[int]


Maker = async_sessionmaker[AsyncSession[RoutingSession]]

# True on a replica (a server in recovery), False on the primary.
ON_A_REPLICA = select(func.pg_is_in_recovery(type_=Boolean))


async def on_a_replica(session: AsyncSession[RoutingSession]) -> bool:
    """Return True if the session's next SELECT runs on a replica."""
    return bool(await session.scalar(ON_A_REPLICA))


async def wait_for_the_replica(maker: Maker, orders: int, timeout: float = 10.0) -> None:
    """Wait until reads routed to the replica see ``orders`` orders: replication is
    asynchronous, so a commit reaches the replica a little after the primary."""
    deadline = time.monotonic() + timeout
    while True:
        async with maker() as session:
            if await session.scalar(select(func.count(Order.id))) == orders:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replica did not show {orders} orders within {timeout} s")
        await asyncio.sleep(0.02)


async def demo(primary: AsyncEngine, replica: AsyncEngine) -> None:
    maker = async_sessionmaker(
        primary, sync_session_class=RoutingSession, replicas=ReplicaSet(replica)
    )
    async with maker() as session:
        print("a SELECT runs on the replica:", await on_a_replica(session))

    async with maker.begin() as session:
        session.add_all([Order(item="tea", quantity=2), Order(item="cake", quantity=1)])
    print("committed 2 orders on the primary")

    async with maker() as session:
        # A new session: its reads go to the replica, which may not have the orders yet.
        # primary=True reads the latest commits.
        orders = await session.scalars(
            select(Order).order_by(Order.item), execution_options={"primary": True}
        )
        print("read from the primary at once:", [(o.item, o.quantity) for o in orders])
        with session.sync_session.use_primary():
            print(
                "inside use_primary(), a SELECT runs on the replica:", await on_a_replica(session)
            )
        print("after it, a SELECT runs on the replica:", await on_a_replica(session))

    await wait_for_the_replica(maker, orders=2)
    print("the replica has caught up: 2 orders")

    async with maker() as session:
        tea = (await session.scalars(select(Order).where(Order.item == "tea"))).one()
        tea.quantity += 1
        await session.commit()
        # The session wrote: its reads now go to the primary, which has the new quantity
        # (expire_on_commit reloads it there, not from a replica that may lag).
        print("after its commit, the session reads on the replica:", await on_a_replica(session))
        await session.refresh(tea)
        print("and sees its own write:", tea.item, tea.quantity)


async def main(primary_url: str, replica_url: str) -> None:
    primary = create_async_engine(primary_url)
    # pool_pre_ping: a pooled connection to a replica that went away is noticed at checkout,
    # while the read can still fall back to the primary.
    replica = create_async_engine(replica_url, pool_pre_ping=True)
    try:
        async with primary.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.run_sync(Base.metadata.create_all)
        try:
            await demo(primary, replica)
        finally:
            async with primary.begin() as connection:
                await connection.run_sync(Base.metadata.drop_all)
    finally:
        await primary.dispose()
        await replica.dispose()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.scaling", description=__doc__.splitlines()[0] if __doc__ else None
    )
    for name in ("primary_url", "replica_url"):
        default = os.environ.get(name.upper())
        parser.add_argument(
            name,
            nargs="?" if default else None,
            default=default,
            help=f"an async SQLAlchemy URL (default: ${name.upper()})",
        )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(main(arguments.primary_url, arguments.replica_url))
