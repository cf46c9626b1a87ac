"""Batched, fenced, idempotent journal writes (asyncpg; the only asyncpg boundary here).

One call writes a batch of events and fills in ONE statement each, inside one
transaction: a batch is recorded whole or not at all. Event ids and ``(venue, symbol,
trade_id, side)`` make a retry after an unknown commit outcome harmless (ON CONFLICT DO
NOTHING). The statement-level trigger of migration 0002 refuses a stale epoch; that refusal arrives
here as :class:`FencedError`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from engine.errors import TemporaryError
from engine.journal.models import FillRecord, JournalEvent
from engine.leadership.lease import DEFAULT_LEASE, LeaseLostError

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
        except asyncpg.PostgresError as e:
            if e.sqlstate == STALE_EPOCH_SQLSTATE:
                raise FencedError(f"journal refused epoch {epoch}: {e}") from e
            if isinstance(e, _TEMPORARY):
                raise JournalUnavailableError(f"journal write failed: {e}") from e
            raise
        except _TEMPORARY as e:
            raise JournalUnavailableError(
                f"journal unreachable ({e.__class__.__name__}: {e})"
            ) from e

    async def _write(
        self,
        events: Sequence[JournalEvent],
        fills: Sequence[FillRecord],
        *,
        epoch: int,
        copy: bool,
    ) -> AppendResult:
        """Write one batch in one transaction: binary COPY, or INSERT .. ON CONFLICT.

        COPY is about twice as fast, and it fires the same fencing trigger (statement
        level, transition table), but a duplicate aborts it; the INSERT skips duplicates.
        """
        # Bounded: after a server restart a pooled connection can be dead without
        # knowing it, and a batch must then fail as temporary, not wait for ever.
        async with (
            asyncio.timeout(self.timeout_s),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            events_added = fills_added = 0
            if events and copy:
                status = await conn.copy_records_to_table(
                    "journal_events",
                    columns=_EVENT_COLUMNS,
                    records=[
                        (e.event_id, self.lease, epoch, self.instance, e.kind.value,
                         e.client_order_id, json.dumps(e.body, default=str), e.correlation_id)
                        for e in events
                    ],
                )  # fmt: skip
                events_added = _count(status)
            elif events:
                status = await conn.execute(
                    _INSERT_EVENTS,
                    self.lease,
                    epoch,
                    self.instance,
                    [e.event_id for e in events],
                    [e.kind.value for e in events],
                    [e.client_order_id for e in events],
                    [json.dumps(e.body, default=str) for e in events],
                    [e.correlation_id for e in events],
                )
                events_added = _count(status)
            if fills and copy:
                status = await conn.copy_records_to_table(
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
                status = await conn.execute(
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
