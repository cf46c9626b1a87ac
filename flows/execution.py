"""Execution quality of a day's fills: slippage vs arrival mid, markouts, maker/taker share.

The benchmark is the *arrival mid*: the mid of the book the engine decided on, journaled
in each order's ORDER_NEW body (``context.arrival_mid``, with ``context.decided_at_ms``).

- **slippage** of a fill = ``side * (fill price - arrival mid) / arrival mid`` in bps:
  positive is a cost (bought above / sold below the mid); a maker fill earns about half
  the spread, so it is negative.
- **markout** at horizon *h* = ``side * (mid at t+h - fill price) / fill price`` in bps:
  positive means the market moved our way after the fill. The journal holds no market
  data, so the mid at ``t+h`` is the arrival mid of the first later order of the symbol
  decided at or after ``t+h``; a fill with no such order within ``MAX_SAMPLE_DELAY`` of
  its horizon has no markout at that horizon (``counted`` says how many did).
- **maker/taker**: as the venue qualified each fill (``fills.liquidity``); a fill the venue
  did not qualify counts by its order's type (market → taker), else as unqualified.

Means are weighted by quantity. Fills of orders without an arrival mid (adopted orders,
liquidation children, fills journaled before the mid was recorded) are left out of the
slippage and counted in ``without_arrival_mid``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from engine.journal import FillRecord

MARKOUT_HORIZONS_S: Final = (1, 10, 60)
#: how long after ``t+h`` a later order's mid still stands for the mid at ``t+h``
MAX_SAMPLE_DELAY: Final = timedelta(seconds=5)


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderIntent:
    """What the report needs of an ORDER_NEW: its type, limit and the market it saw."""

    symbol: str
    type: str
    price: Decimal | None
    amount: Decimal
    arrival_mid: Decimal | None
    decided_at: datetime | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, recorded_at: datetime) -> OrderIntent:
        """Read an ORDER_NEW body (the decision time falls back to when it was journaled)."""
        context = body.get("context") or {}
        mid = context.get("arrival_mid")
        decided_ms = context.get("decided_at_ms")
        decided = (
            datetime.fromtimestamp(int(decided_ms) / 1000, tz=recorded_at.tzinfo)
            if decided_ms is not None
            else recorded_at
        )
        price = body.get("price")
        return cls(
            symbol=str(body["symbol"]), type=str(body.get("type", "limit")),
            price=None if price is None else Decimal(str(price)),
            amount=Decimal(str(body.get("amount", "0"))),
            arrival_mid=None if mid is None else Decimal(str(mid)),
            decided_at=decided if mid is not None else None,
        )  # fmt: skip


@dataclass(slots=True)
class MidSamples:
    """Arrival mids by symbol, in decision order: the report's view of the market."""

    times: dict[str, list[datetime]] = field(default_factory=dict)
    mids: dict[str, list[Decimal]] = field(default_factory=dict)

    @classmethod
    def of(cls, intents: Iterable[OrderIntent]) -> MidSamples:
        """Collect the arrival mids of ``intents``."""
        samples = sorted(
            (i.symbol, i.decided_at, i.arrival_mid)
            for i in intents
            if i.decided_at is not None and i.arrival_mid is not None
        )
        out = cls()
        for symbol, at, mid in samples:
            out.times.setdefault(symbol, []).append(at)
            out.mids.setdefault(symbol, []).append(mid)
        return out

    def mid_at(self, symbol: str, at: datetime) -> Decimal | None:
        """Return the first mid decided at or after ``at`` (within MAX_SAMPLE_DELAY)."""
        times = self.times.get(symbol, [])
        i = bisect.bisect_left(times, at)
        if i == len(times) or times[i] - at > MAX_SAMPLE_DELAY:
            return None
        return self.mids[symbol][i]


def _bps(value: Decimal) -> float:
    return round(float(value * 10_000), 3)


@dataclass(slots=True)
class _WeightedMean:
    total: Decimal = Decimal(0)
    weight: Decimal = Decimal(0)
    count: int = 0

    def add(self, value: Decimal, weight: Decimal) -> None:
        self.total += value * weight
        self.weight += weight
        self.count += 1

    def bps(self) -> float | None:
        return _bps(self.total / self.weight) if self.weight else None


def liquidity_of(fill: FillRecord, intent: OrderIntent | None) -> str:
    """Return ``maker``, ``taker`` or ``unqualified`` for a fill."""
    if fill.liquidity is not None:
        return fill.liquidity
    if intent is not None and intent.type == "market":
        return "taker"
    return "unqualified"


def execution_quality(
    fills: list[FillRecord], intents: Mapping[str, OrderIntent], samples: MidSamples,
    marks: Mapping[str, Decimal],
) -> dict[str, Any]:  # fmt: skip
    """Return the execution-quality section of the daily report for ``fills``."""
    slippage = {"all": _WeightedMean(), "maker": _WeightedMean(), "taker": _WeightedMean()}
    markouts = {h: _WeightedMean() for h in MARKOUT_HORIZONS_S}
    eod = _WeightedMean()
    improvement = _WeightedMean()
    counts = {"maker": 0, "taker": 0, "unqualified": 0}
    notional = {"maker": Decimal(0), "taker": Decimal(0), "unqualified": Decimal(0)}
    without_mid = unknown_orders = 0
    for f in fills:
        intent = intents.get(f.client_order_id)
        sign = 1 if f.side == "buy" else -1
        liquidity = liquidity_of(f, intent)
        counts[liquidity] += 1
        notional[liquidity] += f.qty * f.price
        if intent is None:
            unknown_orders += 1
        elif intent.arrival_mid is None:
            without_mid += 1
        else:
            cost = (f.price - intent.arrival_mid) / intent.arrival_mid * sign
            slippage["all"].add(cost, f.qty)
            if liquidity in slippage:
                slippage[liquidity].add(cost, f.qty)
        if intent is not None and intent.type == "limit" and intent.price:
            improvement.add((intent.price - f.price) / intent.price * sign, f.qty)
        for horizon, mean in markouts.items():
            mid = samples.mid_at(f.symbol, f.traded_at + timedelta(seconds=horizon))
            if mid is not None:
                mean.add((mid - f.price) / f.price * sign, f.qty)
        mark = marks.get(f.symbol)
        if mark is not None:
            eod.add((mark - f.price) / f.price * sign, f.qty)
    qualified = counts["maker"] + counts["taker"]
    total_notional = notional["maker"] + notional["taker"]
    return {
        "fills": len(fills),
        "maker_share": round(counts["maker"] / qualified, 4) if qualified else None,
        "taker_share": round(counts["taker"] / qualified, 4) if qualified else None,
        "maker_notional_share": (round(float(notional["maker"] / total_notional), 4)
                                 if total_notional else None),
        "unqualified_fills": counts["unqualified"],
        "slippage_vs_arrival_mid_bps": {k: m.bps() for k, m in slippage.items()},
        "slippage_fills": slippage["all"].count,
        "without_arrival_mid": without_mid,
        "fills_of_unknown_orders": unknown_orders,
        "markout_bps": {f"{h}s": m.bps() for h, m in markouts.items()},
        "markout_fills": {f"{h}s": m.count for h, m in markouts.items()},
        "eod_markout_bps": eod.bps(),
        "limit_price_improvement_bps": improvement.bps(),
        "notes": "quantity-weighted means; slippage: positive = paid more than the arrival"
        " mid (a cost); markouts: positive = the market moved our way after the fill",
    }  # fmt: skip
