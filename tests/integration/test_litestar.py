"""Litestar injects sa_async's sessions through advanced-alchemy's SQLAlchemy plugin, on aiosqlite.

The plugin is configured with sa_async's ``async_sessionmaker`` and ``AsyncSession``; handlers
take the session as a named ``db_session`` dependency. Litestar checks each injected value
against the handler's annotation (``isinstance``, shown by a handler annotated with a class the
plugin never makes): sa_async's session passes as ``sa_async.AsyncSession`` and, being a
subclass, as SQLAlchemy's ``AsyncSession``, which is also what the bare name ``AsyncSession``
resolves to in a handler, since the plugin puts SQLAlchemy's class in Litestar's signature
namespace. The plugin's autocommit commits what a successful request wrote and rolls back a
failed one; each request gets its own session, which holds no connection once answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from advanced_alchemy.base import BigIntBase
from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy import String, func, select, text
from sqlalchemy.orm import Mapped, mapped_column

import sa_async
from sa_async import AsyncEngine, AsyncSession, create_async_engine
from tests.conftest import checked_out


class Note(BigIntBase):
    __tablename__ = "litestar_note"

    body: Mapped[str] = mapped_column(String(100))


class UnmadeSession(sa_async.AsyncSession):
    """A session class the plugin never makes: annotating with it must fail Litestar's check."""


def create_app(config: SQLAlchemyAsyncConfig, injected: list[object]) -> Litestar:
    """A Litestar application on ``config``; its handlers append each session they receive to
    ``injected``."""

    @post("/notes")
    async def add_note(
        data: JSONBody[dict[str, str]], db_session: NamedDependency[sa_async.AsyncSession]
    ) -> dict[str, int]:
        injected.append(db_session)
        note = Note(body=data["body"])
        db_session.add(note)
        await db_session.flush()
        return {"id": note.id}

    @post("/notes/rejected")
    async def add_rejected_note(
        data: JSONBody[dict[str, str]], db_session: NamedDependency[sa_async.AsyncSession]
    ) -> None:
        injected.append(db_session)
        db_session.add(Note(body=data["body"]))
        await db_session.flush()
        # A 4xx answer: the plugin's autocommit must roll the flushed row back.
        raise ValidationException("rejected")

    @get("/notes/{note_id:int}")
    async def read_note(
        note_id: FromPath[int], db_session: NamedDependency[sqlalchemy_asyncio.AsyncSession]
    ) -> dict[str, Any]:
        injected.append(db_session)
        note = await db_session.get(Note, note_id)
        if note is None:
            raise NotFoundException(f"no note {note_id}")
        return {"id": note.id, "body": note.body}

    @get("/count")
    async def count_notes(db_session: NamedDependency[AsyncSession]) -> int:
        injected.append(db_session)
        count = await db_session.scalar(select(func.count()).select_from(Note))
        return count or 0

    @get("/unmade")
    async def unmade(db_session: NamedDependency[UnmadeSession]) -> None:
        injected.append(db_session)

    async def dispose_engine() -> None:
        # advanced-alchemy's lifespan disposes the engine only for the first config of a
        # process: it stores the engine under a key made unique per config
        # (engine_app_state_key) but looks it up under engine_dependency_key.
        await config.get_engine().dispose()

    return Litestar(
        route_handlers=[add_note, add_rejected_note, read_note, count_notes, unmade],
        plugins=[SQLAlchemyPlugin(config=config)],
        on_shutdown=[dispose_engine],
    )


@pytest.fixture
def config(sqlite_url: str) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        connection_string=sqlite_url,
        create_all=True,
        before_send_handler="autocommit",
        session_maker_class=sa_async.async_sessionmaker,
        session_config=AsyncSessionConfig(class_=sa_async.AsyncSession, expire_on_commit=False),
    )


@pytest.fixture
def injected() -> list[object]:
    """The sessions the handlers received, in request order."""
    return []


@pytest.fixture
def app(config: SQLAlchemyAsyncConfig, injected: list[object]) -> Litestar:
    return create_app(config, injected)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of the started application (its lifespan creates the engine and the tables)."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the test's own: the application's runs on the test client's event loop."""
    engine = create_async_engine(sqlite_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def stored_notes(database: AsyncEngine) -> list[tuple[Any, ...]]:
    async with database.connect() as connection:
        result = await connection.execute(text("SELECT id, body FROM litestar_note ORDER BY id"))
        return [tuple(row) for row in result]


async def test_handlers_receive_sa_asyncs_session_annotated_with_either_class(
    client: AsyncTestClient[Litestar], injected: list[object], database: AsyncEngine
) -> None:
    created = await client.post("/notes", json={"body": "first"})
    assert created.status_code == 201, created.text
    note_id = created.json()["id"]

    read = await client.get(f"/notes/{note_id}")
    assert read.status_code == 200, read.text
    assert read.json() == {"id": note_id, "body": "first"}

    # The first handler is annotated with sa_async's class, the second with SQLAlchemy's.
    assert [type(session) for session in injected] == [sa_async.AsyncSession] * 2
    assert await stored_notes(database) == [(note_id, "first")]


async def test_each_request_gets_a_session_of_its_own_that_holds_no_connection_afterwards(
    client: AsyncTestClient[Litestar],
    config: SQLAlchemyAsyncConfig,
    injected: list[object],
) -> None:
    for body in ("a", "b"):
        response = await client.post("/notes", json={"body": body})
        assert response.status_code == 201, response.text
    assert (await client.get("/count")).json() == 2

    assert len({id(session) for session in injected}) == 3
    for session in injected:
        assert isinstance(session, sa_async.AsyncSession)
        assert not session.in_transaction()
    assert checked_out(config.get_engine()) == 0


async def test_a_failed_request_is_rolled_back_by_the_plugin(
    client: AsyncTestClient[Litestar], injected: list[object], database: AsyncEngine
) -> None:
    kept = await client.post("/notes", json={"body": "kept"})
    assert kept.status_code == 201, kept.text
    rejected = await client.post("/notes/rejected", json={"body": "rejected"})
    assert rejected.status_code == 400, rejected.text

    assert len(injected) == 2
    assert await stored_notes(database) == [(kept.json()["id"], "kept")]
    missing = await client.get("/notes/999")
    assert missing.status_code == 404, missing.text


async def test_the_bare_name_asyncsession_is_checked_against_sqlalchemys_class(
    client: AsyncTestClient[Litestar], app: Litestar, injected: list[object]
) -> None:
    # In this module AsyncSession is sa_async's, but the plugin's signature namespace maps the
    # name to SQLAlchemy's class, and Litestar lets that namespace win over the module's.
    handler = app.route_handler_method_map["/count"]["GET"]
    parameter = handler.parsed_fn_signature.parameters["db_session"]
    assert parameter.annotation is sqlalchemy_asyncio.AsyncSession

    response = await client.get("/count")
    assert response.status_code == 200, response.text
    assert response.json() == 0
    assert [type(session) for session in injected] == [sa_async.AsyncSession]


async def test_litestar_refuses_a_session_that_does_not_match_the_annotation(
    client: AsyncTestClient[Litestar], injected: list[object]
) -> None:
    # The negative control: the acceptance above is Litestar's isinstance check passing, not the
    # check being skipped.
    response = await client.get("/unmade")
    assert response.status_code == 500, response.text
    assert injected == []
