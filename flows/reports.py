"""The daily report: PnL, positions, execution quality, operations → HTML + JSON.

Figures come from the journal (``fills``, ORDER_NEW bodies) and from what the other
chores stored (``flow_backups``, ``flow_restore_tests``, ``reconciliation_*``) and the
model registry's transitions (rollouts). The charts are PNG (matplotlib), stored beside
the report and inlined in the HTML so the page stands alone; the JSON holds every figure
of the HTML. All go to ``flows.reports_uri`` under ``daily/<day>/`` and are listed in
``flow_reports``.

Execution quality (``flows.execution``) is measured against the arrival mid each order
journaled; risk-limit use (``flows.risk_use``) against the limits each takeover
journaled. Operations list the day's backups, restore tests, reconciliations, model
transitions, engine takeovers (which release led: blue-green rollouts show here) and
disaster-recovery drills with their RTO/RPO.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import escape
from typing import Any

import asyncpg
import structlog

from engine.live.fills import load_fills
from flows.charts import line_chart_png
from flows.execution import MARKOUT_HORIZONS_S, MAX_SAMPLE_DELAY, MidSamples, OrderIntent
from flows.execution import execution_quality as execution_section
from flows.objstore import ObjectStore
from flows.pnl import DayPnl, day_pnl
from flows.report_index import fetch_reports
from flows.risk_use import LimitsInForce, risk_use

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class DailyReport:
    """A rendered report and where it went."""

    report_id: str
    day: date
    html_uri: str
    json_uri: str
    document: dict[str, Any]
    html: str

    def as_json(self) -> dict[str, object]:
        """Return where the report is and its headline figures."""
        return {"report_id": self.report_id, "day": self.day.isoformat(),
                "html_uri": self.html_uri, "json_uri": self.json_uri,
                "pnl": self.document["pnl"]["totals"],
                "fills": self.document["execution"]["fills"]}  # fmt: skip


async def operations(pool: asyncpg.Pool, start: datetime, end: datetime) -> dict[str, Any]:
    """Return the day's backups, restore tests, reconciliations and model rollouts."""
    backups = await pool.fetch(
        "SELECT status, count(*) AS n FROM flow_backups WHERE created_at >= $1"
        " AND created_at < $2 GROUP BY status", start, end)  # fmt: skip
    tests = await pool.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE ok) AS ok, avg(restore_s) AS restore_s"
        " FROM flow_restore_tests WHERE tested_at >= $1 AND tested_at < $2",
        start, end,
    )  # fmt: skip
    runs = await pool.fetch(
        "SELECT run_id, breaks, escalated, repaired, summary FROM reconciliation_runs"
        " WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at", start, end)  # fmt: skip
    rollouts: list[dict[str, object]] = []
    if await pool.fetchval("SELECT to_regclass('model_transitions') IS NOT NULL"):
        rows = await pool.fetch(
            "SELECT version, from_state, to_state, by, reason, at FROM model_transitions"
            " WHERE at >= $1 AND at < $2 ORDER BY seq", start, end)  # fmt: skip
        rollouts = [{**dict(r), "at": r["at"].isoformat()} for r in rows]
    drills = await pool.fetch(
        "SELECT drill_id, mode, passed, rto_s, rpo_events, report_uri FROM dr_drills"
        " WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at", start, end)  # fmt: skip
    takeovers = await pool.fetch(
        "SELECT recorded_at, epoch, instance, body FROM journal_events WHERE kind = 'leadership'"
        " AND body->>'event' = 'acquired' AND recorded_at >= $1 AND recorded_at < $2"
        " ORDER BY seq", start, end)  # fmt: skip
    assert tests is not None
    return {
        "backups": {r["status"]: r["n"] for r in backups},
        "restore_tests": {"count": tests["n"], "ok": tests["ok"],
                          "mean_restore_s": tests["restore_s"]},
        "reconciliations": [{"run_id": str(r["run_id"]), "breaks": r["breaks"],
                             "escalated": r["escalated"], "repaired": r["repaired"],
                             **json.loads(r["summary"])} for r in runs],
        "model_transitions": rollouts,
        "engine_takeovers": [{"at": r["recorded_at"].isoformat(), "epoch": r["epoch"],
                              "instance": r["instance"],
                              "color": json.loads(r["body"]).get("color"),
                              "release": (json.loads(r["body"]).get("release") or {}).get(
                                  "version")} for r in takeovers],
        "drills": [{"drill_id": r["drill_id"], "mode": r["mode"], "passed": r["passed"],
                    "rto_s": r["rto_s"], "rpo_events": r["rpo_events"],
                    "report_uri": r["report_uri"]} for r in drills],
    }  # fmt: skip


