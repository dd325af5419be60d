"""Horizontal sharding on two real PostgreSQL servers: SQLAlchemy's ``ShardedSession`` as the
``sync_session_class`` of sa_async's sessions, with the recipe of ``examples/scaling/sharding.py``
(customers and their orders live in the database of their region, ``"eu"`` or ``"us"``).

Rows are checked on each server directly; statements are counted per server. Each shard numbers
its own rows, so the same primary key names one customer on each shard: the identity token (the
shard's name) keeps them apart in the identity map, and ``get()`` with and without
``identity_token=`` behaves as SQLAlchemy's own ``AsyncSession`` over the same ``ShardedSession``
(compared side by side, objects returned and errors raised).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, assert_type

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import Engine, Row, exc, insert, inspect, or_, select, text, update
from sqlalchemy.ext.asyncio.exc import AsyncBindNotFound
from sqlalchemy.ext.horizontal_shard import ShardedSession, set_shard_id
from sqlalchemy.orm import Session, immediateload, joinedload, selectinload, subqueryload
from sqlalchemy.orm.interfaces import LoaderOption

from examples.scaling.sharding import (
    EXECUTE_CHOOSER,
    IDENTITY_CHOOSER,
    REGIONS,
    REGIONS_OPTION,
    SHARD_CHOOSER,
    Base,
    Customer,
    Order,
    region_of,
    regions_with_orders,
    sharded_sessionmaker,
    tour,
)
from sa_async import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)
from tests._pg import PostgresServer
from tests.conftest import StatementCounter, postgresql_binaries, recorded_bridge_calls

ShardedMaker = async_sessionmaker[AsyncSession[ShardedSession]]
Engines = dict[str, AsyncEngine]
# What a call gave: ("returned", name, shard), ("returned", None) or ("raised", class, message).
Outcome = tuple[object, ...]


@pytest.fixture(scope="session")
def shard_servers() -> Iterator[dict[str, PostgresServer]]:
    """One PostgreSQL server per shard, for the whole test session."""
    bindir = postgresql_binaries()
    servers: dict[str, PostgresServer] = {}
    try:
        for region in REGIONS:
            servers[region] = PostgresServer(bindir)
            servers[region].start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
async def shard_engines(shard_servers: dict[str, PostgresServer]) -> AsyncIterator[Engines]:
    """An async engine per shard, with the example's tables created empty; dropped after."""
    engines = {region: create_async_engine(server.url) for region, server in shard_servers.items()}
    try:
        for engine in engines.values():
            async with engine.begin() as connection:
                await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                await connection.run_sync(Base.metadata.drop_all)
                await connection.run_sync(Base.metadata.create_all)
        yield engines
    finally:
        for engine in engines.values():
            try:
                async with engine.begin() as connection:
                    await connection.run_sync(Base.metadata.drop_all)
            finally:
                await engine.dispose()


@pytest.fixture
def sharded_maker(shard_engines: Engines) -> ShardedMaker:
    return sharded_sessionmaker(shard_engines)


@pytest.fixture
def sqlalchemy_maker(
    shard_engines: Engines,
) -> sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession]:
    """SQLAlchemy's own async sessionmaker over the same ShardedSession: the reference."""
    return sqlalchemy_asyncio.async_sessionmaker(
        sync_session_class=ShardedSession,
        shards={region: engine.sync_engine for region, engine in shard_engines.items()},
        shard_chooser=SHARD_CHOOSER,
        identity_chooser=IDENTITY_CHOOSER,
        execute_chooser=EXECUTE_CHOOSER,
    )


