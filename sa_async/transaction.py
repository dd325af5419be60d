"""AsyncSessionTransaction, a transaction or SAVEPOINT of an AsyncSession, and the block of
``async_sessionmaker.begin()``.

``await session.begin()`` starts a transaction, ``async with session.begin():`` commits it at
the end of the block (or rolls it back after an exception); ``async with maker.begin() as
session:`` does the same and closes the session. Committing flushes first as an ordinary
operation, which a cancellation stops with nothing committed; the COMMIT itself runs to its end
(``_completion.py``).
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio import exc as async_exc
from sqlalchemy.orm import Session, SessionTransaction

from . import _compat
from ._binds import AsyncBind, sync_bind_of
from ._completion import COMMITTED_NOTE, RunToCompletion, note_if_committed
from ._forwarding import subscriptable
from ._proxies import async_session, transaction_proxies
from .exc import TransactionFinishedError

if TYPE_CHECKING:
    from .session import AsyncSession

# How the guard names the end of a block, an operation of its own.
BLOCK_END = "the end of an 'async with session.begin()' block"


def _is_current(sync_transaction: SessionTransaction, sync_session: Session) -> bool:
    """Whether ``sync_transaction`` is still one of ``sync_session``'s open transactions."""
    current = sync_session.get_nested_transaction() or sync_session.get_transaction()
    while current is not None:
        if current is sync_transaction:
            return True
        current = current.parent
    return False


