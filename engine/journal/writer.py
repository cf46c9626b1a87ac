"""Batched, fenced, idempotent journal writes (asyncpg; the only asyncpg boundary here).

One call writes a batch of events and fills in ONE statement each, inside one
transaction: a batch is recorded whole or not at all. Event ids and ``(venue, symbol,
trade_id, side)`` make a retry after an unknown commit outcome harmless (ON CONFLICT DO
NOTHING). The statement-level trigger of migration 0002 refuses a stale epoch; that refusal arrives
here as :class:`FencedError`.

:meth:`Journal.append` writes and commits; :meth:`Journal.stage` and :meth:`Journal.commit`
split the two, so the group commit can write one batch while the previous one commits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

import asyncpg
import structlog
from asyncpg.transaction import Transaction

from engine.errors import TemporaryError
from engine.journal.models import FillRecord, JournalEvent, encode_body
from engine.leadership.lease import DEFAULT_LEASE, LeaseLostError

log = structlog.get_logger(__name__)

STALE_EPOCH_SQLSTATE: Final = "BT001"
DEFAULT_TIMEOUT_S: Final = 5.0

# Failures after which the same batch may succeed: the connection, the server, a failover.
_TEMPORARY: Final = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ReadOnlySQLTransactionError,  # reached a standby during a promotion
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

_INSERT_EVENTS: Final = """
INSERT INTO journal_events (event_id, lease, epoch, instance, kind, client_order_id, body,
                            correlation_id)
SELECT e.event_id, $1, $2, $3, e.kind, e.client_order_id, e.body::jsonb, e.correlation_id
  FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[])
       AS e(event_id, kind, client_order_id, body, correlation_id)
ON CONFLICT (event_id) DO NOTHING
"""

_INSERT_FILLS: Final = """
INSERT INTO fills (venue, trade_id, lease, epoch, instance, client_order_id, symbol, side,
                   price, qty, fee, fee_asset, traded_at, liquidity)
SELECT f.venue, f.trade_id, $1, $2, $3, f.client_order_id, f.symbol, f.side,
       f.price, f.qty, f.fee, f.fee_asset, f.traded_at, f.liquidity
  FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::numeric[], $10::numeric[], $11::numeric[], $12::text[], $13::timestamptz[],
              $14::text[])
       AS f(venue, trade_id, client_order_id, symbol, side, price, qty, fee, fee_asset,
            traded_at, liquidity)
