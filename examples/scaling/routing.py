"""Read replicas: a sync ``Session`` that sends writes to the primary and reads to a replica.

sa_async's sessions run any sync ``Session`` subclass; this one decides, statement by statement,
which server runs it::

    replicas = ReplicaSet(create_async_engine(REPLICA_URL, pool_pre_ping=True))
    Session = async_sessionmaker(
        create_async_engine(PRIMARY_URL), sync_session_class=RoutingSession, replicas=replicas
    )
    async with Session() as session: ...  # an AsyncSession[RoutingSession]

The primary is the sessions' bind; ``replicas`` reaches each ``RoutingSession`` through the
sessionmaker. Where each statement goes, in ``RoutingSession.get_bind``:

- to the primary: flushes, INSERT/UPDATE/DELETE, ``SELECT ... FOR UPDATE`` (``with_for_update``),
  statements it cannot classify (``text()`` without ``.columns()``, DDL), and a connection asked
  for without a statement (``session.connection()``);
- to the primary on request: the ``primary=True`` execution option (on a statement, on one
  call, or on the whole session), and every statement inside ``with session.use_primary():``;
- to the primary for the rest of a session's life (until it is closed) once it has written or
  locked rows, so that it reads its own writes, committed or not (``pinned_to_primary``);
- other SELECTs to a replica, the same one for a whole transaction, or to the primary when no
  replica accepts a connection: a replica that refuses one is skipped, by every session, for
  ``ReplicaSet.retry_after`` seconds (and the failover is logged as a warning).

A replica that fails once its connection is in use (the server halted mid-transaction) is not
retried elsewhere: the statement's error is raised, as it would be with one server.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, exc
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.expression import GenerativeSelect, SelectBase

from sa_async import AsyncEngine

logger = logging.getLogger(__name__)

PRIMARY = "primary"
"""The execution option (and bind argument) that sends a statement to the primary."""


class ReplicaSet:
    """The replicas to read from, and which of them refused a connection lately.

    Create one per application and give it to the sessionmaker: a replica that refuses a
    connection is then skipped by every session for ``retry_after`` seconds before it is tried
    again. Give replica engines ``pool_pre_ping=True``, so that a pooled connection to a replica
    that went away is noticed when it is checked out, while the read can still go to the
    primary, rather than when its statement fails.
    """

    def __init__(self, *replicas: AsyncEngine, retry_after: float = 5.0) -> None:
        # Sessions route with sync engines: those of the async ones, as SQLAlchemy's own
        # routing recipe does.
        self.engines: tuple[Engine, ...] = tuple(replica.sync_engine for replica in replicas)
        self.retry_after = retry_after
        self._skipped_until: dict[Engine, float] = {}

    def candidates(self) -> list[Engine]:
        """Return the replicas to try, in random order, without those skipped for now."""
        now = time.monotonic()
        found = [engine for engine in self.engines if self._skipped_until.get(engine, 0) <= now]
        random.shuffle(found)  # spreads the reads
        return found

    def skip(self, replica: Engine, error: BaseException) -> None:
        """Skip ``replica`` for ``retry_after`` seconds: it refused a connection."""
        self._skipped_until[replica] = time.monotonic() + self.retry_after
        logger.warning(
            "replica %s refused a connection (%s: %s); reads go to the primary for %s s",
            replica.url.render_as_string(hide_password=True),
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
            self.retry_after,
        )


class RoutingSession(Session):
    """A ``Session`` whose writes go to its bind, the primary, and its plain reads to replicas.

    Build it through ``async_sessionmaker(primary, sync_session_class=RoutingSession,
    replicas=ReplicaSet(...))``; the module's docstring lists the routing rules.
    """

    def __init__(
        self, bind: Engine | Connection | None = None, *, replicas: ReplicaSet, **kw: Any
    ) -> None:
        if not isinstance(bind, Engine):
            raise exc.ArgumentError(
                f"RoutingSession needs the primary's engine as its bind, got {bind!r}: "
                "async_sessionmaker(primary_engine, sync_session_class=RoutingSession, "
                "replicas=ReplicaSet(replica_engine))"
            )
        super().__init__(bind, **kw)
        self.primary: Engine = bind
        self.replicas = replicas
        self.pinned_to_primary = False
        """True once the session has written or locked rows: every statement then goes to
        the primary until the session is closed (or this is set back to False)."""
        self._primary_scopes = 0
        self._flushes = 0

    @contextmanager
    def use_primary(self) -> Iterator[None]:
        """Send every statement of the block to the primary (reads that must see the latest
        commits, whoever made them): ``with session.sync_session.use_primary(): ...``."""
        self._primary_scopes += 1
        try:
            yield
        finally:
            self._primary_scopes -= 1

    def get_bind(
        self,
        mapper: object | None = None,
        *,
        clause: ClauseElement | None = None,
        bind: Engine | Connection | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        """Return the engine that runs ``clause``: the primary or a replica (see the module)."""
        if bind is not None:
            return bind
        if self._flushes or (clause is not None and not is_plain_select(clause)):
            # It writes, locks, or might: so might the rest of the session's work.
            self.pinned_to_primary = True
            return self.primary
        if clause is None or self.pinned_to_primary or self._primary_scopes or kw.get(PRIMARY):
            return self.primary
        return self._replica_or_primary()

    def _replica_or_primary(self) -> Engine:
        """Return the replica this transaction reads from, or a replica that accepts a
        connection now (the transaction keeps it), or else the primary."""
        transaction = self.get_transaction()
        if transaction is not None:
            held = {connection.engine for connection in transaction.connections}
            for replica in self.replicas.engines:
                if replica in held:
                    return replica
        for replica in self.replicas.candidates():
            try:
                # What executing the statement would do next, done here so that a refusal
                # can still send it to the primary.
                self.connection(bind_arguments={"bind": replica})
            except (exc.DBAPIError, OSError) as error:
                # A refused or timed-out connect: asyncpg raises OSError (TimeoutError too)
                # unwrapped; other drivers' errors arrive as DBAPIError.
                self.replicas.skip(replica, error)
            else:
                return replica
        return self.primary

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        """Flush, on the primary (autoflushes and the flush of a commit come here too)."""
        self._flushes += 1
        try:
            super().flush(objects)
        finally:
            self._flushes -= 1

    def close(self) -> None:
        """Close, and send reads to the replicas again."""
        try:
            super().close()
        finally:
            self.pinned_to_primary = False

    def reset(self) -> None:
        """Reset, and send reads to the replicas again."""
        try:
            super().reset()
        finally:
            self.pinned_to_primary = False

    def invalidate(self) -> None:
        """Invalidate the connections, and send reads to the replicas again."""
        try:
            super().invalidate()
        finally:
            self.pinned_to_primary = False


def is_plain_select(clause: ClauseElement) -> bool:
    """Return True for a SELECT that only reads: not ``FOR UPDATE``/``FOR SHARE``."""
    if not isinstance(clause, SelectBase):
        return False
    # SQLAlchemy keeps with_for_update() in this attribute only; it has no public reader.
    return not (isinstance(clause, GenerativeSelect) and clause._for_update_arg is not None)


@event.listens_for(RoutingSession, "do_orm_execute")
def _route_primary_option(orm_execute_state: ORMExecuteState) -> None:
    # Execution options (the statement's, the call's, the session's) do not reach get_bind;
    # bind arguments do.
    if orm_execute_state.execution_options.get(PRIMARY):
        orm_execute_state.bind_arguments[PRIMARY] = True
