"""The daily report against real PostgreSQL and moto's S3: figures match the journal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from flows.objstore import ObjectStore
from flows.reports import build_daily_report, list_reports
from tests.stubs.journal_seed import take_lease

DAY = date(2026, 11, 26)


def _at(hour: int, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


# (trade id, order, side, price, qty, fee, fee asset, time)
FILLS = [
    ("1", "o-1", "buy", "90", "1", "0", "USDT", _at(23, 25)),  # the day before: opening
    ("2", "o-2", "sell", "100", "1", "0.1", "USDT", _at(1)),  # closes the opening: +10
    ("3", "o-3", "buy", "100", "1", "0.1", "USDT", _at(2)),
    ("4", "o-4", "buy", "110", "1", "0.001", "BTC", _at(3)),  # avg 105; fee 0.11 USDT
    ("5", "o-5", "sell", "120", "1", "0.1", "USDT", _at(4)),  # +15; 1 left at 105
    ("6", "o-6", "buy", "130", "1", "0", "USDT", _at(1, 27)),  # the day after: ignored
]
ORDERS = {"o-2": ("market", None), "o-3": ("limit", "101"), "o-4": ("limit", "110"),
          "o-5": ("market", None)}  # fmt: skip


async def _journal(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        epoch = await take_lease(conn)
        for cid, (kind, price) in ORDERS.items():
            body = {"symbol": "BTC/USDT", "side": "buy", "type": kind, "amount": "1",
                    "price": price}  # fmt: skip
            await conn.execute(
                "INSERT INTO journal_events (event_id, epoch, instance, kind, client_order_id,"
                " body) VALUES (gen_random_uuid(), $1, 'seed', 'order_new', $2, $3)",
                epoch, cid, json.dumps(body),
            )  # fmt: skip
        await conn.executemany(
            "INSERT INTO fills (venue, trade_id, epoch, instance, client_order_id, symbol, side,"
            " price, qty, fee, fee_asset, traded_at) VALUES"
            " ('binance', $1, $2, 'seed', $3, 'BTC/USDT', $4, $5, $6, $7, $8, $9)",
            [(t, epoch, o, s, Decimal(p), Decimal(q), Decimal(f), a, at)
             for t, o, s, p, q, f, a, at in FILLS],
        )  # fmt: skip
    finally:
        await conn.close()


async def test_daily_report_figures_match_the_journal(dsn: str, backup_store: ObjectStore) -> None:
    await _journal(dsn)

    report = await build_daily_report(dsn=dsn, store=backup_store, day=DAY, venue="binance")

    stored = json.loads(
        backup_store.get_bytes(report.json_uri.removeprefix(backup_store.uri + "/"))
    )
    totals = stored["pnl"]["totals"]
    assert Decimal(totals["realised"]) == Decimal(25)  # 10 + 15
    assert Decimal(totals["unrealised"]) == Decimal(15)  # 1 BTC at 105, marked 120
    assert Decimal(totals["fees"]) == Decimal("0.41")  # 0.1 + 0.1 + 0.001 BTC at 110 + 0.1
    btc = stored["pnl"]["symbols"]["BTC/USDT"]
    assert (btc["opening_qty"], btc["closing_qty"], btc["fills"]) == ("1", "1", 4)
    execution = stored["execution"]
    assert execution["taker_share"] == 0.5
    # o-3 limit 101 filled at 100: 99.0099 bps better; o-4 at its limit: 0
    assert abs(execution["limit_price_improvement_bps_mean"] - 49.505) < 0.001
    html = backup_store.get_bytes(report.html_uri.removeprefix(backup_store.uri + "/")).decode()
    assert html.count('<img alt="') == 2
    png = backup_store.get_bytes(
        report.html_uri.removeprefix(backup_store.uri + "/").replace(".html", "-pnl.png")
    )
    assert png.startswith(b"\x89PNG")
    assert "2026-11-26" in html
    listed = await list_reports(dsn)
    assert [r["report_id"] for r in listed] == [report.report_id]
