"""Every return type the stubs declare is what the runtime returns, on each database.

Each statement kind that the overloads of ``execute`` tell apart runs for real, through an
``AsyncSession``, an ``async_scoped_session`` and (inside the bridge) a sync ``scoped_session``,
and the object returned must be an instance of the class the overload declares; the same
statements are checked statically in ``typing_tests/session_assert_types.py`` and the YAML cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
    Result,
    ScalarResult,
    bindparam,
    column,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import sessionmaker

from sa_async import (
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
    AsyncSessionProtocol,
    async_scoped_session,
    async_sessionmaker,
    scoped_session,
)
from tests.models import AuditEntry, User

Params = dict[str, Any] | list[dict[str, Any]] | None
audit_entries = AuditEntry.metadata.tables["audit_entries"]
# Seeded keys above the sequences' first values, so that PostgreSQL's inserts do not collide.
ANN, BOB = 101, 102


@dataclass(frozen=True)
class Kind:
    """One statement kind the overloads tell apart, and the class they declare for it."""

    name: str
    statement: Callable[[], Executable]
    params: Params
    declared: type[Any]


# The order of the execute overloads in sa_async-stubs/session.pyi.
KINDS = [
    Kind("select of columns", lambda: select(User.id, User.name), None, Result),
    Kind("select of an entity", lambda: select(User), None, Result),
    Kind(
        "select with a list of parameter sets",
        lambda: select(User.id).where(User.id == bindparam("user_id")),
        [{"user_id": ANN}],
        Result,
    ),
    Kind(
        "insert returning", lambda: insert(User).values(name="ret").returning(User.id), None, Result
    ),
    Kind(
        "orm bulk insert returning",
        lambda: insert(User).returning(User.id, User.name),
        [{"name": "r1"}, {"name": "r2"}],
        Result,
    ),
    Kind("insert without parameters", lambda: insert(User).values(name="new"), None, CursorResult),
    Kind(
        "insert of a table without parameters",
        lambda: insert(audit_entries).values(message="new"),
        None,
        CursorResult,
    ),
    Kind("update without parameters", lambda: update(User).values(name="up"), None, CursorResult),
    Kind(
        "update with one parameter set",
        lambda: update(User).where(User.id == bindparam("user_id")).values(name="one"),
        {"user_id": ANN},
        CursorResult,
    ),
    Kind("delete", lambda: delete(User).where(User.name == "nobody"), None, CursorResult),
    Kind(
        "delete of a table with a list of parameter sets",
        lambda: delete(audit_entries).where(audit_entries.c.id == bindparam("entry_id")),
        [{"entry_id": ANN}, {"entry_id": BOB}],
        CursorResult,
    ),
    Kind("text", lambda: text("UPDATE users SET name = name"), None, CursorResult),
    Kind(
        "text with a list of parameter sets",
        lambda: text("UPDATE users SET name = :name WHERE id = :user_id"),
        [{"name": "t1", "user_id": ANN}, {"name": "t2", "user_id": BOB}],
        CursorResult,
    ),
    Kind("orm bulk insert with one dict", lambda: insert(User), {"name": "bulk"}, Result),
    Kind(
        "orm bulk insert with a list",
        lambda: insert(User),
        [{"name": "b1"}, {"name": "b2"}],
        Result,
    ),
    Kind(
        "orm bulk update by primary key",
        lambda: update(User),
        [{"id": ANN, "name": "pk1"}, {"id": BOB, "name": "pk2"}],
        Result,
    ),
    Kind(
        "untyped statement",
        lambda: text("SELECT id FROM users").columns(column("id")),
        None,
        Result,
    ),
]
# Where the overloads cannot promise a CursorResult: the runtime returns none.
ORM_BULK_KINDS = [kind for kind in KINDS if kind.name.startswith("orm bulk")]


async def seed(session: AsyncSessionProtocol) -> None:
    session.add_all([User(id=ANN, name="ann"), User(id=BOB, name="bob")])
    session.add_all([AuditEntry(id=ANN, message="a"), AuditEntry(id=BOB, message="b")])
    await session.commit()


@pytest.fixture(params=["AsyncSession", "async_scoped_session"])
async def session(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Any]:
    """Each kind of async session the stubs type alike, seeded with two users."""
    maker = async_sessionmaker(engine)
    if request.param == "AsyncSession":
        async with maker() as plain:
            await seed(plain)
            yield plain
    else:
        registry = async_scoped_session(maker, asyncio.current_task)
        await seed(registry)
        try:
            yield registry
        finally:
            await registry.remove()


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
async def test_execute_returns_the_declared_class(
    session: AsyncSessionProtocol, kind: Kind
) -> None:
    result = await session.execute(kind.statement(), kind.params)
    assert isinstance(result, kind.declared), type(result)
    if kind.declared is CursorResult:
        assert isinstance(result.rowcount, int)


@pytest.mark.parametrize("kind", ORM_BULK_KINDS, ids=[kind.name for kind in ORM_BULK_KINDS])
async def test_the_orm_bulk_forms_return_no_cursor_result(
    session: AsyncSessionProtocol, kind: Kind
) -> None:
    # Why their overloads say Result: promising a CursorResult (and .rowcount) would be wrong.
    result = await session.execute(kind.statement(), kind.params)
    assert not isinstance(result, CursorResult), type(result)


async def test_scalar_forms_return_the_declared_classes(session: AsyncSessionProtocol) -> None:
    assert isinstance(await session.scalar(select(User.id).where(User.id == ANN)), int)
    assert await session.scalar(select(User.id).where(User.id == -1)) is None
    assert isinstance(await session.scalar(select(User.name, User.id)), str)
    assert isinstance(await session.scalar(select(func.count()).select_from(User)), int)
    assert isinstance(await session.scalar(select(User).where(User.id == ANN)), User)
    names = await session.scalars(select(User.name, User.id).order_by(User.id))
    assert isinstance(names, ScalarResult)
    assert names.all() == ["ann", "bob"]
    streamed = await session.stream(select(User.id, User.name).order_by(User.id))
    assert isinstance(streamed, AsyncResult)
    assert [tuple(row) for row in await streamed.all()] == [(ANN, "ann"), (BOB, "bob")]
    first_column = await session.stream_scalars(select(User.name, User.id).order_by(User.id))
    assert isinstance(first_column, AsyncScalarResult)
    assert await first_column.all() == ["ann", "bob"]


async def test_entity_members_return_the_entity(session: AsyncSessionProtocol) -> None:
    assert isinstance(await session.get(User, ANN), User)
    assert await session.get(User, -1) is None
    assert isinstance(await session.get_one(User, BOB), User)
    merged = await session.merge(User(id=ANN, name="merged"))
    assert isinstance(merged, User)
    merged_all = await session.merge_all([User(id=ANN, name="m1"), User(id=BOB, name="m2")])
    assert isinstance(merged_all, Sequence)
    assert all(isinstance(user, User) for user in merged_all)


def run_each_kind_on_a_scoped_session(connection: Connection) -> list[str]:
    """Inside the bridge: the sync scoped_session proxies, typed as AsyncSession's are."""
    registry = scoped_session(sessionmaker(bind=connection))
    mismatches: list[str] = []
    try:
        for kind in KINDS:
            result = registry.execute(kind.statement(), kind.params)
            if not isinstance(result, kind.declared):
                mismatches.append(f"{kind.name}: {type(result).__name__}")
        if not isinstance(registry.scalars(select(User.name, User.id)), ScalarResult):
            mismatches.append("scalars")
        if not isinstance(registry.get_one(User, ANN), User):
            mismatches.append("get_one")
    finally:
        registry.remove()
    return mismatches


async def test_scoped_session_returns_the_declared_classes(engine: AsyncEngine) -> None:
    async with async_sessionmaker(engine)() as seeding:
        await seed(seeding)
    async with engine.connect() as connection:
        assert await connection.run_sync(run_each_kind_on_a_scoped_session) == []