def pnl_document(pnl: DayPnl) -> dict[str, Any]:
    """Return the PnL and positions sections."""
    symbols = {}
    for symbol, b in sorted(pnl.books.items()):
        mark = pnl.marks.get(symbol)
        symbols[symbol] = {
            "opening_qty": str(b.opening_qty), "closing_qty": str(b.qty),
            "avg_price": str(b.avg_price), "mark": None if mark is None else str(mark),
            "realised": str(b.realised), "unrealised": str(b.unrealised(mark)),
            "fees": str(b.fees), "other_fees": {a: str(v) for a, v in b.other_fees.items()},
            "fills": b.fills, "volume": str(b.volume), "notional": str(b.notional),
        }  # fmt: skip
    return {"totals": pnl.totals(), "symbols": symbols}


def render_charts(pnl: DayPnl) -> dict[str, bytes]:
    """Return the report's charts as PNG, by name."""

    def floats(series: list[tuple[datetime, Decimal]]) -> list[tuple[datetime, float]]:
        return [(t, float(v)) for t, v in series]

    return {
        "pnl": line_chart_png("cumulative realised PnL", {"realised": floats(pnl.curve)},
                              ylabel="quote asset"),
        "positions": line_chart_png(
            "position by symbol", {s: floats(c) for s, c in pnl.position_curves.items()},
            ylabel="base asset",
        ),
    }  # fmt: skip


def render_html(document: dict[str, Any], charts: dict[str, bytes]) -> str:
    """Return the report as one self-contained HTML page (charts inlined as PNG)."""
    images = [
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
        for name, png in charts.items()
    ]

    def table(rows: dict[str, Any]) -> str:
        cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(json.dumps(v, default=str))}"
                        "</td></tr>" for k, v in rows.items())  # fmt: skip
        return f"<table>{cells}</table>"

    sections = [
        f"<h1>bot4 daily report {escape(document['day'])}</h1>",
        f"<p>venue {escape(document['venue'])}, generated {escape(document['generated_at'])}</p>",
        "<h2>PnL</h2>", table(document["pnl"]["totals"]), *images,
        "<h2>Positions</h2>", table(document["pnl"]["symbols"]),
        "<h2>Risk-limit use</h2>", table(document["risk"]),
        "<h2>Execution quality</h2>", table(document["execution"]),
        "<h2>Operations</h2>", table(document["operations"]),
    ]  # fmt: skip
    style = "body{font-family:sans-serif;max-width:900px}th{text-align:left;padding-right:1em}"
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head>" \
        f"<body>{''.join(sections)}</body></html>"  # fmt: skip


