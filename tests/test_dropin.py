"""A program written for ``sqlalchemy.ext.asyncio`` behaves the same after switching its imports to
``sa_async``: one scenario, run once with each module's names, must give the same transcript."""

from __future__ import annotations

import asyncio
import gc
from types import ModuleType
from typing import Any, NamedTuple

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import ForeignKey, String, event, func, insert, inspect, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    deferred,
    mapped_column,
    relationship,
    selectinload,
)

import sa_async
from sa_async import AsyncEngine
from tests.conftest import checked_out

# aiosqlite's cursor() is an awaitable but not a coroutine, so when SQLAlchemy refuses IO outside
# the bridge (the MissingGreenlet these tests provoke) it cannot close it, and Python warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Connection.cursor' was never awaited:RuntimeWarning"
)


class Models(NamedTuple):
    base: type[DeclarativeBase]
    customer: type[Any]
    order: type[Any]


def build_models(api: ModuleType) -> Models:
    """The program's models, written with ``api.AsyncAttrs`` as the program would import it."""

    # The mixin comes from whichever module the program imports: a dynamic base for mypy.
    class Base(api.AsyncAttrs, DeclarativeBase):  # type: ignore[misc, name-defined]
        pass

    class Customer(Base):
        __tablename__ = "dropin_customers"

        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        notes: Mapped[str | None] = deferred(mapped_column(String(50), nullable=True))
        orders: Mapped[list[Order]] = relationship(
            back_populates="customer", cascade="all, delete-orphan", order_by="Order.id"
        )

    class Order(Base):
        __tablename__ = "dropin_orders"

        id: Mapped[int] = mapped_column(primary_key=True)
        item: Mapped[str] = mapped_column(String(50))
        customer_id: Mapped[int] = mapped_column(ForeignKey("dropin_customers.id"))
        customer: Mapped[Customer] = relationship(back_populates="orders")

    return Models(Base, Customer, Order)


APIS = {"sqlalchemy.ext.asyncio": sqlalchemy_asyncio, "sa_async": sa_async}
MODELS = {name: build_models(api) for name, api in APIS.items()}


async def scenario(api: ModuleType, models: Models, engine: AsyncEngine) -> list[Any]:
    """Exercise the session layer the way an application does; record what it observes."""
    Customer, Order = models.customer, models.order
    log: list[Any] = []

    def record(step: str, value: Any) -> None:
        log.append((step, value))

    async def stored() -> list[tuple[str, int]]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT c.name, count(o.id) FROM dropin_customers c LEFT JOIN dropin_orders o"
                    " ON o.customer_id = c.id GROUP BY c.id, c.name ORDER BY c.id"
                )
            )
            return [(name, count) for name, count in rows]

    maker = api.async_sessionmaker(engine)
    record("maker repr", repr(maker).split("(", 1)[0])

    async with maker.begin() as session:
        record("session is maker's class", type(session) is maker.class_)
        session.add_all(
            [
                Customer(name="ann", orders=[Order(item="book"), Order(item="pen")]),
                Customer(name="bob", notes="vip"),
            ]
        )
    record("after maker.begin()", await stored())

    with pytest.raises(ZeroDivisionError):
        async with maker.begin() as session:
            session.add(Customer(name="never"))
            await session.flush()
            _ = 1 / 0
    record("after failed maker.begin()", await stored())

    async with maker() as session:
        ann = (await session.scalars(select(Customer).where(Customer.name == "ann"))).one()
        record("async_object_session", api.async_object_session(ann) is session)
        record("async_session", api.async_session(session.sync_session) is session)
        record("InstanceState.async_session", inspect(ann).async_session is session)
        record("in_transaction", session.in_transaction())
        try:
            _ = ann.orders
        except sa_exc.MissingGreenlet:
            record("lazy load outside", "MissingGreenlet")
        except sa_exc.StatementError as error:
            record("lazy load outside", type(error.orig).__name__)
        orders = await ann.awaitable_attrs.orders
        record("awaitable_attrs collection", [order.item for order in orders])
        bob = await session.get_one(Customer, 2)
        record("awaitable_attrs deferred", await bob.awaitable_attrs.notes)

        ann.name = "ann2"
        record("dirty", sorted(customer.name for customer in session.dirty))
        record("is_modified", session.is_modified(ann))
        await session.commit()
        record("expired after commit", "name" not in inspect(ann).dict)
        record("reloaded", await ann.awaitable_attrs.name)

        transaction = session.begin()
        try:
            _ = transaction.is_active
        except sa_exc.InvalidRequestError:
            record("unstarted transaction", "InvalidRequestError")
        await session.rollback()
        async with session.begin():
            record("begin() active", session.get_transaction() is not None)
            try:
                await session.begin()
            except sa_exc.InvalidRequestError:
                record("second begin()", "InvalidRequestError")
            session.add(Customer(name="cy"))
            savepoint = await session.begin_nested()
            session.add(Customer(name="rolled back"))
            await session.flush()
            record("in_nested_transaction", session.in_nested_transaction())
            await savepoint.rollback()
            try:
                async with session.begin_nested():
                    await session.execute(insert(Customer).values(id=2, name="duplicate key"))
            except sa_exc.IntegrityError:
                record("savepoint IntegrityError", True)
        record("after savepoint", await stored())

        try:
            await session.execute(select(Customer), execution_options={"stream_results": True})
        except async_exc.AsyncMethodRequired:
            record("execute(stream_results)", "AsyncMethodRequired")
        streamed = await session.stream_scalars(select(Customer.name).order_by(Customer.id))
        record("stream_scalars", [name async for name in streamed])
        result = await session.stream(select(Customer.name, Customer.id).order_by(Customer.id))
        record("stream partitions", [len(rows) async for rows in result.partitions(2)])

        cy = await session.scalar(select(Customer).where(Customer.name == "cy"))
        merged = await session.merge(Customer(id=cy.id, name="cy merged"))
        record("merge returns persistent", merged is cy)
        await session.delete(ann)
        record("deleted", sorted(type(instance).__name__ for instance in session.deleted))
        await session.flush()
        record("count in transaction", await session.scalar(select(func.count(Customer.id))))
        record(
            "run_sync query",
            await session.run_sync(lambda sync: sync.query(Order).count()),
        )
        await session.commit()
        record("after delete cascade", await stored())

        refreshed = await session.get(
            Customer, 2, options=[selectinload(Customer.orders)], populate_existing=True
        )
        record("eager orders", [order.item for order in refreshed.orders])
        await session.commit()
        async with engine.begin() as connection:
            await connection.execute(update(Customer.__table__).values(name="renamed"))
        await session.refresh(refreshed)
        record("refresh", refreshed.name)

        connection = await session.connection()
        record("connection type", isinstance(connection, sqlalchemy_asyncio.AsyncConnection))
        record("bind", session.bind is engine)
        record("get_bind", session.get_bind() is engine.sync_engine)
        record("identity_key", api.AsyncSession.identity_key(Customer, 2)[1])
        record("object_session", api.AsyncSession.object_session(refreshed) is session.sync_session)
        try:
            event.listen(session, "after_commit", lambda sync_session: None)
        except NotImplementedError:
            record("listen on async session", "NotImplementedError")
        checked_out_before = checked_out(engine)
        record("checked out before close_all_sessions", checked_out_before)
        await api.close_all_sessions()
        record("detached by close_all_sessions", inspect(refreshed).detached)

    cancelled_body_started = asyncio.Event()

    async def cancelled_body() -> None:
        async with maker.begin() as session:
            session.add(Customer(name="cancelled"))
            await session.flush()
            cancelled_body_started.set()
            await asyncio.sleep(30)

    task = asyncio.ensure_future(cancelled_body())
    await cancelled_body_started.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        record("cancelled maker.begin()", await stored())
    record("checked out at the end", checked_out(engine))

    with pytest.warns(sa_exc.SADeprecationWarning):
        await api.AsyncSession.close_all()
    record("subscriptable", api.async_sessionmaker[api.AsyncSession] is not None)
    record("session class", isinstance(maker(), api.AsyncSession))
    record("session's sync session", type(maker().sync_session) is Session)
    return log


