from collections.abc import Callable, Collection
from typing import Any, TypeAlias

from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstanceState, Session

AsyncSessionProvider: TypeAlias = Callable[[Session], Any]
AttributeLoadCheck: TypeAlias = Callable[
    [Session, InstanceState[Any], Collection[str], str | None], None
]

def async_connection_for(sync_connection: Connection) -> AsyncConnection: ...
def server_side_cursor_of(result: Result[Any]) -> CursorResult[Any] | None: ...
def install_async_session_provider(provider: Callable[[Session], Any | None]) -> None: ...
def support_orm_sessionmaker_begin(
    session_class: type[Any], begin_context: Callable[[Any], Any]
) -> None: ...
def install_attribute_load_check(check: AttributeLoadCheck) -> None: ...
def attribute_being_loaded() -> str | None: ...
