from collections.abc import Callable
from typing import Any, TypeAlias

from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

AsyncSessionProvider: TypeAlias = Callable[[Session], Any]

def async_connection_for(sync_connection: Connection) -> AsyncConnection: ...
def server_side_cursor_of(result: Result[Any]) -> CursorResult[Any] | None: ...
def install_async_session_provider(provider: Callable[[Session], Any | None]) -> None: ...
def support_orm_sessionmaker_begin(
    session_class: type[Any], begin_context: Callable[[Any], Any]
) -> None: ...
