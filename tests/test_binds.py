"""Binds (``sa_async/_binds.py``) against each database.

A sync Engine or Connection given where an async one is needed, or an AsyncConnection not yet
started, is refused naming the mistake, and leaves the session as it was. AsyncSession's binds
(``bind``, ``binds``, ``bind_mapper()``, ``bind_table()``, ``get_async_bind()``) translate back
to the async objects, and a routing sync session class sends each model to its database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.util import immutabledict

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker
from sa_async.exc import SyncBindError
from tests.conftest import EngineFactory, untyped
from tests.models import Address, AuditEntry, Base, Note, RoutingSession, User

# -- checks


async def test_unstarted_async_connection_is_refused(engine: AsyncEngine) -> None:
    unstarted = engine.connect()
    with pytest.raises(async_exc.AsyncContextNotStarted):
        AsyncSession(unstarted)


async def test_sync_engine_or_connection_as_bind_raises_sync_bind_error(
    engine: AsyncEngine,
) -> None:
    assert issubclass(SyncBindError, sa_exc.ArgumentError)
    with pytest.raises(SyncBindError, match="AsyncEngine"):
        AsyncSession(untyped(engine.sync_engine))
    async with engine.connect() as connection:
        with pytest.raises(SyncBindError):
            AsyncSession(untyped(connection.sync_connection))
    with pytest.raises(SyncBindError):
        AsyncSession(untyped("sqlite://"))
    with pytest.raises(SyncBindError):
        async_sessionmaker(untyped(engine.sync_engine))


async def test_sync_engine_in_binds_raises_sync_bind_error_naming_the_key(
    engine: AsyncEngine,
) -> None:
    users_table = Base.metadata.tables["users"]
    with pytest.raises(SyncBindError, match=r"binds\[.*User"):
        AsyncSession(binds={User: untyped(engine.sync_engine)})
    session = AsyncSession(engine)
    with pytest.raises(SyncBindError):
        session.bind_mapper(User, untyped(engine.sync_engine))
    with pytest.raises(SyncBindError):
        session.bind_table(users_table, untyped(engine.sync_engine))
    with pytest.raises(SyncBindError):
        session.bind = untyped(engine.sync_engine)
    # A refused bind leaves the session's binds as they were.
    assert session.bind is engine
    assert dict(session.binds) == {}


# -- translation


async def test_bind_setter_binds_mapper_and_table(
    engine: AsyncEngine, engine_factory: EngineFactory, tmp_path: Path
) -> None:
    other = await engine_factory(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    session = AsyncSession()
    assert session.bind is None
    session.bind = engine
    assert session.bind is engine and session.sync_session.bind is engine.sync_engine
    session.bind_mapper(Note, other)
    session.bind_table(Base.metadata.tables["audit_entries"], other)
    assert session.get_bind(Note) is other.sync_engine
    assert session.get_async_bind(Note) is other
    assert session.get_async_bind(AuditEntry) is other
    assert session.get_async_bind(User) is engine
    assert session.get_async_bind(bind=other) is other
    session.add_all([Note(text="n"), AuditEntry(message="m"), User(name="u")])
    await session.commit()
    await session.close()
    async with other.connect() as connection:
        assert (await connection.scalars(select(Note.text))).all() == ["n"]
        assert (await connection.scalars(select(AuditEntry.message))).all() == ["m"]
        assert (await connection.scalars(select(User.name))).all() == []
    async with engine.connect() as connection:
        assert (await connection.scalars(select(User.name))).all() == ["u"]
        assert (await connection.scalars(select(Note.text))).all() == []
    session.bind = None
    assert session.bind is None


async def test_binds_mapping_translates_back_to_async_binds_and_is_read_only(
    engine: AsyncEngine, engine_factory: EngineFactory, tmp_path: Path
) -> None:
    other = await engine_factory(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    notes_table = Base.metadata.tables["notes"]
    session = AsyncSession(binds={User: engine, notes_table: other})
    binds = session.binds
    assert binds[User] is engine
    assert binds[Base.metadata.tables["users"]] is engine
    assert binds[notes_table] is other
    # SQLAlchemy's read-only mapping type, as Session.binds has.
    assert isinstance(binds, immutabledict)
    assert isinstance(session.sync_session.binds, immutabledict)
    with pytest.raises(TypeError):
        untyped(binds)[Address] = engine
    with pytest.raises(AttributeError):
        untyped(session).binds = {}
    session.bind_mapper(Address, other)
    assert session.binds[Address] is other
    async with session:
        session.add_all([User(name="u"), Note(text="n")])
        await session.commit()
    async with other.connect() as connection:
        assert (await connection.scalars(select(Note.text))).all() == ["n"]
        assert (await connection.scalars(select(User.name))).all() == []


@pytest.mark.parametrize("audit_database", ["sqlite", "postgresql"])
async def test_routing_sync_session_class_sends_models_to_two_databases(
    audit_database: str,
    engine_factory: EngineFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    main = await engine_factory(f"sqlite+aiosqlite:///{tmp_path / 'main.db'}")
    audit_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
        if audit_database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    audit = await engine_factory(audit_url)
    maker = async_sessionmaker(
        sync_session_class=RoutingSession,
        info={"sync_engines": {"main": main.sync_engine, "audit": audit.sync_engine}},
    )
    async with maker.begin() as session:
        assert isinstance(session.sync_session, RoutingSession)
        session.add_all([Note(text="note"), AuditEntry(message="audited")])
    async with maker() as session:
        assert (await session.scalars(select(Note.text))).all() == ["note"]
        assert (await session.scalars(select(AuditEntry.message))).all() == ["audited"]
        assert session.get_bind(AuditEntry) is audit.sync_engine
        assert session.get_bind(Note) is main.sync_engine
        # The routing session's sync engines are not binds of the AsyncSession.
        with pytest.raises(async_exc.AsyncBindNotFound):
            session.get_async_bind(Note)
    async with main.connect() as connection:
        assert (await connection.scalars(select(Note.text))).all() == ["note"]
        assert (await connection.scalars(select(AuditEntry.message))).all() == []
    async with audit.connect() as connection:
        assert (await connection.scalars(select(AuditEntry.message))).all() == ["audited"]
        assert (await connection.scalars(select(Note.text))).all() == []
    assert audit.dialect.name == audit_database


async def test_get_async_bind_translates_a_given_bind(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        session = AsyncSession(engine)
        assert session.get_async_bind(bind=connection) is connection
        assert session.get_async_bind(User) is engine
        assert session.get_async_bind(clause=select(User)) is engine
    unbound = AsyncSession()
    with pytest.raises(sa_exc.UnboundExecutionError):
        unbound.get_async_bind(User)
