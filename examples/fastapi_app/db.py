"""The database: the engine's URL, the sessionmaker, and the session-per-request dependency."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///fastapi_app.db"


def database_url() -> str:
    """The URL of ``DATABASE_URL``, or a SQLite file in the working directory."""
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: a response is built from the objects after their commit, and
    # reading an expired attribute would need IO that plain attribute access cannot await.
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (its connection returned) when the response is sent."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
