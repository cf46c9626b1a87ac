"""What the drills measured, on the worker's Prometheus port (the SDK's metric meter).

``bot4_dr_last_drill_rto_seconds``, ``bot4_dr_last_drill_rpo_events`` and
``bot4_dr_last_passed_drill_timestamp_seconds``: set by ``store_report`` after each
drill, and seeded from ``dr_drills`` when the worker starts, so a restarted worker still
tells how old the last passed drill is (0: none ever passed; an alert fires when it is too
old).
``bot4_pg_sync_standbys``, ``bot4_pg_replication_lag_bytes`` and ``bot4_pg_primary_up``:
the journal database's replication, read by the worker every 10 s. Alert rules:
``infra/prometheus/rules/dr.yml``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog
from temporalio.common import MetricMeter

log = structlog.get_logger(__name__)


class DrillGauges:
    """What the last drills measured, exported with the worker's SDK metrics."""

    def __init__(self, meter: MetricMeter) -> None:
        self.rto = meter.create_gauge_float(
            "bot4_dr_last_drill_rto_seconds", "RTO of the last drill, as the engine saw it", "s"
        )
        self.rpo = meter.create_gauge(
            "bot4_dr_last_drill_rpo_events", "acknowledged facts the last drill found missing"
        )
        self.passed_at = meter.create_gauge_float(
            "bot4_dr_last_passed_drill_timestamp_seconds",
            "start (epoch seconds) of the last drill that passed",
            "s",
        )

    def record(self, *, rto_s: float | None, rpo_events: int | None,
               passed_at: float | None) -> None:  # fmt: skip
        """Set what is known (None leaves a gauge as it was)."""
        if rto_s is not None:
            self.rto.set(rto_s)
        if rpo_events is not None:
            self.rpo.set(rpo_events)
        if passed_at is not None:
            self.passed_at.set(passed_at)


@dataclass(frozen=True, kw_only=True, slots=True)
class DrillHistory:
    """What ``dr_drills`` says when the worker starts (seeds :class:`DrillGauges`)."""

    passed_at: float | None
    """Start (epoch seconds) of the last passed drill; 0.0 when none ever passed."""
    rpo_events: int | None
    """RPO of the last drill that measured one; 0 when no drill ever ran."""
    rto_s: float | None
    """RTO of the last drill that measured one; None when none did."""


DRILL_HISTORY_SQL = """
SELECT (SELECT extract(epoch FROM max(started_at))::float8 FROM dr_drills WHERE passed)
           AS passed_at,
       (SELECT rpo_events FROM dr_drills WHERE rpo_events IS NOT NULL
         ORDER BY started_at DESC LIMIT 1) AS rpo_events,
       (SELECT rto_s FROM dr_drills WHERE rto_s IS NOT NULL
         ORDER BY started_at DESC LIMIT 1) AS rto_s
"""


async def drill_history(dsn: str) -> DrillHistory:
    """Read the drill history; unknown (all None) when the database cannot tell.

    "Never" is a value, not a missing series: a worker that knows no drill ever passed
    exports 0, so the alert on the age of the last passed drill fires (Bot4DrillNeverPassed)
    while a missing series means the worker is not scraped or could not read the table.
    """
    import asyncpg

    unknown = DrillHistory(passed_at=None, rpo_events=None, rto_s=None)
    try:
        connection = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        log.warning("drill_history_unreadable", error=str(e))
        return unknown
    try:
        row = await connection.fetchrow(DRILL_HISTORY_SQL)
    except asyncpg.UndefinedTableError:  # not migrated yet: no drill ever ran
        row = None
    finally:
        await connection.close()
    if row is None:
        return DrillHistory(passed_at=0.0, rpo_events=0, rto_s=None)
    return DrillHistory(
        passed_at=0.0 if row["passed_at"] is None else float(row["passed_at"]),
        rpo_events=0 if row["rpo_events"] is None else int(row["rpo_events"]),
        rto_s=None if row["rto_s"] is None else float(row["rto_s"]),
    )


REPLICATION_SQL = """
SELECT count(*) FILTER (WHERE sync_state = 'sync' AND state = 'streaming') AS sync_standbys,
       max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8 AS lag_bytes
  FROM pg_stat_replication
"""


class ReplicationGauges:
    """The journal database's replication, as its primary reports it."""

    def __init__(self, meter: MetricMeter) -> None:
        self.sync_standbys = meter.create_gauge(
            "bot4_pg_sync_standbys",
            "synchronous standbys streaming from the primary (0: commits are not replicated"
            " before they are acknowledged, or wait)",
        )
        self.lag = meter.create_gauge_float(
            "bot4_pg_replication_lag_bytes", "WAL the standby has not replayed yet", "By"
        )
        self.up = meter.create_gauge("bot4_pg_primary_up", "1 when the primary answered")


async def watch_replication(
    dsn: str, gauges: ReplicationGauges, stop: asyncio.Event, *, every_s: float = 10.0
) -> None:
    """Read ``pg_stat_replication`` on the primary every ``every_s`` until ``stop``."""
    import asyncpg

    while not stop.is_set():
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
            try:
                row = await connection.fetchrow(REPLICATION_SQL, timeout=5)
            finally:
                await connection.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            gauges.up.set(0)
            log.warning("replication_unreadable", error=f"{type(e).__name__}: {e}")
        else:
            assert row is not None  # an aggregate answers one row
            gauges.up.set(1)
            gauges.sync_standbys.set(int(row["sync_standbys"]))
            gauges.lag.set(float(row["lag_bytes"] or 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
