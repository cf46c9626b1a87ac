"""Liquidation on the leading engine: symbols out of the strategy, child orders, checks.

The liquidation workflow (``workflows/liquidation``) decides *what* to trade; the leader
trades it, because only the leader owns the fenced journal (no order or fill lost or
doubled). Three admin actions land here:

- ``reduce``: take symbols out of the strategy (no quote rests there, no taker goes
  there; journaled, so a new leader keeps them out), and report their positions;
- ``child_order``: one IOC limit child with the caller's client id. Idempotent by that
  id: an id the journal already knows is never sent again, its recorded outcome is
  answered instead. A child may only shrink the position (never sell more than is held)
  and is journaled before it is sent (write-ahead), so after any crash the journal names
  it and recovery resolves it by id. The answer waits until the child's fills are
  journaled, so the next child is sized on a current position;
- ``liquidation_check``: flat in the journal, nothing of ours open at the venue, the
  venue's balances equal the journal's baseline plus what its fills imply.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

import structlog

from engine.dtypes import HALTED, REDUCING
from engine.errors import EngineError
from engine.execution import OrderNotFoundError
from engine.live.baseline import load_baseline
from engine.live.order_table import LocalOrder, OrderPhase
from engine.live.orders import LIQUIDATION_PREFIX, OrderManager
from engine.live.recovery import _compare_balances

if TYPE_CHECKING:
    from engine.live.engine import LiveEngine

log = structlog.get_logger(__name__)

CHILD_ID: Final = re.compile(r"^liq-[A-Za-z0-9._:/-]{1,32}$")
FILL_WAIT_S: Final = 3.0
SETTLE_WAIT_S: Final = 3.0
TOLERANCE: Final = Decimal("0.00000001")  # as recovery's balance check


def leader_manager(engine: LiveEngine) -> OrderManager:
    """Return the leader's order manager.

    Raises:
        ValueError: this engine does not lead.
    """
    if engine.manager is None or engine.role != "leader":
        raise ValueError("not the leader: only the leader trades")
    return engine.manager


def parse_symbols(engine: LiveEngine, text: str) -> frozenset[str]:
    """Return the symbols of a comma-separated list (``*``: every traded symbol).

    Raises:
        ValueError: an unknown symbol, named.
    """
    if text.strip() == "*":
        return frozenset(engine.release.symbols)
    symbols = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(symbols - set(engine.release.symbols))
    if unknown or not symbols:
        raise ValueError(
            f"symbols {unknown or text!r}: this engine trades {engine.release.symbols}"
        )
    return symbols


def positions(engine: LiveEngine, symbols: Iterable[str]) -> dict[str, dict[str, object]]:
    """Return each symbol's journaled position (lots traded, fees aside) and mid."""
    lots = engine.decider.positions_lots()
    out: dict[str, dict[str, object]] = {}
    for symbol in sorted(symbols):
        sid = engine.release.symbols.index(symbol)
        instrument = engine.instruments[sid]
        out[symbol] = {
            "lots": lots[symbol],
            "qty": str(instrument.lots_to_qty(lots[symbol])),
            "mid": str(instrument.ticks_to_price(int(engine.decider.mid_ticks(sid)))),
        }
    return out


async def reduce(
    engine: LiveEngine, symbols: frozenset[str], *, lift_halt: bool, by: str, reason: str
) -> dict[str, object]:
    """Take ``symbols`` out of the strategy, let their quotes go, report their positions.

    With ``lift_halt`` a HALTED gate is raised to REDUCING (an operator's decision, made
    through the workflow): only risk-reducing orders may then be sent, and with every
    symbol out of the strategy only liquidation children are.
    """
    manager = leader_manager(engine)
    await engine.set_reduced(engine.reduced | symbols, by=by, reason=reason)
    if lift_halt and engine.gate.state == HALTED:
        engine.paused = True  # the strategy opens nothing anywhere until resumed
        engine.gate.raise_to(REDUCING, reason=f"liquidation: {reason}", by=by)
        engine.decider.reset_trading_state(REDUCING)
    deadline = asyncio.get_running_loop().time() + SETTLE_WAIT_S
    for _ in range(int(SETTLE_WAIT_S / 0.05)):  # QuoteSync cancels them on the next decision
        if not _resting(manager, symbols) or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.05)
    for order in _resting(manager, symbols):  # no decision came: cancel them here
        try:
            await manager.cancel(order.client_order_id)
        except (EngineError, ValueError) as e:  # ended meanwhile, or never reached the venue
            log.warning("reduce_cancel_failed", client_order_id=order.client_order_id,
                        error=str(e))  # fmt: skip
    await manager.poll_fills()  # fills of the quotes just canceled count in the position
    return {
        "reduced": sorted(engine.reduced),
        "trading_state": engine.gate.name,
        "positions": positions(engine, symbols),
    }


def _resting(manager: OrderManager, symbols: frozenset[str]) -> list[LocalOrder]:
    return [
        o for s in symbols for o in manager.table.live(s)
        if o.phase in (OrderPhase.NEW, OrderPhase.IN_FLIGHT, OrderPhase.ACKED,
                       OrderPhase.PARTIALLY_FILLED)
        and not o.client_order_id.startswith(LIQUIDATION_PREFIX)
    ]  # fmt: skip


async def restore(
    engine: LiveEngine, symbols: frozenset[str], *, by: str, reason: str
) -> dict[str, object]:
    """Give ``symbols`` back to the strategy."""
    leader_manager(engine)
    await engine.set_reduced(engine.reduced - symbols, by=by, reason=reason)
    return {"reduced": sorted(engine.reduced)}