async def rows_on(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    """Run a SELECT on a connection of its own to one server: what that shard holds."""
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


async def run_on(engine: AsyncEngine, sql: str) -> None:
    """Change one server's rows behind the sessions' backs."""
    async with engine.begin() as connection:
        await connection.execute(text(sql))


async def stored_customers(engines: Engines) -> dict[str, list[tuple[Any, ...]]]:
    """Each shard's customers as (id, region, name), in id order."""
    sql = "SELECT id, region, name FROM sharding_customers ORDER BY id"
    return {region: await rows_on(engine, sql) for region, engine in engines.items()}


async def seed(maker: ShardedMaker) -> None:
    """Ada (1) and Cy (2) in the eu shard, Bob (1) in the us shard: customer 1 is on both."""
    async with maker.begin() as session:
        session.add(Customer(region="eu", name="Ada", orders=[Order(item="tea")]))
        session.add(Customer(region="us", name="Bob", orders=[Order(item="coffee")]))
        session.add(Customer(region="eu", name="Cy", orders=[Order(item="scones")]))


def counters(engines: Engines) -> dict[str, StatementCounter]:
    return {region: StatementCounter(engine) for region, engine in engines.items()}


def counts(sent: dict[str, StatementCounter]) -> dict[str, int]:
    return {region: counter.count for region, counter in sent.items()}


def described(customer: Customer | None) -> Outcome:
    if customer is None:
        return ("returned", None)
    return ("returned", customer.name, region_of(inspect(customer)))


async def outcome_of(call: Awaitable[Customer | None]) -> Outcome:
    try:
        return described(await call)
    except exc.SQLAlchemyError as error:
        return ("raised", type(error), str(error))


# -- the session type and where writes go


async def test_the_sessions_proxy_a_sharded_session(sharded_maker: ShardedMaker) -> None:
    assert_type(sharded_maker, async_sessionmaker[AsyncSession[ShardedSession]])
    async with sharded_maker() as session:
        assert_type(session, AsyncSession[ShardedSession])
        assert_type(session.sync_session, ShardedSession)
        assert type(session.sync_session) is ShardedSession
        assert session.sync_session.shard_chooser is SHARD_CHOOSER


async def test_writes_land_on_the_shard_of_their_region(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    async with sharded_maker() as session:
        ada = Customer(region="eu", name="Ada", orders=[Order(item="tea"), Order(item="jam")])
        bob = Customer(region="us", name="Bob", orders=[Order(item="coffee")])
        session.add_all([ada, bob])
        await session.flush()
        # One transaction holds a connection to each server.
        transaction = session.get_transaction()
        assert transaction is not None
        engines = {connection.sync_engine for connection in transaction.connections}
        assert engines == {engine.sync_engine for engine in shard_engines.values()}
        written = (ada, *ada.orders, bob, *bob.orders)
        assert [region_of(inspect(obj)) for obj in written] == ["eu", "eu", "eu", "us", "us"]
        await session.commit()

    assert await stored_customers(shard_engines) == {
        "eu": [(1, "eu", "Ada")],
        "us": [(1, "us", "Bob")],
    }
    orders = "SELECT customer_id, item FROM sharding_orders ORDER BY id"
    assert await rows_on(shard_engines["eu"], orders) == [(1, "tea"), (1, "jam")]
    assert await rows_on(shard_engines["us"], orders) == [(1, "coffee")]


async def test_a_rollback_undoes_the_writes_on_every_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    async with sharded_maker() as session:
        session.add_all([Customer(region="eu", name="Ada"), Customer(region="us", name="Bob")])
        await session.flush()
        await session.rollback()
    assert await stored_customers(shard_engines) == {"eu": [], "us": []}


async def test_a_connection_is_chosen_by_shard_id(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    async with sharded_maker() as session:
        connection = await session.connection(bind_arguments={"shard_id": "us"})
        assert_type(connection, AsyncConnection)
        assert connection.sync_engine is shard_engines["us"].sync_engine
        assert session.get_bind(Customer, shard_id="eu") is shard_engines["eu"].sync_engine


async def test_shards_are_no_async_binds_as_in_sqlalchemy(
    sharded_maker: ShardedMaker,
    sqlalchemy_maker: sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession],
) -> None:
    # shards= holds sync engines, which neither session can translate back to async ones.
    async with sharded_maker() as session, sqlalchemy_maker() as reference:
        for either in (session, reference):
            assert either.bind is None
            with pytest.raises(AsyncBindNotFound, match="Can't translate bind"):
                either.get_async_bind(Customer, shard_id="eu")


# -- identities: the same primary key on two shards


async def test_the_same_primary_key_on_two_shards_gives_two_objects(
    sharded_maker: ShardedMaker,
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        customers = (await session.scalars(select(Customer).where(Customer.id == 1))).all()
        assert [(c.id, c.name) for c in customers] == [(1, "Ada"), (1, "Bob")]
        ada, bob = customers
        assert ada is not bob
        eu_key = session.identity_key(Customer, 1, identity_token="eu")
        us_key = session.identity_key(Customer, 1, identity_token="us")
        assert eu_key != us_key
        assert session.identity_map[eu_key] is ada
        assert session.identity_map[us_key] is bob
        assert inspect(ada).key == eu_key and inspect(bob).key == us_key


async def test_get_with_an_identity_token_returns_that_shards_object_without_sql(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        ada, bob = (await session.scalars(select(Customer).where(Customer.id == 1))).all()
        sent = counters(shard_engines)
        assert await session.get(Customer, 1, identity_token="eu") is ada
        assert await session.get(Customer, 1, identity_token="us") is bob
        assert await session.get_one(Customer, 1, identity_token="us") is bob
        assert await session.get(Customer, (1,), identity_token="eu") is ada
        assert counts(sent) == {"eu": 0, "us": 0}


async def test_get_of_a_sharded_session_takes_shardedsessions_own_lookup(
    sharded_maker: ShardedMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AsyncSession.get() answers identity-map hits of a plain Session without the bridge
    # (sa_async/_identity.py). ShardedSession looks identities up its own way (per shard, in
    # the identity_chooser's order), so its get() must run: even a hit, with or without a token.
    await seed(sharded_maker)
    async with sharded_maker() as session:
        ada, bob = (await session.scalars(select(Customer).where(Customer.id == 1))).all()
        with recorded_bridge_calls(monkeypatch) as bridged:
            assert await session.get(Customer, 1) is ada
            assert await session.get(Customer, 1, identity_token="us") is bob
        assert bridged == [session.sync_session.get, session.sync_session.get]


async def test_get_without_a_token_searches_the_shards_in_the_identity_choosers_order(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        # Only Bob is loaded: he is the customer 1 in the identity map, and get() needs no SQL.
        bob = await session.get_one(Customer, 1, identity_token="us")
        sent = counters(shard_engines)
        assert await session.get(Customer, 1) is bob
        assert counts(sent) == {"eu": 0, "us": 0}
        # Ada loaded too: the eu shard comes first.
        ada = await session.get_one(Customer, 1, identity_token="eu")
        assert await session.get(Customer, 1) is ada
        # The regions execution option narrows the identity search to the us shard.
        assert await session.get(Customer, 1, execution_options={REGIONS_OPTION: ["us"]}) is bob


# Each scenario runs in a fresh session of each implementation, after seed(). The identity map
# holds its objects weakly: a scenario puts what it loads in ``loaded``, which keeps them.
# Typed with SQLAlchemy's class, which sa_async's AsyncSession derives from: both run them.
EitherSession = sqlalchemy_asyncio.AsyncSession
Scenario = Callable[[EitherSession, list[Customer]], Awaitable[Outcome]]


async def nothing_loaded_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    return await outcome_of(session.get(Customer, 1))


async def nothing_loaded_get_one(session: EitherSession, loaded: list[Customer]) -> Outcome:
    return await outcome_of(session.get_one(Customer, 1))


async def us_loaded_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    loaded.extend(await session.scalars(select(Customer).where(Customer.region == "us")))
    return await outcome_of(session.get(Customer, 1))


async def both_loaded_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    loaded.extend(await session.scalars(select(Customer)))
    return await outcome_of(session.get(Customer, 1))


async def both_loaded_get_one_with_us_token(
    session: EitherSession, loaded: list[Customer]
) -> Outcome:
    loaded.extend(await session.scalars(select(Customer)))
    return await outcome_of(session.get_one(Customer, 1, identity_token="us"))


async def nothing_loaded_get_with_us_token(
    session: EitherSession, loaded: list[Customer]
) -> Outcome:
    return await outcome_of(session.get(Customer, 1, identity_token="us"))


async def key_on_one_shard_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    return await outcome_of(session.get(Customer, 2))


async def key_on_other_shard_get_with_token(
    session: EitherSession, loaded: list[Customer]
) -> Outcome:
    return await outcome_of(session.get(Customer, 2, identity_token="us"))


async def key_on_other_shard_get_one_with_token(
    session: EitherSession, loaded: list[Customer]
) -> Outcome:
    return await outcome_of(session.get_one(Customer, 2, identity_token="us"))


async def missing_key_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    return await outcome_of(session.get(Customer, 3))


async def both_expired_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    loaded.extend(await session.scalars(select(Customer)))
    session.expire_all()
    return await outcome_of(session.get(Customer, 1))


def delete_ada_elsewhere(sync_session: Session) -> None:
    """Delete the eu customer 1 on a connection of its own, as another program would."""
    engine = sync_session.get_bind(Customer, shard_id="eu")
    assert isinstance(engine, Engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM sharding_orders WHERE customer_id = 1"))
        connection.execute(text("DELETE FROM sharding_customers WHERE id = 1"))


async def eu_deleted_elsewhere_get(session: EitherSession, loaded: list[Customer]) -> Outcome:
    # Both loaded and expired, Ada deleted meanwhile: the eu lookup finds her gone, and the
    # search moves on to the us shard.
    loaded.extend(await session.scalars(select(Customer)))
    await session.run_sync(delete_ada_elsewhere)
    session.expire_all()
    return await outcome_of(session.get(Customer, 1))


async def transient_merge(session: EitherSession, loaded: list[Customer]) -> Outcome:
    # A new object with customer 1's key: which shard's row does merge() load?
    return await outcome_of(session.merge(Customer(id=1, region="us", name="Bobby")))


SCENARIOS: list[tuple[Scenario, Outcome]] = [
    (nothing_loaded_get, ("raised", exc.MultipleResultsFound)),
    (nothing_loaded_get_one, ("raised", exc.MultipleResultsFound)),
    (us_loaded_get, ("returned", "Bob", "us")),
    (both_loaded_get, ("returned", "Ada", "eu")),
    (both_loaded_get_one_with_us_token, ("returned", "Bob", "us")),
    (nothing_loaded_get_with_us_token, ("returned", "Bob", "us")),
    (key_on_one_shard_get, ("returned", "Cy", "eu")),
    (key_on_other_shard_get_with_token, ("returned", None)),
    (key_on_other_shard_get_one_with_token, ("raised", exc.NoResultFound)),
    (missing_key_get, ("returned", None)),
    (both_expired_get, ("returned", "Ada", "eu")),
    (eu_deleted_elsewhere_get, ("returned", "Bob", "us")),
    (transient_merge, ("raised", exc.MultipleResultsFound)),
]


@pytest.mark.parametrize(
    ("scenario", "expected"), SCENARIOS, ids=[scenario.__name__ for scenario, _ in SCENARIOS]
)
async def test_get_behaves_as_sqlalchemys_async_session(
    sharded_maker: ShardedMaker,
    sqlalchemy_maker: sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession],
    scenario: Scenario,
    expected: Outcome,
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        ours = await scenario(session, [])
    async with sqlalchemy_maker() as session:
        theirs = await scenario(session, [])
    assert ours == theirs
    assert ours[: len(expected)] == expected, ours


async def test_after_expiry_each_object_reloads_from_its_own_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        ada, bob = (await session.scalars(select(Customer).where(Customer.id == 1))).all()
        await session.commit()  # ends the read transactions, expiring both
        await run_on(
            shard_engines["eu"], "UPDATE sharding_customers SET name = 'Ada L' WHERE id = 1"
        )
        await run_on(
            shard_engines["us"], "UPDATE sharding_customers SET name = 'Robert' WHERE id = 1"
        )

        sent = counters(shard_engines)
        assert await session.get(Customer, 1, identity_token="us") is bob
        assert counts(sent) == {"eu": 0, "us": 1}
        assert bob.name == "Robert"
        assert await session.get(Customer, 1) is ada
        assert counts(sent) == {"eu": 1, "us": 1}
        assert ada.name == "Ada L"

        await run_on(
            shard_engines["us"], "UPDATE sharding_customers SET name = 'Bobby' WHERE id = 1"
        )
        sent = counters(shard_engines)
        await session.refresh(bob)  # READ COMMITTED: the new name is visible
        assert bob.name == "Bobby"
        assert counts(sent) == {"eu": 0, "us": 1}
        assert ada.name == "Ada L"  # the eu customer 1, untouched by the us one's reload


# -- queries across shards


async def test_a_select_returns_the_rows_of_every_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        sent = counters(shard_engines)
        rows = (await session.execute(select(Customer.name, Customer.region))).all()
        assert_type(rows, Sequence[Row[str, str]])
        assert sorted(rows) == [("Ada", "eu"), ("Bob", "us"), ("Cy", "eu")]
        assert counts(sent) == {"eu": 1, "us": 1}


async def test_a_where_clause_on_the_region_narrows_the_shards(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        sent = counters(shard_engines)
        names = await session.scalars(select(Customer.name).where(Customer.region == "eu"))
        assert names.all() == ["Ada", "Cy"]
        assert counts(sent) == {"eu": 1, "us": 0}
        in_us = select(Customer.name).where(Customer.region.in_(["us"]), Customer.id > 0)
        assert (await session.scalars(in_us)).all() == ["Bob"]
        assert counts(sent) == {"eu": 1, "us": 1}
        # Under an OR, rows of any region may match: every shard is asked.
        either = select(Customer.name).where(or_(Customer.region == "eu", Customer.name == "Bob"))
        assert sorted((await session.scalars(either)).all()) == ["Ada", "Bob", "Cy"]
        assert counts(sent) == {"eu": 2, "us": 2}


async def test_set_shard_id_and_execution_options_pin_the_shards(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        sent = counters(shard_engines)
        pinned = select(Customer).options(set_shard_id("us"))
        assert [c.name for c in await session.scalars(pinned)] == ["Bob"]
        assert counts(sent) == {"eu": 0, "us": 1}
        by_option = await session.scalars(
            select(Customer.name), execution_options={REGIONS_OPTION: ["eu"]}
        )
        assert by_option.all() == ["Ada", "Cy"]
        assert counts(sent) == {"eu": 1, "us": 1}
        by_bind = await session.scalar(
            select(Customer.name).where(Customer.id == 1), bind_arguments={"shard_id": "us"}
        )
        assert_type(by_bind, str | None)
        assert by_bind == "Bob"
        assert counts(sent) == {"eu": 1, "us": 2}
        with pytest.raises(LookupError, match=r"unknown regions \['asia'\]"):
            await session.scalars(select(Customer), execution_options={REGIONS_OPTION: ["asia"]})


async def test_an_update_runs_on_the_shards_the_chooser_picks(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker.begin() as session:
        renamed = update(Customer).where(Customer.region == "us").values(name="Robert")
        await session.execute(renamed)
    assert await stored_customers(shard_engines) == {
        "eu": [(1, "eu", "Ada"), (2, "eu", "Cy")],
        "us": [(1, "us", "Robert")],
    }


async def test_an_insert_statement_runs_on_the_shard_it_names(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    one = insert(Customer).values(region="us", name="Bob")
    many = [{"region": "us", "name": "Dee"}, {"region": "us", "name": "Eve"}]
    us = {"shard_id": "us"}
    async with sharded_maker() as session:
        with pytest.raises(LookupError, match="INSERT statement writes to every shard"):
            await session.execute(one)
        assert (await session.execute(one, bind_arguments=us)).rowcount == 1
        # ShardedSession has no ORM bulk INSERT; the table's INSERT takes a list of rows.
        with pytest.raises(NotImplementedError, match="bulk_insert"):
            await session.execute(insert(Customer), many, bind_arguments=us)
        customers = Base.metadata.tables[Customer.__tablename__]
        await session.execute(insert(customers), many, bind_arguments=us)
        await session.commit()
    assert await stored_customers(shard_engines) == {
        "eu": [],
        "us": [(1, "us", "Bob"), (2, "us", "Dee"), (3, "us", "Eve")],
    }


async def test_stream_and_stream_scalars_merge_the_shards(
    sharded_maker: ShardedMaker,
    sqlalchemy_maker: sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession],
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        streamed = await session.stream_scalars(select(Customer).order_by(Customer.id))
        customers = [described(customer) async for customer in streamed]
        rows = await session.stream(select(Customer.name).options(set_shard_id("us")))
        us_names = [name async for (name,) in rows]
    async with sqlalchemy_maker() as reference:
        reference_streamed = await reference.stream_scalars(select(Customer).order_by(Customer.id))
        reference_customers = [described(customer) async for customer in reference_streamed]
    assert customers == reference_customers
    assert customers == [
        ("returned", "Ada", "eu"),
        ("returned", "Cy", "eu"),
        ("returned", "Bob", "us"),
    ]
    assert us_names == ["Bob"]


# -- relationships, sync code, merge, delete, refresh


async def test_awaitable_attrs_load_within_the_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        ada = await session.get_one(Customer, 1, identity_token="eu")
        sent = counters(shard_engines)
        orders = await ada.awaitable_attrs.orders
        assert_type(orders, list[Order])
        assert [order.item for order in orders] == ["tea"]
        assert counts(sent) == {"eu": 1, "us": 0}
        assert {region_of(inspect(order)) for order in orders} == {"eu"}

    async with sharded_maker() as session:
        # Order 1 of the us shard belongs to the us customer 1 (Bob), not to Ada.
        coffee = await session.get_one(Order, 1, identity_token="us")
        sent = counters(shard_engines)
        customer = await coffee.awaitable_attrs.customer
        assert_type(customer, Customer)
        assert described(customer) == ("returned", "Bob", "us")
        assert counts(sent) == {"eu": 0, "us": 1}


EAGER_LOADS = [selectinload, joinedload, subqueryload, immediateload]


@pytest.mark.parametrize("loader", EAGER_LOADS, ids=[loader.__name__ for loader in EAGER_LOADS])
async def test_eager_loads_across_shards_stay_within_each_shard(
    sharded_maker: ShardedMaker,
    sqlalchemy_maker: sqlalchemy_asyncio.async_sessionmaker[sqlalchemy_asyncio.AsyncSession],
    loader: Callable[[Any], LoaderOption],
) -> None:
    # Customer 1 and order 1 exist on both shards: an eager load run on every shard would give
    # Ada Bob's coffee too (the example's execute_chooser keeps selectinload's SELECT in the
    # shard of the query it completes).
    await seed(sharded_maker)

    async def loaded_by(session: EitherSession) -> list[tuple[object, ...]]:
        customers = await session.scalars(select(Customer).options(loader(Customer.orders)))
        orders = await session.scalars(select(Order).options(loader(Order.customer)))
        return [
            *(
                (c.name, region_of(inspect(c)), [o.item for o in c.orders])
                for c in customers.unique()
            ),
            *((o.item, region_of(inspect(o)), o.customer.name) for o in orders.unique()),
        ]

    async with sharded_maker() as session:
        ours = await loaded_by(session)
    async with sqlalchemy_maker() as reference:
        assert await loaded_by(reference) == ours
    assert sorted(ours, key=str) == sorted(
        [
            ("Ada", "eu", ["tea"]),
            ("Cy", "eu", ["scones"]),
            ("Bob", "us", ["coffee"]),
            ("tea", "eu", "Ada"),
            ("scones", "eu", "Cy"),
            ("coffee", "us", "Bob"),
        ],
        key=str,
    )


async def test_run_sync_passes_the_sharded_session(sharded_maker: ShardedMaker) -> None:
    await seed(sharded_maker)

    def items_of_region(session: ShardedSession, region: str) -> list[str]:
        assert type(session) is ShardedSession
        pinned = select(Customer).order_by(Customer.id).options(set_shard_id(region))
        # Lazy loads are fine here: sync code runs inside the bridge.
        return [order.item for customer in session.scalars(pinned) for order in customer.orders]

    async with sharded_maker() as session:
        items = await session.run_sync(items_of_region, "eu")
        assert_type(items, list[str])
        assert items == ["tea", "scones"]
        regions = await session.run_sync(regions_with_orders)
        assert regions == ["eu", "us"]


async def test_merge_loads_and_writes_on_the_objects_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker() as session:
        bob = await session.get_one(Customer, 1, identity_token="us")
    # Detached, Bob keeps his identity key, token included.
    bob.name = "Robert"
    async with sharded_maker.begin() as session:
        merged = await session.merge(bob)
        assert_type(merged, Customer)
        assert merged is not bob
        assert described(merged) == ("returned", "Robert", "us")
    assert await stored_customers(shard_engines) == {
        "eu": [(1, "eu", "Ada"), (2, "eu", "Cy")],
        "us": [(1, "us", "Robert")],
    }


async def test_delete_removes_the_row_of_the_objects_shard_only(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker.begin() as session:
        bob = await session.get_one(Customer, 1, identity_token="us")
        await session.delete(bob)  # loads and deletes his orders too (cascade)
    assert await stored_customers(shard_engines) == {
        "eu": [(1, "eu", "Ada"), (2, "eu", "Cy")],
        "us": [],
    }
    assert await rows_on(shard_engines["us"], "SELECT id FROM sharding_orders") == []
    assert await rows_on(shard_engines["eu"], "SELECT id FROM sharding_orders") == [(1,), (2,)]


async def test_refresh_reloads_from_the_objects_shard(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    async with sharded_maker(expire_on_commit=False) as session:
        ada = await session.get_one(Customer, 1, identity_token="eu")
        bob = await session.get_one(Customer, 1, identity_token="us")
        await session.commit()
        await run_on(shard_engines["us"], "UPDATE sharding_customers SET name = 'Robert'")
        sent = counters(shard_engines)
        await session.refresh(bob)
        await session.refresh(ada, ["name"])
        assert (ada.name, bob.name) == ("Ada", "Robert")
        assert counts(sent) == {"eu": 1, "us": 1}


# -- a scoped registry


async def test_a_scoped_registry_of_sharded_sessions(
    sharded_maker: ShardedMaker, shard_engines: Engines
) -> None:
    await seed(sharded_maker)
    scoped = async_scoped_session(sharded_maker, scopefunc=asyncio.current_task)
    assert_type(scoped, async_scoped_session[AsyncSession[ShardedSession]])
    assert_type(scoped.sync_session, ShardedSession)
    assert type(scoped.sync_session) is ShardedSession

    async def in_another_task() -> tuple[AsyncSession[ShardedSession], str]:
        try:
            ada = await scoped.get_one(Customer, 1, identity_token="eu")
            return scoped(), ada.name
        finally:
            await scoped.remove()

    try:
        bob = await scoped.get_one(Customer, 1, identity_token="us")
        assert bob.name == "Bob"
        other, name = await asyncio.create_task(in_another_task())
        assert other is not scoped() and name == "Ada"
        assert bob in scoped and await scoped.get(Customer, 1) is bob
        scoped.add(Customer(region="us", name="Dee"))
        await scoped.commit()
    finally:
        await scoped.remove()
    assert await stored_customers(shard_engines) == {
        "eu": [(1, "eu", "Ada"), (2, "eu", "Cy")],
        "us": [(1, "us", "Bob"), (2, "us", "Dee")],
    }


# -- the example


async def test_the_example_runs_on_two_servers(
    sharded_maker: ShardedMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    await tour(sharded_maker)
    assert capsys.readouterr().out.splitlines() == [
        "everyone: [('Ada', 'eu'), ('Bob', 'us')]",
        "in the eu: ['Ada']",
        "customer 1 of the us shard: Bob",
        "set_shard_id('eu'): ['Ada']",
        "regions=['us']: ['Bob']",
        "Bob's orders: ['coffee']",
        "regions with orders: ['eu', 'us']",
    ]