class AsyncSessionTransaction(sqlalchemy_asyncio.AsyncSessionTransaction):
    """A transaction or SAVEPOINT of an AsyncSession: awaitable and an async context manager.

    A subclass of SQLAlchemy's ``AsyncSessionTransaction`` for identity only, using its slots
    (``session``, ``nested``, ``sync_transaction``); every member is defined here.
    """

    __slots__ = ()

    # The types of SQLAlchemy's slots, as this class fills them.
    session: AsyncSession
    sync_transaction: SessionTransaction | None

    def __init__(self, session: AsyncSession, nested: bool = False) -> None:
        """Prepare a transaction of ``session``; it starts when awaited or entered."""
        self.session = session
        self.nested = nested
        self.sync_transaction = None

    # The sync transaction -> AsyncSessionTransaction lookup, under SQLAlchemy's names.

    @classmethod
    def _retrieve_proxy_for_target(
        cls,
        target: SessionTransaction,
        regenerate: bool = True,
        *,
        async_session: AsyncSession | None = None,
        **additional_kw: Any,
    ) -> Any:
        existing = transaction_proxies.get(target)
        if existing is not None or not regenerate:
            return existing
        return cls._regenerate_proxy_for_target(target, async_session=async_session)

    @classmethod
    def _regenerate_proxy_for_target(  # type: ignore[override]
        cls,
        target: SessionTransaction,
        async_session: AsyncSession | None = None,
        **additional_kw: Any,
    ) -> AsyncSessionTransaction:
        if async_session is None:
            async_session = _async_session_of(target.session)
        proxy = cls.__new__(cls)
        proxy.session = async_session
        proxy.nested = target.nested
        proxy.sync_transaction = proxy._assign_proxied(target)
        return proxy

    def _assign_proxied(self, target: Any) -> Any:
        if target is not None:
            transaction_proxies[target] = self
        return target

    @classmethod
    def _target_gced(cls, ref: Any, proxy_ref: Any = None) -> None:
        """Nothing to forget: the registry holds both sides weakly."""

    def __repr__(self) -> str:
        kind = "SAVEPOINT" if self.nested else "transaction"
        state = (
            "not started"
            if self.sync_transaction is None
            else ("active" if self.sync_transaction.is_active else "inactive")
        )
        return f"<{type(self).__name__} ({kind}, {state}) at {id(self):#x}>"

    def _sync_transaction(self) -> SessionTransaction:
        """Return the sync transaction, or raise if this one has not been started."""
        sync_transaction = self.sync_transaction
        if sync_transaction is None:
            self._raise_for_not_started()
        return sync_transaction

    def _raise_for_not_started(self) -> NoReturn:
        raise async_exc.AsyncContextNotStarted(
            f"{type(self).__name__} has not been started; 'await session.begin()' or use "
            "'async with session.begin():' before using it."
        )

    async def start(self, is_ctxmanager: bool = False) -> Self:
        if self.sync_transaction is not None:
            name = type(self).__name__
            if not _is_current(self.sync_transaction, self.session.sync_session):
                raise TransactionFinishedError(
                    f"This {name} has finished (it was committed or rolled back, or its "
                    "session was closed or invalidated) and cannot be awaited or entered "
                    "again; start a new one with 'await session.begin()' or "
                    "'async with session.begin():'."
                )
            raise async_exc.AsyncContextAlreadyStarted(
                f"This {name} was already started; call session.begin() "
                "(or begin_nested()) again for a new transaction."
            )
        sync_session = self.session.sync_session
        begin = sync_session.begin_nested if self.nested else sync_session.begin
        operation = "begin_nested()" if self.nested else "begin()"
        sync_transaction = await self.session._run_guarded(operation, begin)
        self.sync_transaction = self._assign_proxied(sync_transaction)
        if is_ctxmanager:
            sync_transaction.__enter__()
        return self

    def __await__(self) -> Any:
        """Start the transaction and return it: ``transaction = await session.begin()``."""
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        """Start the transaction and return it."""
        return await self.start(is_ctxmanager=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit on success, roll back on error."""
        if exc_type is None:
            # Commits: the flush stops at a cancellation, the COMMIT runs to its end, as in
            # commit().
            try:
                await self.session._flush_before_commit(BLOCK_END, self._sync_transaction())
            except BaseException as error:
                await self._end(type(error), error, error.__traceback__)
                raise
            await RunToCompletion(self._end(exc_type, exc_value, traceback), note=note_if_committed)
        else:
            await self._end(exc_type, exc_value, traceback)

    def _end(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        """The end of an ``async with`` block: commit, or roll back after an exception."""
        return self.session._run_guarded(
            BLOCK_END,
            self._sync_transaction().__exit__,
            exc_type,
            exc_value,
            traceback,
        )

    @property
    def is_active(self) -> bool:
        """True while the transaction can still be used."""
        return self._sync_transaction().is_active

    @property
    def connections(self) -> frozenset[AsyncConnection]:
        """The connections this transaction holds."""
        return frozenset(
            _compat.async_connection_for(connection)
            for connection in self._sync_transaction().connections
        )

    def bound_connection(
        self, bindkey: Any | None = None, *, bind: AsyncBind | None = None, **kw: Any
    ) -> AsyncConnection:
        """Return the connection this transaction holds for ``bindkey`` (or ``bind``).

        Acquires none: raises ``InvalidRequestError`` when the transaction has no connection
        for that bind yet.
        """
        if bind is not None:
            kw["bind"] = sync_bind_of(bind)
        return _compat.async_connection_for(
            self._sync_transaction().bound_connection(bindkey, **kw)
        )

    async def commit(self) -> None:
        """Commit this transaction (or release this SAVEPOINT)."""
        # As AsyncSession.commit: the flush stops at a cancellation, the COMMIT runs to its end.
        sync_transaction = self._sync_transaction()
        await self.session._flush_before_commit("commit()", sync_transaction)
        await RunToCompletion(
            self.session._run_guarded("commit()", sync_transaction.commit),
            note=note_if_committed,
        )

    async def rollback(self) -> None:
        """Roll back this transaction (or to this SAVEPOINT)."""
        await self.session._run_guarded("rollback()", self._sync_transaction().rollback)


class SessionBeginContext(_compat.SessionContextManager):  # type: ignore[type-arg]
    """``async with maker.begin() as session``: commit on success, roll back on error, close.

    A subclass of SQLAlchemy's context manager for ``async_sessionmaker.begin()``, on its slots
    (``async_session``, ``trans``), for identity; every member is defined here.
    """

    __slots__ = ("committed",)

    __class_getitem__ = subscriptable

    async_session: AsyncSession
    trans: AsyncSessionTransaction

    def __init__(self, async_session: AsyncSession) -> None:
        """Prepare the block for ``async_session``; the transaction begins on entering it."""
        self.async_session = async_session
        self.committed = False

    async def __aenter__(self) -> AsyncSession:
        """Begin a transaction on the new session and return the session."""
        transaction = self.async_session.begin()
        try:
            await transaction.__aenter__()
        except BaseException:
            await self.async_session.close()
            raise
        self.trans = transaction
        return self.async_session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit (or roll back on error), then close the session; not stopped by cancellation."""
        if exc_type is None:
            # The flush stops at a cancellation, as in commit(); the block then ends as if
            # the flush's error had been raised in it.
            try:
                await self.async_session._flush_before_commit(
                    BLOCK_END, self.trans._sync_transaction()
                )
            except BaseException as error:
                await RunToCompletion(self._finish(type(error), error, error.__traceback__))
                raise
        # Commit (or roll back) and close as one piece of work, run to its end at once.
        await RunToCompletion(
            self._finish(exc_type, exc_value, traceback),
            note=lambda returned: COMMITTED_NOTE if self.committed else None,
        )

    async def _finish(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.trans._end(exc_type, exc_value, traceback)
            self.committed = exc_type is None
        finally:
            # Through the session's own exit, as SQLAlchemy does: a subclass overriding
            # close() (or __aexit__) is called.
            await self.async_session.__aexit__(exc_type, exc_value, traceback)


def _async_session_of(sync_session: Session) -> Any:
    found = async_session(sync_session)
    if found is None:
        raise NotImplementedError(
            "An AsyncSessionTransaction cannot be rebuilt around the transaction of a sync "
            "Session that has no AsyncSession: create the AsyncSession first, and use its "
            "sync_session."
        )
    return found


__all__ = ["AsyncSessionTransaction", "SessionBeginContext"]