EXPECTED = [
    ("maker repr", "async_sessionmaker"),
    ("session is maker's class", True),
    ("after maker.begin()", [("ann", 2), ("bob", 0)]),
    ("after failed maker.begin()", [("ann", 2), ("bob", 0)]),
    ("async_object_session", True),
    ("async_session", True),
    ("InstanceState.async_session", True),
    ("in_transaction", True),
    ("lazy load outside", "MissingGreenlet"),
    ("awaitable_attrs collection", ["book", "pen"]),
    ("awaitable_attrs deferred", "vip"),
    ("dirty", ["ann2"]),
    ("is_modified", True),
    ("expired after commit", True),
    ("reloaded", "ann2"),
    ("unstarted transaction", "InvalidRequestError"),
    ("begin() active", True),
    ("second begin()", "InvalidRequestError"),
    ("in_nested_transaction", True),
    ("savepoint IntegrityError", True),
    ("after savepoint", [("ann2", 2), ("bob", 0), ("cy", 0)]),
    ("execute(stream_results)", "AsyncMethodRequired"),
    ("stream_scalars", ["ann2", "bob", "cy"]),
    ("stream partitions", [2, 1]),
    ("merge returns persistent", True),
    ("deleted", ["Customer", "Order", "Order"]),
    ("count in transaction", 2),
    ("run_sync query", 0),
    ("after delete cascade", [("bob", 0), ("cy merged", 0)]),
    ("eager orders", []),
    ("refresh", "renamed"),
    ("connection type", True),
    ("bind", True),
    ("get_bind", True),
    ("identity_key", (2,)),
    ("object_session", True),
    ("listen on async session", "NotImplementedError"),
    ("checked out before close_all_sessions", 1),
    ("detached by close_all_sessions", True),
    ("cancelled maker.begin()", [("renamed", 0), ("renamed", 0)]),
    ("checked out at the end", 0),
    ("subscriptable", True),
    ("session class", True),
    ("session's sync session", True),
]


@pytest.mark.parametrize("api_name", list(APIS))
async def test_same_program_same_outcome_with_either_module(
    api_name: str, engine: AsyncEngine
) -> None:
    models = MODELS[api_name]
    async with engine.begin() as connection:
        await connection.run_sync(models.base.metadata.create_all)
    try:
        transcript = await scenario(APIS[api_name], models, engine)
        # Collect the refused driver awaitable now, while this module's warning filter applies.
        gc.collect()
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(models.base.metadata.drop_all)
    assert transcript == EXPECTED
