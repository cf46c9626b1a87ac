"""Prometheus gauges of the chores, refreshed from PostgreSQL by the flow runner.

Each scheduled run is a subprocess of the runner, so the gauges are not set by the runs
themselves: the runner (``bot4 flows serve``) reads the stored outcomes every few seconds
and serves them on ``flows.metrics_port``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Gauge

from flows.backups import newest_verified_age_s

log = structlog.get_logger(__name__)

BREAK_KINDS: Final = (
    "missing_fill", "unknown_fill", "unknown_open_order", "quantity_mismatch",
    "price_mismatch", "balance_drift",
)  # fmt: skip


class FlowMetrics:
    """The gauges, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.backup_age = Gauge(
            "bot4_backup_newest_verified_age_seconds",
            "Age of the newest backup whose restore test passed (+Inf: none).",
            registry=self.registry,
        )
        self.breaks = Gauge(
            "bot4_reconciliation_breaks",
            "Unrepaired breaks of the latest reconciliation run, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.escalated = Gauge(
            "bot4_reconciliation_escalated_breaks",
            "Breaks of the latest run seen on consecutive runs (escalated).",
            registry=self.registry,
        )
        self.reconcile_age = Gauge(
            "bot4_reconciliation_last_run_age_seconds",
            "Age of the latest reconciliation run (+Inf: none).",
            registry=self.registry,
        )
        self.backup_age.set(math.inf)
        self.reconcile_age.set(math.inf)

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Read the latest outcomes and set the gauges."""
        age = await newest_verified_age_s(pool)
        self.backup_age.set(math.inf if age is None else age)
        run = await pool.fetchrow(
            "SELECT run_id, extract(epoch FROM now() - started_at)::float8 AS age_s"
            " FROM reconciliation_runs ORDER BY started_at DESC LIMIT 1"
        )
        counts: dict[str, int] = dict.fromkeys(BREAK_KINDS, 0)
        escalated = 0
        if run is not None:
            self.reconcile_age.set(run["age_s"])
            rows = await pool.fetch(
                "SELECT kind, count(*) AS n, count(*) FILTER (WHERE escalated) AS e"
                " FROM reconciliation_breaks WHERE run_id = $1 AND NOT repaired GROUP BY kind",
                run["run_id"],
            )
            for r in rows:
                counts[r["kind"]] = r["n"]
                escalated += r["e"]
        for kind, n in counts.items():
            self.breaks.labels(kind=kind).set(n)
        self.escalated.set(escalated)

    async def refresh_forever(self, dsn: str, *, every_s: float = 10.0) -> None:
        """Refresh every ``every_s`` seconds until cancelled; survive database outages."""
        pool: asyncpg.Pool | None = None
        try:
            while True:
                try:
                    if pool is None:
                        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
                    await self.refresh(pool)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                    log.warning("flow_metrics_refresh_failed", error=f"{type(e).__name__}: {e}")
                await asyncio.sleep(every_s)
        finally:
            if pool is not None:
                await pool.close()
