"""Shared by the integration tests: each runs a published library on sa_async's classes, on
aiosqlite, as an application using that library would (``tests/integration/test_*.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from sa_async import AsyncEngine, create_async_engine


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a fresh aiosqlite database file."""
    return f"sqlite+aiosqlite:///{tmp_path / 'integration.db'}"


@asynccontextmanager
async def engine_with_tables(url: str, metadata: MetaData) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with ``metadata``'s tables created; disposed on exit."""
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()
