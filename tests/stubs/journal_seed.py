"""Builders of journal content for flow tests and benchmarks: events and fills via COPY.

The journal is fenced by the lease: the seeder takes the lease (holder ``seed``) and
writes with its epoch, like an engine would.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

SEED_INSTANCE = "seed"


async def take_lease(conn: asyncpg.Connection, *, instance: str = SEED_INSTANCE) -> int:
    """Take the trading lease for ``instance``; return its epoch."""
    epoch: int = await conn.fetchval(
        "UPDATE engine_leases SET holder = $1, epoch = epoch + 1, acquired_at = now(),"
        " expires_at = now() + interval '1 hour' WHERE name = 'trading' RETURNING epoch",
        instance,
    )
    return epoch


async def seed_journal(dsn: str, *, events: int, fills: int, symbol: str = "BTC/USDT") -> None:
    """Write ``events`` order events and ``fills`` fills (alternating buy/sell)."""
    conn = await asyncpg.connect(dsn)
    try:
        epoch = await take_lease(conn)
        start = datetime(2026, 11, 26, tzinfo=UTC)
        batch = 50_000
        for first in range(0, events, batch):
            rows = [
                (uuid.uuid4(), epoch, SEED_INSTANCE, "order_new", f"seed-{epoch}-{i}",
                 json.dumps({"symbol": symbol, "side": "buy", "type": "limit", "amount": "0.01",
                            "price": "100"}))
                for i in range(first, min(events, first + batch))
            ]  # fmt: skip
            await conn.copy_records_to_table(
                "journal_events",
                records=rows,
                columns=["event_id", "epoch", "instance", "kind", "client_order_id", "body"],
            )
        for first in range(0, fills, batch):
            rows2 = [
                ("binance", str(i + 1), epoch, SEED_INSTANCE, f"seed-{epoch}-{i}", symbol,
                 "buy" if i % 2 == 0 else "sell", Decimal("100") + i % 7, Decimal("0.01"),
                 Decimal("0.001"), "USDT", start + timedelta(seconds=i))
                for i in range(first, min(fills, first + batch))
            ]  # fmt: skip
            await conn.copy_records_to_table(
                "fills",
                records=rows2,
                columns=["venue", "trade_id", "epoch", "instance", "client_order_id", "symbol",
                         "side", "price", "qty", "fee", "fee_asset", "traded_at"],
            )  # fmt: skip
    finally:
        await conn.close()
