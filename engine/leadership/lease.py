"""The trading lease: who may trade, and the epoch that fences everyone else.

Acquiring the lease bumps its epoch; every journal write carries the epoch, and
PostgreSQL refuses a write whose epoch is not the current one (migration 0002). So a
deposed leader — paused, partitioned, or simply slow — cannot record anything once another
engine took over, and a restarted engine never shares an epoch with its former life.

Time is PostgreSQL's ``now()``: one clock for every contender. The holder also keeps a
local, conservative deadline (:meth:`Lease.remaining_s`): a grant or renewal is timed from
*before* its statement was sent, so PostgreSQL's expiry is never earlier than ours, and
while our deadline has not passed no other engine can have taken over. The order manager
uses it to send an order before its journal record is durable (see
:class:`engine.live.orders.OrderManager`); the epoch fence stays the last word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from engine.errors import OperationalError

DEFAULT_LEASE: Final = "trading"


class LeaseLostError(OperationalError):
    """The lease is held by someone else now: stop sending, cancel, step down."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseStatus:
    """The lease row as PostgreSQL has it."""

    holder: str | None
    epoch: int
    expires_at: datetime
    expired: bool


class Lease:
    """One contender for a lease; methods are single statements, safe to race.

    Args:
        pool: asyncpg pool on the journal's database.
        instance: this engine's instance id (unique per process lifetime is best).
        ttl_s: how long a grant or renewal lasts without another renewal.
        name: the lease row (one per desk: ``trading``).
        monotonic: the local clock of :meth:`remaining_s`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        instance: str,
        ttl_s: float,
        name: str = DEFAULT_LEASE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 (got {ttl_s})")
        self.pool = pool
        self.instance = instance
        self.ttl_s = ttl_s
        self.name = name
        self.epoch: int | None = None
        self._monotonic = monotonic
        self._valid_until: float | None = None

    def remaining_s(self) -> float:
        """Return how long our hold is certainly still valid (0 when we hold nothing).

        Conservative: counted from before the last successful grant or renewal was sent,
        so PostgreSQL's own expiry is at least this far away (clocks running at the same
        rate; the callers keep a margin for drift).
        """
        if self.epoch is None or self._valid_until is None:
            return 0.0
        return max(0.0, self._valid_until - self._monotonic())

    async def try_acquire(self) -> int | None:
        """Take the lease if it is free or expired; return the new epoch, or None.

        Re-acquiring a lease we held also bumps the epoch: our previous incarnation (a
        crashed process with the same instance id) is fenced like anyone else.
        """
        asked_at = self._monotonic()
        self._valid_until = None
        epoch: int | None = await self.pool.fetchval(
            """
            UPDATE engine_leases
               SET holder = $2, epoch = epoch + 1, acquired_at = now(),
                   expires_at = now() + make_interval(secs => $3)
             WHERE name = $1 AND (holder IS NULL OR expires_at <= now() OR holder = $2)
            RETURNING epoch
            """,
            self.name,
            self.instance,
            self.ttl_s,
        )
        self.epoch = epoch
        if epoch is not None:
            self._valid_until = asked_at + self.ttl_s
        return epoch

    async def renew(self) -> None:
        """Extend our lease.

        Renewal succeeds as long as our epoch is still the current one, even past expiry:
        if nobody took over, nothing was fenced and continuing is safe.

        Raises:
            LeaseLostError: another engine holds a newer epoch (or we never held one).
        """
        if self.epoch is None:
            raise LeaseLostError(f"{self.instance} holds no lease {self.name!r}")
        asked_at = self._monotonic()
        renewed = await self.pool.fetchval(
            """
            UPDATE engine_leases SET expires_at = now() + make_interval(secs => $4)
             WHERE name = $1 AND holder = $2 AND epoch = $3
            RETURNING epoch
            """,
            self.name,
            self.instance,
            self.epoch,
            self.ttl_s,
        )
        if renewed is None:
            lost, self.epoch, self._valid_until = self.epoch, None, None
            raise LeaseLostError(f"{self.instance} lost lease {self.name!r} (had epoch {lost})")
        self._valid_until = asked_at + self.ttl_s

    async def release(self) -> bool:
        """Give the lease up at once (a handoff); return whether we still held it."""
        if self.epoch is None:
            return False
        self._valid_until = None  # first: nothing may count on the lease from here on
        released = await self.pool.fetchval(
            """
            UPDATE engine_leases SET holder = NULL, expires_at = now()
             WHERE name = $1 AND holder = $2 AND epoch = $3
            RETURNING epoch
            """,
            self.name,
            self.instance,
            self.epoch,
        )
        self.epoch = None
        return released is not None

    async def status(self) -> LeaseStatus:
        """Read the lease row."""
        row = await self.pool.fetchrow(
            "SELECT holder, epoch, expires_at, expires_at <= now() AS expired"
            " FROM engine_leases WHERE name = $1",
            self.name,
        )
        if row is None:
            raise OperationalError(f"lease {self.name!r} is missing: run `bot4 db migrate`")
        return LeaseStatus(
            holder=row["holder"],
            epoch=row["epoch"],
            expires_at=row["expires_at"],
            expired=row["expired"],
        )
