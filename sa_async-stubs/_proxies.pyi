import weakref
from typing import Any, Final

from sqlalchemy.orm import Session, SessionTransaction

PROXY_ATTRIBUTE: Final[str]
transaction_proxies: weakref.WeakValueDictionary[SessionTransaction, Any]

def async_session(session: Session) -> Any:
    """Return the live AsyncSession proxying ``session``, if any."""

def attach_session_proxy(session: Session, proxy: Any) -> None: ...

__all__ = ["PROXY_ATTRIBUTE", "async_session", "attach_session_proxy", "transaction_proxies"]
