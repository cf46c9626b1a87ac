"""One operation's timeline by its correlation id: audit log, logs and journal rows.

The control API gives every request a correlation id (its ``X-Correlation-ID`` answer
header, the audit row); the Temporal interceptor carries it into the workflow and its
activities (``workflows.correlation``), which send it on every engine control call; the
engine binds it to its log lines and journals it with the rows the call causes. This
module gathers all of it:

- ``audit``: the API's audit rows with the id (who asked, what, the answer);
- ``log <component>``: JSON log lines with the id from every ``*.log`` under
  ``BOT4_HOME/log`` (every process of a stack appends there, naming itself);
- ``journal``: journal events with the id, and the fills of the orders among them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import asyncpg

#: log fields worth a place in the one-line summary, in this order
_SUMMARY_FIELDS: Final = (
    "action", "route", "status", "runbook", "workflow_id", "activity", "color", "reason",
    "error",
)  # fmt: skip
#: fields every line has: not repeated in the detail
_NOISE: Final = frozenset({"timestamp", "level", "correlation_id", "pid"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TraceEntry:
    """One thing that happened under the id."""

    at: datetime
    source: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """Return the entry as JSON."""
        return {"at": self.at.isoformat(), "source": self.source, "what": self.what,
                "detail": self.detail}  # fmt: skip


def log_files(home: Path) -> list[Path]:
    """Return the log files of a stack's home (rotated ones included), oldest name first."""
    folder = home / "log"
    return sorted(folder.glob("*.log*")) if folder.is_dir() else []


def scan_logs(paths: Iterable[Path], correlation_id: str) -> Iterator[TraceEntry]:
    """Yield the JSON log lines bound to ``correlation_id`` (others are not parsed)."""
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if correlation_id not in line:  # cheap: most lines are someone else's
                    continue
                try:
                    record = json.loads(line)
                    at = datetime.fromisoformat(str(record["timestamp"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a partly written or foreign line: not ours to judge
                if not isinstance(record, dict) or record.get("correlation_id") != correlation_id:
                    continue
                summary = " ".join(
                    f"{k}={record[k]}" for k in _SUMMARY_FIELDS if record.get(k) not in (None, "")
                )
                what = f"{record.get('event', '?')} {summary}".strip()
                yield TraceEntry(
                    at=at, source=f"log {record.get('component', path.name)}", what=what,
                    detail={k: v for k, v in record.items() if k not in _NOISE},
                )  # fmt: skip


async def journal_entries(pool: asyncpg.Pool, correlation_id: str) -> list[TraceEntry]:
    """Return the journal events with ``correlation_id`` and the fills of their orders."""
    events = await pool.fetch(
        "SELECT seq, recorded_at, instance, epoch, kind, client_order_id, body"
        " FROM journal_events WHERE correlation_id = $1 ORDER BY seq",
        correlation_id,
    )
    entries = []
    orders: set[str] = set()
    for e in events:
        body = json.loads(e["body"])
        order = e["client_order_id"]
        if order:
            orders.add(order)
        state = f" {body.get('from')}→{body.get('to')}" if e["kind"] == "trading_state" else ""
        entries.append(TraceEntry(
            at=e["recorded_at"], source=f"journal {e['instance']}",
            what=f"{e['kind']}{state}" + (f" order={order}" if order else "")
            + f" epoch={e['epoch']} seq={e['seq']}",
            detail={"seq": e["seq"], "kind": e["kind"], "client_order_id": order, "body": body},
        ))  # fmt: skip
    if orders:
        fills = await pool.fetch(
            "SELECT trade_id, client_order_id, symbol, side, price, qty, traded_at, instance"
            " FROM fills WHERE client_order_id = ANY($1::text[]) ORDER BY traded_at",
            sorted(orders),
        )
        for f in fills:
            entries.append(TraceEntry(
                at=f["traded_at"], source=f"journal {f['instance']}",
                what=f"fill {f['side']} {f['qty']} {f['symbol']} @ {f['price']}"
                f" order={f['client_order_id']} trade={f['trade_id']}",
                detail={k: str(v) for k, v in dict(f).items()},
            ))  # fmt: skip
    return entries


async def audit_entries(pool: asyncpg.Pool, correlation_id: str) -> list[TraceEntry]:
    """Return the API's audit rows with ``correlation_id`` (none when no API ever ran)."""
    if not await pool.fetchval("SELECT to_regclass('audit_log') IS NOT NULL"):
        return []
    rows = await pool.fetch(
        "SELECT seq, at, key_name, role, method, route, status, outcome, reason, duration_us"
        " FROM audit_log WHERE correlation_id = $1 ORDER BY seq",
        correlation_id,
    )
    return [
        TraceEntry(
            at=r["at"], source="audit",
            what=f"{r['method']} {r['route']} → {r['status']} {r['outcome']}"
            f" by {r['key_name'] or '?'} ({r['role'] or 'no role'})"
            + (f": {r['reason']}" if r["reason"] else ""),
            detail={k: v for k, v in dict(r).items() if k != "at"},
        )
        for r in rows
    ]  # fmt: skip


async def trace(dsn: str, home: Path, correlation_id: str) -> list[TraceEntry]:
    """Return everything recorded under ``correlation_id``, in time order."""
    entries = list(scan_logs(log_files(home), correlation_id))
    async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as pool:
        entries += await audit_entries(pool, correlation_id)
        entries += await journal_entries(pool, correlation_id)
    return sorted(entries, key=lambda e: e.at)
