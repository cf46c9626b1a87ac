"""The desk's kill switch: a flag in PostgreSQL that every engine polls.

The row ``kill_switch('desk')`` (migration 0002) is the path that reaches every engine at
once, including ones whose control endpoint nobody can reach. ``bot4 engine halt`` sets
it; :class:`KillSwitchPoller` reads it every ~200 ms on its own connection (on the safety
thread, never the strategy loop) and, when it is engaged, lowers the gate to HALTED and
runs the halt (cancel all, verified).

Failure to read the flag for longer than ``stale_after_s`` holds the gate at REDUCING
until it can be read again (a hold, not a lowering: see :mod:`engine.live.gate`).
Blind, the engine cannot know whether someone asked it to stop, so it must stop adding
risk; but it does not HALT, because a database outage (including a planned failover,
when the primary is gone for seconds) would then cancel every resting order of the desk,
and only an operator can raise a halt again. Once the flag reads again the hold ends and
trading goes on. The control endpoint still halts without the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg
import structlog

from engine.dtypes import HALTED, REDUCING
from engine.execution.clock import Clock, SystemClock
from engine.live import metrics
from engine.live.gate import KILL_SWITCH_UNREADABLE_CONDITION, TradingGate

log = structlog.get_logger(__name__)

DESK: Final = "desk"
UNREADABLE_HOLD: Final = KILL_SWITCH_UNREADABLE_CONDITION

_UPSERT: Final = """
    INSERT INTO kill_switch AS k (name, engaged, reason, changed_by, changed_at)
    VALUES ($1, $2, $3, $4, now())
    ON CONFLICT (name) DO UPDATE
       SET engaged = excluded.engaged, reason = excluded.reason,
           changed_by = excluded.changed_by, changed_at = excluded.changed_at
    RETURNING engaged, reason, changed_by, changed_at
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchState:
    """The flag as PostgreSQL has it."""

    engaged: bool
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None

    def as_json(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        changed_at = None if self.changed_at is None else self.changed_at.isoformat()
        return {
            "engaged": self.engaged,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "changed_at": changed_at,
        }


def _state(row: asyncpg.Record | None) -> KillSwitchState:
    if row is None:  # no row: nobody ever engaged it (a fresh database)
        return KillSwitchState(engaged=False, reason=None, changed_by=None, changed_at=None)
    return KillSwitchState(
        engaged=bool(row["engaged"]),
        reason=row["reason"],
        changed_by=row["changed_by"],
        changed_at=row["changed_at"],
    )


async def read_kill_switch(
    connection: asyncpg.Connection, *, name: str = DESK, timeout_s: float | None = None
) -> KillSwitchState:
    """Return the flag ``name``."""
    row = await connection.fetchrow(
        "SELECT engaged, reason, changed_by, changed_at FROM kill_switch WHERE name = $1",
        name,
        timeout=timeout_s,
    )
    return _state(row)


async def set_kill_switch(
    connection: asyncpg.Connection, *, engaged: bool, reason: str, by: str, name: str = DESK
) -> KillSwitchState:
    """Engage or disengage the flag ``name``; return it as written.

    Raises:
        ValueError: ``reason`` or ``by`` is empty.
    """
    if not reason.strip():
        raise ValueError("reason must not be empty: say why the kill switch changes")
    if not by.strip():
        raise ValueError("by must not be empty: say who changes the kill switch")
    row = await connection.fetchrow(_UPSERT, name, engaged, reason, by)
    state = _state(row)
    log.warning("kill_switch_changed", name=name, engaged=engaged, reason=reason, by=by)
    return state


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchConfig:
    """How the flag is polled.

    Attributes:
        name: the flag's row.
        poll_interval_s: pause between reads.
        stale_after_s: unreadable for this long holds the gate at REDUCING.
        connect_timeout_s: bound of one connection attempt (each host of the DSN).
        query_timeout_s: bound of one read.
    """

    name: str = DESK
    poll_interval_s: float = 0.2
    stale_after_s: float = 3.0
    connect_timeout_s: float = 2.0
    query_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        for field_name in ("poll_interval_s", "stale_after_s", "connect_timeout_s"):
            if getattr(self, field_name) <= 0:
                raise ValueError(f"{field_name} must be > 0 (got {getattr(self, field_name)})")
        if self.query_timeout_s <= 0:
            raise ValueError(f"query_timeout_s must be > 0 (got {self.query_timeout_s})")


OnEngaged = Callable[[KillSwitchState], Awaitable[bool]]
"""Runs the halt for an engaged flag; returns whether the halt was verified."""


class KillSwitchPoller:
    """Poll the flag; on engaged, halt; when unreadable too long, reduce.

    Args:
        dsn: PostgreSQL DSN (may list primary and standby with
            ``target_session_attrs=read-write``; asyncpg then finds the primary).
        gate: the engine's trading gate.
        on_engaged: runs the halt (cancel all, verify); called again on later polls
            while the flag stays engaged and no halt was verified yet.
        config: polling settings.
        clock: time source.
    """

    def __init__(
        self,
        dsn: str,
        *,
        gate: TradingGate,
        on_engaged: OnEngaged,
        config: KillSwitchConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._dsn = dsn
        self._gate = gate
        self._on_engaged = on_engaged
        self.config = config or KillSwitchConfig()
        self._clock: Clock = clock or SystemClock()
        self._connection: asyncpg.Connection | None = None
        self._stop = asyncio.Event()
        self._verified_at: datetime | None = None
        self._failures = 0
        self.last_state: KillSwitchState | None = None
        self.last_read_at: float | None = None

    @property
    def engaged(self) -> bool:
        """Return whether the flag was engaged at the last successful read."""
        return self.last_state is not None and self.last_state.engaged

    def stop(self) -> None:
        """Ask :meth:`run` to return (call on the poller's loop)."""
        self._stop.set()

    async def run(self) -> None:
        """Poll until :meth:`stop`; never raises for database trouble."""
        started = self._clock.monotonic()
        try:
            while not self._stop.is_set():
                await self.poll_once(started=started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.config.poll_interval_s)
        finally:
            await self._disconnect()

    async def poll_once(self, *, started: float) -> None:
        """Read the flag once and act on it (``started``: when polling began)."""
        try:
            state = await self._read()
        except Exception as e:  # any failure to read means: blind; asyncpg has many kinds
            await self._read_failed(e, started=started)
            return
        if self._failures:
            log.info("kill_switch_readable_again", failed_polls=self._failures)
        self._failures = 0
        self._gate.release(UNREADABLE_HOLD)
        self.last_state, self.last_read_at = state, self._clock.monotonic()
        metrics.KILL_SWITCH_ENGAGED.set(1 if state.engaged else 0)
        metrics.KILL_SWITCH_AGE.set(0)
        if not state.engaged:
            self._verified_at = None
            return
        lowered = self._gate.lower(
            HALTED, reason=f"kill switch: {state.reason}", by=state.changed_by or "kill_switch"
        )
        # Halt again while the gate was just lowered, or the last halt of this engagement
        # was not verified (the venue was unreachable, an order survived the cancel).
        if lowered or self._verified_at != state.changed_at:
            log.warning("kill_switch_engaged", reason=state.reason, by=state.changed_by)
            if await self._on_engaged(state):
                self._verified_at = state.changed_at

    async def _read(self) -> KillSwitchState:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn, timeout=self.config.connect_timeout_s
            )
            if self.last_read_at is not None:
                metrics.RECONNECTS.labels(connection="kill_switch").inc()
        return await read_kill_switch(
            self._connection, name=self.config.name, timeout_s=self.config.query_timeout_s
        )

    async def _read_failed(self, error: BaseException, *, started: float) -> None:
        metrics.KILL_SWITCH_READ_FAILURES.inc()
        await self._disconnect()
        now = self._clock.monotonic()
        unread_s = now - (self.last_read_at if self.last_read_at is not None else started)
        metrics.KILL_SWITCH_AGE.set(unread_s)
        self._failures += 1
        if self._failures % 25 == 1:  # the first failure, then every ~5 s: not 5 lines a second
            log.warning("kill_switch_unreadable", error=str(error), unread_s=round(unread_s, 3))
        if unread_s > self.config.stale_after_s and self._gate.hold(UNREADABLE_HOLD, REDUCING):
            log.warning("kill_switch_hold", unread_s=round(unread_s, 3), state="REDUCING")

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()  # never wait on a connection that just failed
