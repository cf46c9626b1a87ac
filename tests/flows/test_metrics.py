"""The flow runner's gauges, refreshed from what the chores stored in PostgreSQL."""

from __future__ import annotations

import json
import math
import uuid

import asyncpg

from flows.metrics import FlowMetrics


async def test_gauges_show_newest_verified_backup_age_and_open_breaks(dsn: str) -> None:
    metrics = FlowMetrics()
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        await metrics.refresh(pool)
        assert metrics.registry.get_sample_value("bot4_backup_newest_verified_age_seconds") == (
            math.inf
        )
        for backup_id, status, age_s in (
            ("20261127T010000Z-aaaaaa", "verified", 7200),
            ("20261127T020000Z-bbbbbb", "failed", 60),  # newer, but never verified
        ):
            await pool.execute(
                "INSERT INTO flow_backups (backup_id, uri, created_at, size_bytes, sha256,"
                " manifest, status) VALUES ($1, 'file:///x', now() - make_interval(secs => $3),"
                " 1, repeat('0', 64), '{}', $2)",
                backup_id, status, age_s,
            )  # fmt: skip
        run_id = uuid.uuid4()
        await pool.execute(
            "INSERT INTO reconciliation_runs VALUES ($1, 'binance', now(), now(), 10, 2, 1, 0,"
            " '{}')",
            run_id,
        )
        await pool.executemany(
            "INSERT INTO reconciliation_breaks (run_id, kind, break_key, detail,"
            " consecutive_runs, escalated) VALUES ($1, $2, $3, $4, $5, $6)",
            [(run_id, "missing_fill", "fill:a", json.dumps({}), 2, True),
             (run_id, "balance_drift", "balance:USDT", json.dumps({}), 1, False)],
        )  # fmt: skip

        await metrics.refresh(pool)

    age = metrics.registry.get_sample_value("bot4_backup_newest_verified_age_seconds")
    assert age is not None
    assert 7100 < age < 7300
    breaks = "bot4_reconciliation_breaks"
    assert metrics.registry.get_sample_value(breaks, {"kind": "missing_fill"}) == 1
    assert metrics.registry.get_sample_value(breaks, {"kind": "unknown_fill"}) == 0
    assert metrics.registry.get_sample_value("bot4_reconciliation_escalated_breaks") == 1
