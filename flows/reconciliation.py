"""Reconciliation: the journal's fills, open orders and balances against the venue's.

The journal side is what the engine itself rebuilds from at startup
(:func:`engine.live.recovery.load_journal`: orders and fills; the balance baseline of
:mod:`engine.live.baseline`). The venue side comes through the exchange adapter: every
fill of each configured symbol paged by trade id, the open orders, the balances. Breaks:

- ``missing_fill``: the venue has a trade of the account the journal lacks;
- ``unknown_fill``: the journal has a fill the venue does not list;
- ``quantity_mismatch`` / ``price_mismatch``: both have it, with different numbers;
- ``unknown_open_order``: an order rests at the venue that the journal does not know
  as live (an out-of-band order, or an engine's orphan);
- ``balance_drift``: an asset's venue balance differs from baseline + what the trades
  imply (the journal's fills, corrected by the fill breaks above, so a missing fill is
  reported once, as itself); a deposit, a withdrawal, or a trade in another symbol.

Differences within the tolerances are not breaks. A break whose key was also a break of
the previous run is aged (``consecutive_runs``) and escalated once it reaches
``escalate_after_runs``. ``repair`` records missing fills into the journal from the
venue's view (audited with a journal event), never the other way; it needs the trading
lease, so it refuses while an engine trades (the engine's own recovery journals missing
fills at its next start).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import asyncpg
import structlog

from engine.execution import Fill, VenueSession
from engine.journal import FillRecord, Journal, JournalEvent, JournalKind
from engine.leadership import Lease
from engine.live.baseline import load_baseline
from engine.live.fills import PositionStore, asset_deltas, fill_record, positions_from
from engine.live.recovery import load_journal

log = structlog.get_logger(__name__)

BreakKind = Literal[
    "missing_fill", "unknown_fill", "unknown_open_order", "quantity_mismatch",
    "price_mismatch", "balance_drift",
]  # fmt: skip
REPAIR_INSTANCE = "reconciliation"


class ReconciliationError(Exception):
    """Reconciliation could not run or repair; the message says what to do."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconcileConfig:
    """Tolerances and ageing of one reconciliation.

    ``settle_s``: fills younger than this (at the start of the run) are not compared, so
    a fill an engine is still journaling is no break; they still explain balances.
    """

    venue: str
    symbols: tuple[str, ...]
    quantity_tolerance: Decimal = Decimal("0.00000001")
    price_tolerance: Decimal = Decimal("0.00000001")
    escalate_after_runs: int = 2
    settle_s: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Break:
    """One difference between the journal and the venue."""

    kind: BreakKind
    key: str
    symbol: str | None = None
    asset: str | None = None
    expected: str | None = None
    actual: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)
    consecutive_runs: int = 1
    escalated: bool = False
    repaired: bool = False

    def as_json(self) -> dict[str, object]:
        """Return the break as JSON."""
        return {
            "kind": self.kind, "key": self.key, "symbol": self.symbol, "asset": self.asset,
            "expected": self.expected, "actual": self.actual, "detail": dict(self.detail),
            "consecutive_runs": self.consecutive_runs, "escalated": self.escalated,
            "repaired": self.repaired,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconciliationReport:
    """The outcome of one run, as stored in ``reconciliation_runs``."""

    run_id: str
    venue: str
    started_at: datetime
    finished_at: datetime
    fills_checked: int
    breaks: tuple[Break, ...]
    repaired: int
    balances_checked: bool

    @property
    def ok(self) -> bool:
        """Return whether no break is left unrepaired."""
        return all(b.repaired for b in self.breaks)

    @property
    def escalated(self) -> int:
        """Return how many breaks were escalated."""
        return sum(b.escalated for b in self.breaks)

    def counts(self) -> dict[str, int]:
        """Return the number of breaks of each kind."""
        counts: dict[str, int] = {}
        for b in self.breaks:
            counts[b.kind] = counts.get(b.kind, 0) + 1
        return counts

    def as_json(self) -> dict[str, object]:
        """Return the report as JSON."""
        return {
            "run_id": self.run_id, "venue": self.venue, "ok": self.ok,
            "started_at": self.started_at.isoformat(),
            "seconds": round((self.finished_at - self.started_at).total_seconds(), 3),
            "fills_checked": self.fills_checked, "break_counts": self.counts(),
            "escalated": self.escalated, "repaired": self.repaired,
            "balances_checked": self.balances_checked,
            "breaks": [b.as_json() for b in self.breaks],
        }  # fmt: skip


FillKey = tuple[str, str, str]


def _key(f: FillRecord) -> FillKey:
    return (f.symbol, f.trade_id, f.side)


def compare_fills(
    journal: Sequence[FillRecord], venue: Sequence[FillRecord], config: ReconcileConfig
) -> list[Break]:
    """Return the fill breaks between the journal's and the venue's fills."""
    ours = {_key(f): f for f in journal}
    theirs = {_key(f): f for f in venue}
    breaks: list[Break] = []
    for key in sorted(theirs.keys() - ours.keys()):
        f = theirs[key]
        breaks.append(Break(kind="missing_fill", key="fill:" + ":".join(key), symbol=f.symbol,
                            actual=str(f.qty), detail=_fill_detail(f)))  # fmt: skip
    for key in sorted(ours.keys() - theirs.keys()):
        f = ours[key]
        breaks.append(Break(kind="unknown_fill", key="fill:" + ":".join(key), symbol=f.symbol,
                            expected=str(f.qty), detail=_fill_detail(f)))  # fmt: skip
    for key in sorted(ours.keys() & theirs.keys()):
        a, b = ours[key], theirs[key]
        if abs(a.qty - b.qty) > config.quantity_tolerance:
            breaks.append(Break(kind="quantity_mismatch", key="qty:" + ":".join(key),
                                symbol=a.symbol, expected=str(a.qty), actual=str(b.qty),
                                detail=_fill_detail(b)))  # fmt: skip
        if abs(a.price - b.price) > config.price_tolerance:
            breaks.append(Break(kind="price_mismatch", key="price:" + ":".join(key),
                                symbol=a.symbol, expected=str(a.price), actual=str(b.price),
                                detail=_fill_detail(b)))  # fmt: skip
    return breaks


def _fill_detail(f: FillRecord) -> dict[str, object]:
    return {"trade_id": f.trade_id, "side": f.side, "price": str(f.price), "qty": str(f.qty),
            "fee": str(f.fee), "fee_asset": f.fee_asset, "client_order_id": f.client_order_id,
            "traded_at": f.traded_at.isoformat()}  # fmt: skip


def compare_balances(
    *,
    baseline: Mapping[str, Decimal],
    explained: Sequence[FillRecord],
    balances: Mapping[str, Decimal],
    assets: set[str],
    tolerance: Decimal,
) -> list[Break]:
    """Return the assets whose balance differs from baseline + what ``explained`` implies."""
    deltas = asset_deltas(positions_from(explained).values())
    breaks = []
    for asset in sorted(assets | set(deltas) | set(baseline) | set(balances)):
        expected = baseline.get(asset, Decimal(0)) + deltas.get(asset, Decimal(0))
        actual = balances.get(asset, Decimal(0))
        if abs(expected - actual) > tolerance:
            breaks.append(Break(kind="balance_drift", key=f"balance:{asset}", asset=asset,
                                expected=str(expected), actual=str(actual),
                                detail={"difference": str(actual - expected)}))  # fmt: skip
    return breaks


async def venue_fills(
    session: VenueSession, *, venue: str, symbols: Sequence[str], client_ids: Mapping[str, str]
) -> list[FillRecord]:
    """Return every fill of the account in ``symbols``, paged by trade id."""
    pages = await asyncio.gather(
        *(session.account.fetch_fills(s, after_trade_id=0) for s in symbols)
    )

    def record(f: Fill) -> FillRecord:
        cid = client_ids.get(f.order_id, f"venue-order-{f.order_id}")
        return fill_record(f, venue=venue, client_order_id=cid)

    return [record(f) for page in pages for f in page]


async def reconcile(
    pool: asyncpg.Pool, session: VenueSession, *, config: ReconcileConfig, repair: bool = False
) -> ReconciliationReport:
    """Compare the journal with the venue, store the run and its breaks, repair if asked.

    Raises:
        ReconciliationError: a repair was asked while an engine holds the trading lease.
        EngineError: the venue could not be queried.
    """
    started_at = datetime.now(UTC)
    image = await load_journal(pool, venue=config.venue)
    baseline = await load_baseline(pool)
    client_ids = {o.order_id: o.client_order_id for o in image.orders if o.order_id}
    live = {o.client_order_id for o in image.orders if not o.terminal}
    theirs, open_lists, balances = await asyncio.gather(
        venue_fills(session, venue=config.venue, symbols=config.symbols, client_ids=client_ids),
        asyncio.gather(*(session.orders.fetch_open_orders(s) for s in config.symbols)),
        session.account.fetch_balances(),
    )
    cutoff = started_at - timedelta(seconds=config.settle_s)
    breaks = compare_fills(
        [f for f in image.fills if f.traded_at < cutoff],
        [f for f in theirs if f.traded_at < cutoff],
        config,
    )
    for orders in open_lists:
        for o in orders:
            if o.client_order_id not in live:
                breaks.append(Break(
                    kind="unknown_open_order", key=f"order:{o.symbol}:{o.order_id}",
                    symbol=o.symbol, actual=str(o.amount - o.filled),
                    detail={"client_order_id": o.client_order_id, "order_id": o.order_id,
                            "side": o.side, "price": str(o.price), "amount": str(o.amount)},
                ))  # fmt: skip
    if baseline is not None:
        venue_by_key = {_key(f): f for f in theirs}
        unknown = {_key(f) for f in image.fills} - venue_by_key.keys()
        missing = venue_by_key.keys() - {_key(f) for f in image.fills}
        explained = [f for f in image.fills if _key(f) not in unknown]
        explained += [venue_by_key[k] for k in missing]
        assets = {a for s in config.symbols for a in s.split("/")}
        breaks += compare_balances(
            baseline=baseline, explained=explained,
            balances={a: b.total for a, b in balances.items()}, assets=assets,
            tolerance=config.quantity_tolerance,
        )  # fmt: skip
    repaired = 0
    if repair and any(b.kind == "missing_fill" for b in breaks):
        fills = [f for f in theirs if "fill:" + ":".join(_key(f)) in
                 {b.key for b in breaks if b.kind == "missing_fill"}]  # fmt: skip
        repaired = await record_missing_fills(pool, fills, run_started=started_at)
        breaks = [_with(b, repaired=True) if b.kind == "missing_fill" else b for b in breaks]
    breaks = await _age(pool, breaks, venue=config.venue, escalate_after=config.escalate_after_runs)
    report = ReconciliationReport(
        run_id=str(uuid.uuid4()), venue=config.venue, started_at=started_at,
        finished_at=datetime.now(UTC), fills_checked=len(theirs), breaks=tuple(breaks),
        repaired=repaired, balances_checked=baseline is not None,
    )  # fmt: skip
    await store_run(pool, report)
    level = log.error if not report.ok else log.info
    level("reconciliation_done", run_id=report.run_id, breaks=report.counts(),
          escalated=report.escalated, repaired=repaired, fills=len(theirs))  # fmt: skip
    return report


def _with(b: Break, **changes: Any) -> Break:
    return replace(b, **changes)


async def _age(
    pool: asyncpg.Pool, breaks: list[Break], *, venue: str, escalate_after: int
) -> list[Break]:
    """Count how many runs in a row saw each break; escalate the persistent ones."""
    previous = await pool.fetchval(
        "SELECT run_id FROM reconciliation_runs WHERE venue = $1 ORDER BY started_at DESC LIMIT 1",
        venue,
    )
    seen: dict[str, int] = {}
    if previous is not None:
        rows = await pool.fetch(
            "SELECT break_key, consecutive_runs FROM reconciliation_breaks"
            " WHERE run_id = $1 AND NOT repaired",
            previous,
        )
        seen = {r["break_key"]: r["consecutive_runs"] for r in rows}
    aged = []
    for b in breaks:
        runs = seen.get(b.key, 0) + 1
        aged.append(_with(b, consecutive_runs=runs,
                          escalated=not b.repaired and runs >= escalate_after))  # fmt: skip
    return aged


async def store_run(pool: asyncpg.Pool, report: ReconciliationReport) -> None:
    """Write the run and its breaks in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO reconciliation_runs (run_id, venue, started_at, finished_at,"
            " fills_checked, breaks, escalated, repaired, summary)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            uuid.UUID(report.run_id), report.venue, report.started_at, report.finished_at,
            report.fills_checked, len(report.breaks), report.escalated, report.repaired,
            json.dumps({"break_counts": report.counts(), "ok": report.ok,
                        "balances_checked": report.balances_checked}),
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO reconciliation_breaks (run_id, kind, break_key, symbol, asset,"
            " expected, actual, detail, consecutive_runs, escalated, repaired)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [(uuid.UUID(report.run_id), b.kind, b.key, b.symbol, b.asset, b.expected, b.actual,
              json.dumps(dict(b.detail)), b.consecutive_runs, b.escalated, b.repaired)
             for b in report.breaks],
        )  # fmt: skip


async def record_missing_fills(
    pool: asyncpg.Pool, fills: Sequence[FillRecord], *, run_started: datetime
) -> int:
    """Journal ``fills`` (the venue's view) under the trading lease; return how many.

    Audited: one journal event names every fill recorded and why. Positions of the
    symbols touched are rebuilt from all their fills.

    Raises:
        ReconciliationError: an engine holds the trading lease.
    """
    lease = Lease(pool, instance=REPAIR_INSTANCE, ttl_s=60)
    epoch = await lease.try_acquire()
    if epoch is None:
        raise ReconciliationError(
            "an engine holds the trading lease: halt it (bot4 engine halt) before --repair,"
            " or let its startup recovery journal the missing fills"
        )
    try:
        audit = JournalEvent(kind=JournalKind.LEADERSHIP, body={
            "event": "reconciliation_repair", "run_started": run_started.isoformat(),
            "fills": [_fill_detail(f) | {"symbol": f.symbol} for f in fills],
        })  # fmt: skip
        result = await Journal(pool, instance=REPAIR_INSTANCE).append([audit], fills, epoch=epoch)
        store = PositionStore(pool=pool, lease="trading", epoch=epoch, instance=REPAIR_INSTANCE)
        image = await load_journal(pool, venue=fills[0].venue)
        positions = positions_from(image.fills)
        for symbol in sorted({f.symbol for f in fills}):
            await store.put(positions[symbol])
    finally:
        await lease.release()
    log.warning("reconciliation_repaired", fills=result.fills_added)
    return result.fills_added
