"""From a sync object back to its async proxy: a Session to its AsyncSession, a SessionTransaction
to its AsyncSessionTransaction.

Both are held weakly: a proxy lives as long as user code holds it. A sync session keeps a weak
reference to its AsyncSession in an attribute of its own, which is cheaper than an entry in a
weak dictionary and goes with the sync session; transactions, whose class has slots, are mapped
in a weak dictionary.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.orm import Session, SessionTransaction

from . import _compat

# The attribute of a sync session that holds a weak reference to its AsyncSession.
PROXY_ATTRIBUTE = "_sa_async_proxy"

# Sync transaction -> its AsyncSessionTransaction.
transaction_proxies: weakref.WeakValueDictionary[SessionTransaction, Any] = (
    weakref.WeakValueDictionary()
)


def async_session(session: Session) -> Any:
    """Return the live AsyncSession proxying ``session``, if any."""
    proxy: weakref.ref[Any] | None = getattr(session, PROXY_ATTRIBUTE, None)
    return None if proxy is None else proxy()


def attach_session_proxy(session: Session, proxy: Any) -> None:
    setattr(session, PROXY_ATTRIBUTE, weakref.ref(proxy))


# SQLAlchemy's own lookups (InstanceState.async_session, its AsyncSession class's) find ours.
_compat.install_async_session_provider(async_session)
_compat.find_async_sessions_from_sqlalchemy(async_session)

__all__ = ["PROXY_ATTRIBUTE", "async_session", "attach_session_proxy", "transaction_proxies"]
