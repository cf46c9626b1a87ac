"""Startup recovery: rebuild from the journal, then reconcile with the venue.

The journal is the source of truth for restart (DESIGN.md §4), but it can only say what
was *asked*: an order journaled NEW may or may not have reached the venue before a crash,
and fills may have happened while nobody was polling. So, before trading:

1. **Rebuild** every order from its journal events, and positions and fill cursors from
   the ``fills`` table. A NEW order without an answer becomes UNKNOWN.
2. **Resolve** every order not in a terminal state by asking the venue about its client
   id: found means adopt the venue's state; "not found" (believed only after the
   adapter's grace period) means it was never placed and it is journaled REJECTED.
3. **Orphans**: open orders at the venue with the desk's id prefixes (ours, and those of
   every instance that ever led: a deposed leader's are ours to manage now) that the
   journal does not know: the process died after sending them and before their
   ORDER_NEW was durable (the manager's ``send_before_durable`` window, one group
   commit), or the journal lost a commit. Each is journaled from the venue's view
   (ORDER_NEW marked ``adopted``); nothing can be known of its intent, so it is then
   **canceled** (the default), or left working when configured (``orphans="adopt"``).
4. **Fills**: the account's trades after the last journaled trade id are journaled; a
   trade of an order of ours the journal lacks (an orphan that filled before the crash)
   first adopts that order, so the fill keeps its client id.
5. **Positions**: the ``positions`` table is rewritten from the fills; the asset deltas
   the fills imply are compared with the venue's balances (relative to the balances
   the journal started from). A difference beyond tolerance is reported, and the caller
   starts HALTED (``RecoveryReport.ok`` is False).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import asyncpg
import structlog

from engine.execution import OrderNotFoundError
from engine.journal import FillRecord, JournalKind
from engine.live.fills import asset_deltas, load_fills, split_symbol
from engine.live.order_table import (
    LocalOrder,
    OrderPhase,
    OrderTable,
    order_from_body,
)
from engine.live.orders import LIQUIDATION_PREFIX, OrderManager

log = structlog.get_logger(__name__)

_DEFAULT_PHASE = {
    JournalKind.ORDER_UNKNOWN: OrderPhase.UNKNOWN,
    JournalKind.ORDER_ACKED: OrderPhase.ACKED,
    JournalKind.ORDER_REJECTED: OrderPhase.REJECTED,
    JournalKind.ORDER_CANCELED: OrderPhase.CANCELED,
    JournalKind.ORDER_FILLED: OrderPhase.FILLED,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RecoveryConfig:
    """How recovery reconciles.

    Attributes:
        orphans: what to do with open venue orders of ours unknown to the journal.
        tolerance: largest balance difference per asset still taken as equal.
        cancel_resting: cancel every order of the desk still resting (journal-known ones
            too, and those of the desk's other instances: a deposed leader's order left
            resting after its step-down is ours to manage now) before the balance check.
            Resting orders can fill while recovery reads balances, which would make the
            check race the market; the strategy requotes anyway once it trades again.
        balance_rounds: how many times a balance difference is re-checked (fills polled
            again after ``balance_settle_s``) before it counts: a fill of an order that was
            in flight when recovery began can land between the fill poll and the balance
            read.
        balance_settle_s: the wait between two balance checks.
    """

    orphans: Literal["cancel", "adopt"] = "cancel"
    tolerance: Decimal = Decimal("0.00000001")
    cancel_resting: bool = True
    balance_rounds: int = 3
    balance_settle_s: float = 0.5

    def __post_init__(self) -> None:
        if self.orphans not in ("cancel", "adopt"):
            raise ValueError(f"orphans must be 'cancel' or 'adopt' (got {self.orphans!r})")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 (got {self.tolerance})")
        if self.balance_rounds < 1 or self.balance_settle_s < 0:
            raise ValueError("balance_rounds must be >= 1 and balance_settle_s >= 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class BalanceMismatch:
    """An asset whose venue balance differs from what the journal implies."""

    asset: str
    expected: Decimal
    actual: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class RecoveryReport:
    """What recovery found and did. Start HALTED unless :attr:`ok`."""

    orders_rebuilt: int
    resolved: tuple[str, ...]
    not_placed: tuple[str, ...]
    unresolved: tuple[str, ...]
    orphans_canceled: tuple[str, ...]
    orphans_adopted: tuple[str, ...]
    fills_recorded: int
    mismatches: tuple[BalanceMismatch, ...]
    balances_checked: bool

    @property
    def ok(self) -> bool:
        """Return whether trading may start: all orders resolved, balances agree."""
        return not self.unresolved and not self.mismatches


@dataclass(frozen=True, kw_only=True, slots=True)
class JournalImage:
    """Orders, fills and fill cursors as the journal has them."""

    orders: tuple[LocalOrder, ...]
    fills: tuple[FillRecord, ...]
    fill_cursors: Mapping[str, int]
    ages_s: Mapping[str, float]


async def load_journal(pool: asyncpg.Pool, *, venue: str) -> JournalImage:
    """Rebuild orders from the journal's events and fills.

    Raises:
        ValueError: an ORDER_NEW body is malformed (named in the message).
        IllegalTransitionError: the journal holds a sequence the state machine forbids.
    """
    rows = await pool.fetch(
        "SELECT kind, client_order_id, body,"
        " extract(epoch FROM now() - recorded_at)::float8 AS age_s"
        " FROM journal_events WHERE kind LIKE 'order%' AND client_order_id IS NOT NULL"
        " ORDER BY seq"
    )
    table, ages = OrderTable(), {}
    for row in rows:
        cid, kind, body = row["client_order_id"], JournalKind(row["kind"]), json.loads(row["body"])
        ages[cid] = row["age_s"]
        if kind is JournalKind.ORDER_NEW:
            if cid not in table:
                table.add(order_from_body(cid, body))
            continue
        order = table.get(cid)
        if order is None:  # an orphan's cancel: not one of the journal's orders
            continue
        if body.get("order_id"):
            order.order_id = str(body["order_id"])
            table.index(order)
        phase = OrderPhase(body["phase"]) if body.get("phase") else _DEFAULT_PHASE[kind]
        order.advance(phase, reason=body.get("reason"))
    for order in table.live():
        if order.phase is OrderPhase.NEW:
            order.to(OrderPhase.UNKNOWN)  # the crash may have come after the send
    fills = await load_fills(pool, venue=venue)
    cursors: dict[str, int] = {}
    for f in fills:
        cursors[f.symbol] = max(cursors.get(f.symbol, 0), int(f.trade_id))
        order = table.get(f.client_order_id)
        if order is not None:
            order.apply_fill(f.qty)
    return JournalImage(orders=tuple(table), fills=tuple(fills), fill_cursors=cursors, ages_s=ages)


async def recover(
    manager: OrderManager,
    *,
    baseline: Mapping[str, Decimal] | None,
    config: RecoveryConfig | None = None,
) -> RecoveryReport:
    """Rebuild ``manager`` from the journal and reconcile it with the venue.

    Args:
        manager: a fresh manager of the new epoch (nothing sent yet).
        baseline: the venue balances the journal started from, by asset; None skips
            the balance check (``balances_checked`` is then False).
        config: reconciliation choices.

    Raises:
        FencedError: our epoch is stale.
        EngineError: the venue could not be queried (recovery must then be retried).
    """
    config = config or RecoveryConfig()
    pool = manager.committer.journal.pool
    image = await load_journal(pool, venue=manager.config.venue)
    manager.restore(image.orders, image.fills, fill_cursors=image.fill_cursors)
    now = manager.clock.monotonic()
    for cid, age in image.ages_s.items():
        manager.sent_at[cid] = now - age
    live = manager.table.live()
    await asyncio.gather(*(_reconcile(manager, order) for order in live))
    desk = await desk_prefixes(pool, own=manager.prefix)
    canceled, adopted = await _orphans(manager, config, desk)
    if config.cancel_resting:
        await _cancel_other_instances_resting(manager)
        await manager.cancel_all()
    fills_recorded = await manager.poll_fills()
    mismatches: list[BalanceMismatch] = []
    if baseline is not None:
        for round_ in range(config.balance_rounds):
            mismatches = await _compare_balances(manager, baseline, config.tolerance)
            if not mismatches or round_ == config.balance_rounds - 1:
                break
            log.warning("balance_recheck", round=round_ + 1, assets=[m.asset for m in mismatches])
            await asyncio.sleep(config.balance_settle_s)
            fills_recorded += await manager.poll_fills()
    for position in manager.positions.values():
        await manager.store.put(position)
    report = RecoveryReport(
        orders_rebuilt=len(image.orders),
        resolved=tuple(o.client_order_id for o in live if o.phase is not OrderPhase.UNKNOWN
                       and o.reason != "not placed"),
        not_placed=tuple(o.client_order_id for o in live if o.reason == "not placed"),
        unresolved=tuple(o.client_order_id for o in live if o.phase is OrderPhase.UNKNOWN),
        orphans_canceled=tuple(canceled),
        orphans_adopted=tuple(adopted),
        fills_recorded=fills_recorded,
        mismatches=tuple(mismatches),
        balances_checked=baseline is not None,
    )  # fmt: skip
    log.info("recovery_done", ok=report.ok, orders=report.orders_rebuilt,
             unresolved=len(report.unresolved), orphans=len(canceled) + len(adopted),
             fills=fills_recorded, mismatches=len(mismatches))  # fmt: skip
    return report


async def _reconcile(manager: OrderManager, order: LocalOrder) -> None:
    if order.phase is OrderPhase.UNKNOWN:
        await manager.resolve(order)
        return
    try:
        state = await manager.client.fetch_order(order.client_order_id, order.symbol)
    except OrderNotFoundError:
        # acked once, so it existed: the venue forgot it (archived); keep what we know
        log.warning("acked_order_not_found", client_order_id=order.client_order_id)
        return
    await manager.apply_venue_state(order, state)


async def desk_prefixes(pool: asyncpg.Pool, *, own: str) -> tuple[str, ...]:
    """Return the client-id prefixes of every engine instance that ever led this desk.

    Their orders are the desk's: after a handoff or a takeover, the new leader manages
    (and, at startup, cancels) what a deposed leader left at the venue. Liquidation
    children (:data:`~engine.live.orders.LIQUIDATION_PREFIX`) are the desk's too. Orders
    of any other prefix (manual trading on the account) are left alone.
    """
    rows = await pool.fetch(
        "SELECT DISTINCT instance FROM journal_events WHERE kind = 'leadership'"
    )
    return tuple(sorted({own, LIQUIDATION_PREFIX, *(f"{row['instance']}-" for row in rows)}))


async def _cancel_other_instances_resting(manager: OrderManager) -> None:
    """Cancel the resting orders another instance of the desk journaled and left open."""
    for order in manager.table.live():
        if order.client_order_id.startswith(manager.prefix):
            continue  # ours: cancel_all takes them
        if order.phase in (OrderPhase.ACKED, OrderPhase.PARTIALLY_FILLED):
            await manager.cancel(order.client_order_id)
            log.warning("deposed_leaders_order_canceled", client_order_id=order.client_order_id)


async def _orphans(
    manager: OrderManager, config: RecoveryConfig, desk: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    canceled: list[str] = []
    adopted: list[str] = []
    listed = await asyncio.gather(
        *(manager.client.fetch_open_orders(s) for s in manager.instruments)
    )
    for symbol, open_orders in zip(manager.instruments, listed, strict=True):
        for venue_order in open_orders:
            cid = venue_order.client_order_id
            if not cid.startswith(desk) or cid in manager.table:
                continue
            # journaled first either way, so every order of ours at the venue is in the
            # journal; then canceled through the table like any other order
            await manager.adopt(venue_order)
            if config.orphans == "adopt":
                adopted.append(cid)
                continue
            await manager.cancel(cid)  # ended meanwhile: cancel learns how instead
            canceled.append(cid)
            log.warning("orphan_canceled", client_order_id=cid, symbol=symbol)
    return canceled, adopted


async def _compare_balances(
    manager: OrderManager, baseline: Mapping[str, Decimal], tolerance: Decimal
) -> list[BalanceMismatch]:
    balances = await manager.account.fetch_balances()
    deltas = asset_deltas(manager.positions.values())
    assets = set(deltas) | {a for s in manager.instruments for a in split_symbol(s)}
    mismatches = []
    for asset in sorted(assets):
        expected = baseline.get(asset, Decimal(0)) + deltas.get(asset, Decimal(0))
        balance = balances.get(asset)
        actual = balance.total if balance is not None else Decimal(0)
        if abs(expected - actual) > tolerance:
            mismatches.append(BalanceMismatch(asset=asset, expected=expected, actual=actual))
            log.error("balance_mismatch", asset=asset, expected=str(expected), actual=str(actual))
    return mismatches