async def child_order(
    engine: LiveEngine,
    lock: asyncio.Lock,
    *,
    client_order_id: str,
    symbol: str,
    side: Literal["buy", "sell"],
    qty: str,
    limit_price: str,
) -> dict[str, object]:
    """Send one IOC child (or answer the recorded outcome of its id); see the module doc.

    Raises:
        ValueError: not the leader, a bad id, symbol, side, quantity or price.
    """
    manager = leader_manager(engine)
    if not CHILD_ID.fullmatch(client_order_id):
        raise ValueError(f"client_order_id {client_order_id!r} must match {CHILD_ID.pattern}")
    if symbol not in engine.release.symbols:
        raise ValueError(f"symbol {symbol!r}: this engine trades {engine.release.symbols}")
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be buy or sell (got {side!r})")
    instrument = engine.instruments[engine.release.symbols.index(symbol)]
    amount, price = Decimal(qty), Decimal(limit_price)
    lots = instrument.qty_to_lots(amount)
    instrument.price_to_ticks(price)
    if lots <= 0 or price <= 0:
        raise ValueError(f"qty and limit_price must be > 0 (got {qty}, {limit_price})")
    async with lock:  # one child at a time: each is sized on the fills of the one before
        if symbol not in engine.reduced:
            await engine.set_reduced(engine.reduced | {symbol}, by="liquidation",
                                     reason=f"child {client_order_id}")  # fmt: skip
        order = manager.table.get(client_order_id)
        sent = False
        if order is None:
            held = engine.decider.positions_lots()[symbol]
            reduces = (side == "sell" and held > 0) or (side == "buy" and held < 0)
            if not reduces or lots > abs(held):
                return {"client_order_id": client_order_id, "status": "refused", "sent": False,
                        "filled": "0", "avg_price": None, "position_lots": held,
                        "reason": f"{side} {lots} lots would not only reduce a position of"
                                  f" {held} lots"}  # fmt: skip
            order = await manager.submit(
                symbol=symbol, side=side, type="limit", amount=amount, price=price,
                time_in_force="IOC", reduce_only=True, client_order_id=client_order_id,
                write_ahead=True,
            )  # fmt: skip
            sent = True
        elif order.symbol != symbol or order.request.side != side:
            raise ValueError(f"client_order_id {client_order_id!r} is a {order.request.side}"
                             f" of {order.symbol}")  # fmt: skip
        await _settle(manager, order)
        avg = await engine.pool.fetchval(
            "SELECT sum(price * qty) / nullif(sum(qty), 0) FROM fills WHERE client_order_id = $1",
            client_order_id,
        )
        return {
            "client_order_id": client_order_id,
            "status": order.phase.value,
            "sent": sent,
            "filled": str(order.filled),
            "avg_price": None if avg is None else str(avg),
            "position_lots": engine.decider.positions_lots()[symbol],
            "reason": order.reason,
        }


async def _settle(manager: OrderManager, order: LocalOrder) -> None:
    """Resolve the child's outcome and wait until all its venue fills are journaled."""
    deadline = asyncio.get_running_loop().time() + FILL_WAIT_S
    if order.phase is OrderPhase.UNKNOWN:
        await manager.resolve(order)
    if order.phase is OrderPhase.REJECTED:
        return
    venue_filled = order.request.amount  # a FILLED IOC: the venue's answer said so already
    if order.phase is not OrderPhase.FILLED:  # partly filled, or a replay: ask the venue
        try:
            state = await manager.client.fetch_order(order.client_order_id, order.symbol)
            venue_filled = state.filled
            if not order.terminal:
                await manager.apply_venue_state(order, state)
        except OrderNotFoundError:
            venue_filled = order.filled
            log.warning("child_not_found_at_venue", client_order_id=order.client_order_id)
    while order.filled < venue_filled and asyncio.get_running_loop().time() < deadline:
        await manager.poll_fills([order.symbol])  # one symbol: request weight is shared
        if order.filled < venue_filled:
            await asyncio.sleep(0.05)


async def liquidation_check(engine: LiveEngine, symbols: frozenset[str]) -> dict[str, object]:
    """Say whether ``symbols`` are flat in the journal and at the venue (no changes)."""
    manager = leader_manager(engine)
    await manager.poll_fills()
    rows = await engine.pool.fetch(
        "SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty"
        " FROM fills WHERE symbol = ANY($1::text[]) GROUP BY symbol",
        sorted(symbols),
    )
    journal = {row["symbol"]: Decimal(row["qty"]) for row in rows}
    opened = await asyncio.gather(*(manager.client.fetch_open_orders(s) for s in sorted(symbols)))
    baseline = await load_baseline(engine.pool)
    mismatches = [] if baseline is None else await _compare_balances(manager, baseline, TOLERANCE)
    assets = {a for s in symbols for a in s.split("/")}
    out: dict[str, object] = {}
    for symbol, open_orders in zip(sorted(symbols), opened, strict=True):
        traded = journal.get(symbol, Decimal(0))
        out[symbol] = {
            "journal_qty": str(traded),
            "position_lots": engine.decider.positions_lots()[symbol],
            "open_orders": [o.client_order_id for o in open_orders],
            "flat": traded == 0 and not open_orders,
        }
    return {
        "symbols": out,
        "balances_checked": baseline is not None,
        "balance_mismatches": [
            {"asset": m.asset, "expected": str(m.expected), "actual": str(m.actual)}
            for m in mismatches if m.asset in assets
        ],
    }  # fmt: skip
