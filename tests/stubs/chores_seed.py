"""Rows the chores and drills leave behind, for tests that only read them.

Running a real backup, drill or reconciliation takes Prefect, S3 and a PostgreSQL pair;
tests of what the API and the console *show* need only the rows those runs store, in the
shape the flows write them (the tables' own checks apply).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class Seeded:
    """What was stored, for the assertions."""

    backup_id: str
    backup_age_s: float
    drill_id: str
    drill_rto_s: float
    reconciliation_run_id: str
    report_id: str


async def seed_chores(dsn: str, *, now: datetime | None = None) -> Seeded:
    """Store a verified backup (2 h old), a passed drill, a reconciliation with one break."""
    now = now or datetime.now(UTC)
    created = now - timedelta(hours=2)
    backup_id = created.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    drill_id = (now - timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ") + "-switchover"
    run_id = uuid.uuid4()
    report_id = f"daily-{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO flow_backups (backup_id, uri, created_at, size_bytes, sha256,"
                " manifest, status, verified_at, restore_s)"
                " VALUES ($1, $2, $3, 1234567, $4, '{}', 'verified', $5, 3.5)",
                backup_id, f"file:///tmp/backups/{backup_id}/bot4.dump", created, "ab" * 32,
                created + timedelta(seconds=30),
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO dr_drills (drill_id, mode, started_at, passed, rto_s, rpo_events,"
                " report) VALUES ($1, 'switchover', $2, true, 0.412, 0, $3)",
                drill_id, now - timedelta(hours=1), json.dumps({"failures": []}),
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO reconciliation_runs (run_id, venue, started_at, finished_at,"
                " fills_checked, breaks, escalated, repaired, summary)"
                " VALUES ($1, 'sim', $2, $3, 42, 1, 0, 0, $4)",
                run_id, now - timedelta(minutes=30), now - timedelta(minutes=29),
                json.dumps({"balance_drift": 1}),
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO reconciliation_breaks (run_id, kind, break_key, asset, expected,"
                " actual, detail, consecutive_runs, escalated)"
                " VALUES ($1, 'balance_drift', 'balance:USDT', 'USDT', '100', '99.5', '{}', 1,"
                " false)",
                run_id,
            )
            await connection.execute(
                "INSERT INTO flow_reports (report_id, kind, day, html_uri, json_uri, summary)"
                " VALUES ($1, 'daily', $2, $3, $4, $5)",
                report_id, (now - timedelta(days=1)).date(),
                f"file:///tmp/reports/{report_id}.html", f"file:///tmp/reports/{report_id}.json",
                json.dumps({"pnl": 12.5}),
            )  # fmt: skip
    finally:
        await connection.close()
    return Seeded(backup_id=backup_id, backup_age_s=7200.0, drill_id=drill_id, drill_rto_s=0.412,
                  reconciliation_run_id=str(run_id), report_id=report_id)  # fmt: skip
