"""Horizontal sharding: each customer lives in the database of its region.

Two databases (the shards, ``"eu"`` and ``"us"``) hold the same tables. SQLAlchemy's
``ShardedSession`` decides which one each object and each statement goes to, through three
functions written here; ``sa_async.AsyncSession`` runs it under asyncio, unchanged.

Each shard numbers its own rows, so a primary key alone does not name a row: the shard's name is
part of every object's identity (its *identity token*), and ``get()`` takes it as
``identity_token=``. Runs on two in-memory SQLite databases by default, or on ``EU_DATABASE_URL``
and ``US_DATABASE_URL``::

    python examples/scaling/sharding.py
    mypy --strict examples/scaling/sharding.py
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, assert_type

from sqlalchemy import ClauseElement, ForeignKey, String, inspect, select
from sqlalchemy.ext.horizontal_shard import (
    IdentityChooser,
    ShardChooser,
    ShardedSession,
    set_shard_id,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    InstanceState,
    Mapped,
    Mapper,
    ORMExecuteState,
    mapped_column,
    relationship,
)
from sqlalchemy.sql import Delete, Select, Update, operators
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ColumnElement,
)

from sa_async import AsyncAttrs, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# The shard names are the regions: the shard of a row is its customer's region.
REGIONS: Final = ("eu", "us")
# An execution option naming the regions a statement should visit (any iterable of them).
REGIONS_OPTION: Final = "regions"


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "sharding_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    region: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(50))
    orders: Mapped[list[Order]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Order.id"
    )


class Order(Base):
    __tablename__ = "sharding_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(50))
    customer_id: Mapped[int] = mapped_column(ForeignKey("sharding_customers.id"))
    customer: Mapped[Customer] = relationship(back_populates="orders")


REGION_COLUMN: Final = Customer.__table__.c.region


def region_of(state: InstanceState[Any]) -> str:
    """Return the shard an object was loaded from or flushed to (its identity token)."""
    token = state.identity_token
    if not isinstance(token, str):
        raise LookupError(f"{state.class_.__name__} object has no shard yet: flush it first")
    return token


def shard_for_instance(
    mapper: Mapper[Any] | None, instance: object, clause: ClauseElement | None = None
) -> str:
    """shard_chooser: the shard a new object is written to. An order goes with its customer."""
    if isinstance(instance, Customer):
        if instance.region not in REGIONS:
            raise LookupError(f"unknown region {instance.region!r}; known: {REGIONS}")
        return instance.region
    if isinstance(instance, Order):
        return shard_for_instance(mapper, instance.customer)
    # Reached when a mapper comes without an object: session.get_bind(inspect(Customer)).
    raise LookupError("no object to choose a shard from: name the shard, e.g. shard_id='eu'")


def shards_for_identity(
    mapper: Mapper[Any],
    primary_key: object,
    *,
    lazy_loaded_from: InstanceState[Any] | None,
    execution_options: Mapping[str, Any],
    bind_arguments: Mapping[str, Any],
    **kw: Any,
) -> list[str]:
    """identity_chooser: the shards where a primary key may live, searched in this order.

    A lazy load stays in the shard of the object it starts from. Otherwise the key may be in any
    shard (ids are per shard), unless the ``regions`` execution option narrows the search.
    """
    if lazy_loaded_from is not None:
        return [region_of(lazy_loaded_from)]
    return regions_from_option(execution_options) or list(REGIONS)


def shards_for_statement(orm_context: ORMExecuteState) -> list[str]:
    """execute_chooser: the shards a statement runs on; their rows are merged into one result.

    ``set_shard_id(...)``, ``bind_arguments={"shard_id": ...}`` and ``get(identity_token=...)``
    pick one shard before this is called. Here: a relationship load stays in the shard of the
    objects it loads for; the ``regions`` execution option names the shards; a WHERE clause that
    pins ``Customer.region`` names them too; anything else runs on every shard, except an
    INSERT, which would write its rows to each of them.
    """
    if orm_context.is_insert:
        raise LookupError(
            "an INSERT statement writes to every shard it runs on: pick one with "
            "bind_arguments={'shard_id': 'eu'}"
        )
    # lazy_loaded_from exists only for SELECTs (it raises for UPDATE and DELETE).
    if orm_context.is_select and orm_context.lazy_loaded_from is not None:
        return [region_of(orm_context.lazy_loaded_from)]
    # selectinload's SELECT carries the identity token of the query it completes. Ids repeat
    # across shards: run on every shard, it would attach the orders of one shard's customer 1
    # to the other shard's customer 1 as well.
    if orm_context.is_relationship_load:
        parent_shard = orm_context.execution_options.get("identity_token")
        if parent_shard in REGIONS:
            return [parent_shard]
    return (
        regions_from_option(orm_context.execution_options)
        or regions_in_where_clause(orm_context.statement)
        or list(REGIONS)
    )


def regions_from_option(execution_options: Mapping[str, Any]) -> list[str]:
    chosen: Iterable[str] = execution_options.get(REGIONS_OPTION, ())
    regions = list(chosen)
    unknown = set(regions).difference(REGIONS)
    if unknown:
        raise LookupError(f"unknown regions {sorted(unknown)}; known: {REGIONS}")
    return regions


def regions_in_where_clause(statement: object) -> list[str]:
    """Return the regions that the WHERE clause requires ``Customer.region`` to be in, if any.

    Only comparisons joined by AND narrow the search: under an OR, rows of other regions may
    match, so every shard is searched.
    """
    if not isinstance(statement, (Select, Update, Delete)):
        return []
    where: ColumnElement[Any] | None = statement.whereclause
    if where is None:
        return []
    conditions = (
        list(where.clauses)
        if isinstance(where, BooleanClauseList) and where.operator is operators.and_
        else [where]
    )
    named: list[object] = []
    for condition in conditions:
        if not isinstance(condition, BinaryExpression):
            continue
        column, parameter = condition.left, condition.right
        if not (isinstance(parameter, BindParameter) and column.shares_lineage(REGION_COLUMN)):
            continue
        if condition.operator is operators.eq:
            named.append(parameter.effective_value)
        elif condition.operator is operators.in_op:
            named.extend(parameter.effective_value or ())
    return [region for region in REGIONS if region in named]


# ShardedSession's own protocols: assigning the choosers to them makes the type checkers verify
# their signatures (async_sessionmaker passes them on as plain keyword arguments).
SHARD_CHOOSER: Final[ShardChooser] = shard_for_instance
IDENTITY_CHOOSER: Final[IdentityChooser] = shards_for_identity
EXECUTE_CHOOSER: Final[Callable[[ORMExecuteState], Iterable[str]]] = shards_for_statement


def sharded_sessionmaker(
    engines: Mapping[str, AsyncEngine],
) -> async_sessionmaker[AsyncSession[ShardedSession]]:
    """Return a sessionmaker whose sessions spread customers over ``engines`` (region -> engine).

    ``shards`` takes each engine's sync side: ShardedSession runs inside sa_async's greenlet
    bridge, where the sync engine of an async engine does async IO.
    """
    maker = async_sessionmaker(
        sync_session_class=ShardedSession,
        shards={region: engine.sync_engine for region, engine in engines.items()},
        shard_chooser=SHARD_CHOOSER,
        identity_chooser=IDENTITY_CHOOSER,
        execute_chooser=EXECUTE_CHOOSER,
    )
    # The session type follows sync_session_class: session.sync_session is a ShardedSession.
    assert_type(maker, async_sessionmaker[AsyncSession[ShardedSession]])
    return maker


def regions_with_orders(session: ShardedSession) -> list[str]:
    """Sync ORM code, run by ``AsyncSession.run_sync``: the regions of customers with orders."""
    customers = session.scalars(select(Customer).where(Customer.orders.any())).all()
    return sorted({customer.region for customer in customers})


async def create_tables(engines: Mapping[str, AsyncEngine]) -> None:
    for engine in engines.values():
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)


async def tour(maker: async_sessionmaker[AsyncSession[ShardedSession]]) -> None:
    # Writes: each customer (and its orders) goes to the shard of its region. Both shards
    # number from 1, so Ada and Bob share a primary key.
    async with maker.begin() as session:
        session.add(Customer(region="eu", name="Ada", orders=[Order(item="tea")]))
        session.add(Customer(region="us", name="Bob", orders=[Order(item="coffee")]))

    async with maker() as session:
        # Reads: every shard, merged; or only the shards the WHERE clause names.
        # ORDER BY sorts the rows of each shard; the merged result lists them shard by shard.
        everyone = (await session.scalars(select(Customer).order_by(Customer.name))).all()
        print("everyone:", [(c.name, region_of(inspect(c))) for c in everyone])
        europeans = await session.scalars(select(Customer).where(Customer.region == "eu"))
        print("in the eu:", [c.name for c in europeans])

        # The same primary key on both shards: the identity token says which one.
        bob = await session.get_one(Customer, 1, identity_token="us")
        print("customer 1 of the us shard:", bob.name)

        # Other ways to name the shard of a statement.
        pinned = select(Customer.name).options(set_shard_id("eu"))
        print("set_shard_id('eu'):", (await session.scalars(pinned)).all())
        by_option = await session.scalars(
            select(Customer.name), execution_options={REGIONS_OPTION: ["us"]}
        )
        print("regions=['us']:", by_option.all())

        # A lazy load stays in its parent's shard.
        orders = await bob.awaitable_attrs.orders
        print("Bob's orders:", [order.item for order in orders])

        # Sync code over the ShardedSession itself.
        print("regions with orders:", await session.run_sync(regions_with_orders))


async def main() -> None:
    engines = {
        "eu": create_async_engine(os.environ.get("EU_DATABASE_URL", "sqlite+aiosqlite://")),
        "us": create_async_engine(os.environ.get("US_DATABASE_URL", "sqlite+aiosqlite://")),
    }
    try:
        await create_tables(engines)
        await tour(sharded_sessionmaker(engines))
    finally:
        for engine in engines.values():
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.drop_all)
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
