"""The daily report against real PostgreSQL and moto's S3: figures match the journal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from flows.objstore import ObjectStore
from flows.reports import build_daily_report, list_reports
from tests.stubs.journal_seed import take_lease

DAY = date(2026, 11, 26)


def _at(hour: int, minute: int = 0, second: float = 0, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) + timedelta(seconds=second)


# (trade id, order, side, price, qty, fee, time, liquidity as the venue said)
FILLS = [
    ("1", "o-1", "buy", "90", "1", "0", _at(23, day=25), None),  # the day before: opening
    ("2", "o-2", "sell", "99.5", "1", "0.1", _at(1), None),  # market order: taker
    ("3", "o-3", "buy", "99.9", "2", "0.1", _at(2), "maker"),
    ("4", "o-4", "sell", "101", "1", "0.1", _at(3), None),  # limit, unqualified
    ("5", "o-5", "buy", "130", "1", "0", _at(1, day=27), "taker"),  # the day after
]
# order → (type, limit, amount, arrival mid, decided at); s-* are orders that did not fill:
# their arrival mids are the market the markouts read
ORDERS = {
    "o-1": ("limit", "90", "1", None, _at(22, 59, day=25)),
    "o-2": ("market", None, "1", "100", _at(0, 59, 59.9)),
    "o-3": ("limit", "100", "2", "100", _at(1, 59, 59)),
    "o-4": ("limit", "101", "1", "100.9", _at(2, 59, 58)),
    "s-1": ("limit", "100", "1", "100.0", _at(2, 0, 0.5)),  # before o-3's 1 s horizon
    "s-2": ("limit", "100", "1", "100.2", _at(2, 0, 2)),  # o-3 at 1 s (1 s late: counts)
    "s-3": ("limit", "100", "1", "100.4", _at(2, 0, 30)),  # 20 s after 10 s: too late
    "s-4": ("limit", "100", "1", "99.8", _at(2, 1, 1)),  # o-3 at 60 s
    "s-5": ("limit", "100", "1", "100.5", _at(3, 0, 10)),  # o-4 at 10 s (1 s: 9 s late)
}
RISK_V1 = {
    "max_position_lots": 100,
    "max_symbol_notional": 1000.0,
    "max_portfolio_exposure": 2000.0,
    "max_order_notional": 150.0,
    "correlation": 0.7,
}
TAKEOVERS = [  # (when, release version, risk): v2 raises the position limit at 02:30
    (_at(22, day=25), "v1", RISK_V1),
    (_at(2, 30), "v2", {**RISK_V1, "max_position_lots": 300}),
]


async def _journal(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        epoch = await take_lease(conn)
        rows: list[tuple[str, str | None, dict[str, object], datetime]] = []
        for cid, (kind, price, amount, mid, at) in ORDERS.items():
            body: dict[str, object] = {"symbol": "BTC/USDT", "side": "buy", "type": kind,
                                       "amount": amount, "price": price}  # fmt: skip
            if mid is not None:
                body["context"] = {"arrival_mid": mid,
                                   "decided_at_ms": int(at.timestamp() * 1000)}  # fmt: skip
            rows.append(("order_new", cid, body, at))
        for at, version, risk in TAKEOVERS:
            rows.append(("leadership", None, {
                "event": "acquired", "epoch": epoch, "color": "blue",
                "release": {"version": version, "risk": risk},
                "instruments": {"BTC/USDT": {"tick_size": "0.01", "lot_size": "0.01"}},
            }, at))  # fmt: skip
        await conn.executemany(
            "INSERT INTO journal_events (event_id, epoch, instance, kind, client_order_id,"
            " body, recorded_at) VALUES (gen_random_uuid(), $1, 'seed', $2, $3, $4, $5)",
            [(epoch, kind, cid, json.dumps(body), at) for kind, cid, body, at in rows],
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO fills (venue, trade_id, epoch, instance, client_order_id, symbol, side,"
            " price, qty, fee, fee_asset, traded_at, liquidity) VALUES"
            " ('binance', $1, $2, 'seed', $3, 'BTC/USDT', $4, $5, $6, $7, 'USDT', $8, $9)",
            [(t, epoch, o, s, Decimal(p), Decimal(q), Decimal(f), at, liq)
             for t, o, s, p, q, f, at, liq in FILLS],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO dr_drills (drill_id, mode, started_at, passed, rto_s, rpo_events,"
            " report) VALUES ('20261126T050000Z-switchover', 'switchover', $1, true, 0.4, 0,"
            " '{}')", _at(5))  # fmt: skip
    finally:
        await conn.close()


def _bps(value: str) -> float:
    return float(Decimal(value) * 10_000)


async def test_daily_report_figures_match_the_journal(dsn: str, backup_store: ObjectStore) -> None:
    await _journal(dsn)

    report = await build_daily_report(dsn=dsn, store=backup_store, day=DAY, venue="binance")

    stored = json.loads(
        backup_store.get_bytes(report.json_uri.removeprefix(backup_store.uri + "/"))
    )
    totals = stored["pnl"]["totals"]
    assert Decimal(totals["realised"]) == Decimal("10.6")  # 99.5 - 90, then 101 - 99.9
    assert Decimal(totals["unrealised"]) == Decimal("1.1")  # 1 BTC at 99.9, marked 101
    assert Decimal(totals["fees"]) == Decimal("0.3")
    btc = stored["pnl"]["symbols"]["BTC/USDT"]
    assert (btc["opening_qty"], btc["closing_qty"], btc["fills"]) == ("1", "1", 3)

    execution = stored["execution"]
    assert (execution["maker_share"], execution["taker_share"]) == (0.5, 0.5)
    assert execution["unqualified_fills"] == 1  # o-4: the venue did not say, a limit order
    slippage = execution["slippage_vs_arrival_mid_bps"]
    sell_2, buy_3 = _bps("0.5") / 100, _bps("-0.1") / 100  # vs mid 100: +50 and -10 bps
    sell_4 = -_bps("0.1") / 100.9  # sold 0.1 above the mid: -9.91 bps
    assert slippage["all"] == pytest.approx((sell_2 + 2 * buy_3 + sell_4) / 4, abs=1e-3)
    assert slippage["taker"] == pytest.approx(sell_2, abs=1e-3)
    assert slippage["maker"] == pytest.approx(buy_3, abs=1e-3)  # o-4 is unqualified
    assert execution["markout_fills"] == {"1s": 1, "10s": 1, "60s": 1}
    assert execution["markout_bps"]["1s"] == pytest.approx(_bps("0.3") / 99.9, abs=1e-3)
    assert execution["markout_bps"]["10s"] == pytest.approx(_bps("0.5") / 101, abs=1e-3)
    assert execution["markout_bps"]["60s"] == pytest.approx(-_bps("0.1") / 99.9, abs=1e-3)

    risk = stored["risk"]
    assert risk["limits"]["release"] == "v2"
    assert risk["releases_in_force"] == ["v1", "v2"]
    peak = risk["peak_use"]
    # 2 BTC after o-3 at 02:00 under v1's 100 lots of 0.01: twice the limit
    assert peak["position"]["BTC/USDT"]["use"] == 2.0
    assert peak["position"]["BTC/USDT"]["at"] == _at(2).isoformat()
    assert peak["symbol_notional"]["BTC/USDT"]["use"] == pytest.approx(199.8 / 1000)
    assert peak["portfolio_exposure"]["use"] == pytest.approx(199.8 / 2000)
    assert peak["order_notional"]["use"] == pytest.approx(200 / 150, abs=1e-4)  # o-3
    assert risk["breaches"] == ["order_notional", "position BTC/USDT"]

    operations = stored["operations"]
    assert [d["drill_id"] for d in operations["drills"]] == ["20261126T050000Z-switchover"]
    assert operations["drills"][0]["rto_s"] == 0.4
    assert [t["release"] for t in operations["engine_takeovers"]] == ["v2"]
    html = backup_store.get_bytes(report.html_uri.removeprefix(backup_store.uri + "/")).decode()
    assert html.count('<img alt="') == 2
    png = backup_store.get_bytes(
        report.html_uri.removeprefix(backup_store.uri + "/").replace(".html", "-pnl.png")
    )
    assert png.startswith(b"\x89PNG")
    assert "2026-11-26" in html
    listed = await list_reports(dsn)
    assert [r["report_id"] for r in listed] == [report.report_id]