ON CONFLICT (venue, symbol, trade_id, side) DO NOTHING
"""


_EVENT_COLUMNS: Final = (
    "event_id", "lease", "epoch", "instance", "kind", "client_order_id", "body",
    "correlation_id",
)  # fmt: skip
_FILL_COLUMNS: Final = (
    "venue", "trade_id", "lease", "epoch", "instance", "client_order_id", "symbol", "side",
    "price", "qty", "fee", "fee_asset", "traded_at", "liquidity",
)  # fmt: skip


class FencedError(LeaseLostError):
    """PostgreSQL refused the write: our epoch is stale. Stop sending, step down."""


class JournalUnavailableError(TemporaryError):
    """The journal could not be reached; the batch may be retried (it is idempotent)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AppendResult:
    """How many rows a batch added (fewer than sent when some were already recorded)."""

    events_added: int
    fills_added: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StagedBatch:
    """A batch written in a transaction still open on its own pooled connection."""

    connection: asyncpg.pool.PoolConnectionProxy
    transaction: Transaction
    result: AppendResult
    epoch: int


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class Journal:
    """Writes for one engine instance under one lease epoch.

    Args:
        pool: asyncpg pool (its DSN lists primary and standby with
            ``target_session_attrs=read-write``, so a reconnect follows a promotion).
        instance: this engine's instance id, the lease holder's name.
        lease: the lease row whose epoch fences the writes.
        timeout_s: longest one batch may take (acquire, write, commit) before it counts
            as a temporary failure and is retried.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        instance: str,
        lease: str = DEFAULT_LEASE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 (got {timeout_s})")
        self.pool = pool
        self.instance = instance
        self.lease = lease
        self.timeout_s = timeout_s
        self._releasing: set[asyncio.Future[None]] = set()  # connections on their way back

    async def append(
        self,
        events: Sequence[JournalEvent],
        fills: Sequence[FillRecord] = (),
        *,
        epoch: int,
    ) -> AppendResult:
        """Record a batch atomically under ``epoch``.

        Raises:
            FencedError: ``epoch`` is not the lease's current epoch (nothing recorded).
            JournalUnavailableError: connection or server trouble; outcome unknown, retry
                the same batch.
        """
        try:
            try:
                return await self._write(events, fills, epoch=epoch, copy=True)
            except asyncpg.UniqueViolationError:
                # Some of the batch is already recorded (a retry after an unknown commit
                # outcome): write it again row by row, skipping what is there.
                return await self._write(events, fills, epoch=epoch, copy=False)
        except (asyncpg.PostgresError, *_TEMPORARY) as e:
            _raise_translated(e, epoch)

    async def stage(
        self,
        events: Sequence[JournalEvent],
        fills: Sequence[FillRecord] = (),
        *,
        epoch: int,
    ) -> StagedBatch:
        """Write a batch (binary COPY) in a transaction left open; :meth:`commit` ends it.

        Lets the group commit write the next batch while the previous one's COMMIT waits
        for the disk and the synchronous standby. The rows are invisible to everyone else
        until the commit; the fencing trigger has already run (and holds the lease row
        FOR SHARE, so a takeover waits for the commit or the rollback).

        Raises:
            FencedError, JournalUnavailableError: as :meth:`append` (nothing is left open).
            asyncpg.UniqueViolationError: some of the batch is already recorded; write it
                with :meth:`append`, which skips those rows.
        """
        connection = await self._acquire()
        try:
            async with asyncio.timeout(self.timeout_s):
                transaction = connection.transaction()
                await transaction.start()
                result = await self._insert(connection, events, fills, epoch=epoch, copy=True)
        except BaseException as e:
            await self._discard(connection)
            if isinstance(e, (asyncpg.PostgresError, *_TEMPORARY)):
                _raise_translated(e, epoch)
            raise
        return StagedBatch(connection=connection, transaction=transaction, result=result,
                           epoch=epoch)  # fmt: skip

    async def commit(self, staged: StagedBatch) -> AppendResult:
        """Commit a staged batch: durable on return (primary and synchronous standby).

        Raises:
            JournalUnavailableError: the commit's outcome is unknown: write the same batch
                again with :meth:`append` (idempotent by event id).
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                await staged.transaction.commit()
        except BaseException as e:
            await self._discard(staged.connection)
            if isinstance(e, (asyncpg.PostgresError, *_TEMPORARY)):
                _raise_translated(e, staged.epoch)
            raise
        # Give the connection back in the background: the pool's release runs a reset
        # query, one more round trip that the batch's producers need not wait for.
        releasing = asyncio.ensure_future(self.pool.release(staged.connection))
        self._releasing.add(releasing)
        releasing.add_done_callback(self._released)
        return staged.result

    def _released(self, releasing: asyncio.Future[None]) -> None:
        self._releasing.discard(releasing)
        if not releasing.cancelled() and releasing.exception() is not None:
            # the pool has closed that connection and opens another when asked
            log.warning("journal_connection_release_failed", error=str(releasing.exception()))

    async def rollback(self, staged: StagedBatch) -> None:
        """Undo a staged batch (nothing of it was ever visible); never raises."""
        await self._discard(staged.connection)

    async def _acquire(self) -> asyncpg.pool.PoolConnectionProxy:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.pool.acquire()
        except _TEMPORARY as e:
            raise JournalUnavailableError(
                f"journal unreachable ({e.__class__.__name__}: {e})"
            ) from e

    async def _discard(self, connection: asyncpg.pool.PoolConnectionProxy) -> None:
        """Close a connection whose transaction is open or in doubt, and give it back.

        Closing is the one undo that cannot hang: the server rolls back whatever the
        connection left open. The pool opens a fresh connection when next asked.
        """
        with contextlib.suppress(asyncpg.InterfaceError):
            # raises if asyncpg already gave it back: the server ended it (a restart,
            # pg_terminate_backend), and there is nothing of ours left to close
            connection.terminate()
        with contextlib.suppress(Exception):
            await asyncio.shield(self.pool.release(connection))

    async def _write(
        self,
        events: Sequence[JournalEvent],
        fills: Sequence[FillRecord],
        *,
        epoch: int,
        copy: bool,
    ) -> AppendResult:
        # Bounded: after a server restart a pooled connection can be dead without
        # knowing it, and a batch must then fail as temporary, not wait for ever.
        async with (
            asyncio.timeout(self.timeout_s),
            self.pool.acquire() as connection,
            connection.transaction(),
        ):
            return await self._insert(connection, events, fills, epoch=epoch, copy=copy)

    async def _insert(
        self,
        connection: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
        events: Sequence[JournalEvent],
        fills: Sequence[FillRecord],
        *,
        epoch: int,
        copy: bool,
    ) -> AppendResult:
        """Write one batch in the connection's transaction: binary COPY, or INSERT.

        COPY is about twice as fast, and it fires the same fencing trigger (statement
        level, transition table), but a duplicate aborts it; the INSERT skips duplicates.
        """
        events_added = fills_added = 0
        if events and copy:
            status = await connection.copy_records_to_table(
                "journal_events",
                columns=_EVENT_COLUMNS,
                records=[
                    (e.event_id, self.lease, epoch, self.instance, e.kind.value,
                     e.client_order_id, encode_body(e.body), e.correlation_id)
                    for e in events
                ],
            )  # fmt: skip
            events_added = _count(status)
        elif events:
            status = await connection.execute(
                _INSERT_EVENTS,
                self.lease,
                epoch,
                self.instance,
                [e.event_id for e in events],
                [e.kind.value for e in events],
                [e.client_order_id for e in events],
                [encode_body(e.body) for e in events],
                [e.correlation_id for e in events],
            )
            events_added = _count(status)
        if fills and copy:
            status = await connection.copy_records_to_table(
                "fills",
                columns=_FILL_COLUMNS,
                records=[
                    (f.venue, f.trade_id, self.lease, epoch, self.instance,
                     f.client_order_id, f.symbol, f.side, f.price, f.qty, f.fee,
                     f.fee_asset, f.traded_at, f.liquidity)
                    for f in fills
                ],
            )  # fmt: skip
            fills_added = _count(status)
        elif fills:
            status = await connection.execute(
                _INSERT_FILLS,
                self.lease,
                epoch,
                self.instance,
                [f.venue for f in fills],
                [f.trade_id for f in fills],
                [f.client_order_id for f in fills],
                [f.symbol for f in fills],
                [f.side for f in fills],
                [f.price for f in fills],
                [f.qty for f in fills],
                [f.fee for f in fills],
                [f.fee_asset for f in fills],
                [f.traded_at for f in fills],
                [f.liquidity for f in fills],
            )
            fills_added = _count(status)
        return AppendResult(events_added=events_added, fills_added=fills_added)


def _raise_translated(error: BaseException, epoch: int) -> NoReturn:
    """Raise the engine's error for what asyncpg or the socket raised during a write."""
    if isinstance(error, asyncpg.PostgresError):
        if error.sqlstate == STALE_EPOCH_SQLSTATE:
            raise FencedError(f"journal refused epoch {epoch}: {error}") from error
        if isinstance(error, _TEMPORARY):
            raise JournalUnavailableError(f"journal write failed: {error}") from error
        raise error  # a bug or a schema problem: not to be retried as an outage
    raise JournalUnavailableError(
        f"journal unreachable ({error.__class__.__name__}: {error})"
    ) from error