async def build_daily_report(
    *, dsn: str, store: ObjectStore, day: date, venue: str, dry_run: bool = False
) -> DailyReport:
    """Compute, render and store the report of ``day`` (UTC)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        fills = [f for f in await load_fills(pool, venue=venue) if f.traded_at < end]
        today = [f for f in fills if f.traded_at >= start]
        intents = await load_intents(
            pool, start=start, end=end, client_order_ids={f.client_order_id for f in today}
        )
        timeline = await load_limits(pool, end=end)
        pnl = day_pnl(fills, start=start, end=end)
        day_intents = [
            i for i in intents.values() if i.decided_at is not None and start <= i.decided_at < end
        ]
        document: dict[str, Any] = {
            "kind": "daily", "day": day.isoformat(), "venue": venue,
            "generated_at": datetime.now(UTC).isoformat(),
            "pnl": pnl_document(pnl),
            "risk": risk_use(fills, day_intents, timeline=timeline, start=start, end=end),
            "execution": execution_section(today, intents, MidSamples.of(intents.values()),
                                           pnl.marks),
            "operations": await operations(pool, start, end),
        }  # fmt: skip
        report_id = f"daily-{day.isoformat()}-{secrets.token_hex(3)}"
        charts = render_charts(pnl)
        html = render_html(document, charts)
        key = f"daily/{day.isoformat()}/{report_id}"
        html_uri, json_uri = store.uri_of(key + ".html"), store.uri_of(key + ".json")
        if not dry_run:
            for name, png in charts.items():
                store.put_bytes(png, f"{key}-{name}.png", content_type="image/png")
            store.put_bytes(html.encode(), key + ".html", content_type="text/html")
            store.put_bytes(json.dumps(document, indent=2).encode(), key + ".json",
                            content_type="application/json")  # fmt: skip
            await pool.execute(
                "INSERT INTO flow_reports (report_id, kind, day, html_uri, json_uri, summary)"
                " VALUES ($1, 'daily', $2, $3, $4, $5)",
                report_id, day, html_uri, json_uri,
                json.dumps({"pnl": document["pnl"]["totals"], "fills": len(today)}),
            )  # fmt: skip
    log.info("report_built", report_id=report_id, day=day.isoformat(), fills=len(today))
    return DailyReport(report_id=report_id, day=day, html_uri=html_uri, json_uri=json_uri,
                       document=document, html=html)  # fmt: skip


async def load_intents(
    pool: asyncpg.Pool, *, start: datetime, end: datetime, client_order_ids: set[str]
) -> dict[str, OrderIntent]:
    """Return the ORDER_NEW intents of the day's fills and every order decided in the day.

    Orders decided up to the longest markout horizon after the day are included: their
    arrival mids are the market the last fills' markouts are measured against.
    """
    until = end + timedelta(seconds=max(MARKOUT_HORIZONS_S)) + MAX_SAMPLE_DELAY
    rows = await pool.fetch(
        "SELECT client_order_id, recorded_at, body FROM journal_events WHERE kind = 'order_new'"
        " AND (client_order_id = ANY($1::text[]) OR (recorded_at >= $2 AND recorded_at < $3))",
        sorted(client_order_ids), start, until,
    )  # fmt: skip
    intents = {}
    for r in rows:
        try:
            intents[r["client_order_id"]] = OrderIntent.from_body(
                json.loads(r["body"]), recorded_at=r["recorded_at"])  # fmt: skip
        except (KeyError, ValueError, ArithmeticError) as e:
            # one malformed body must not cost the whole report: named, then left out
            log.warning("report_order_body_unreadable", client_order_id=r["client_order_id"],
                        error=f"{type(e).__name__}: {e}")  # fmt: skip
    return intents


async def load_limits(pool: asyncpg.Pool, *, end: datetime) -> list[LimitsInForce]:
    """Return the limits every takeover before ``end`` journaled, oldest first."""
    rows = await pool.fetch(
        "SELECT recorded_at, body FROM journal_events WHERE kind = 'leadership'"
        " AND body->>'event' = 'acquired' AND recorded_at < $1 ORDER BY seq", end)  # fmt: skip
    return [LimitsInForce.from_body(json.loads(r["body"]), recorded_at=r["recorded_at"])
            for r in rows]  # fmt: skip


async def list_reports(dsn: str, *, limit: int = 100) -> list[dict[str, object]]:
    """Return the stored reports, newest day first."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await fetch_reports(conn, limit=limit)
    finally:
        await conn.close()
