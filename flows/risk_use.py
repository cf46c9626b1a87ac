"""Risk-limit use of a day: how close positions, notionals and orders came to the limits.

The limits are the release's (``risk`` in the manifest), journaled by every engine that
takes the lead (the LEADERSHIP ``acquired`` event holds the release's limits and each
symbol's lot size); a fill is measured against the limits of the last takeover before
it. Use is a fraction of the limit (1.0 = at the limit), at its peak over the day:

- ``position``: |position| / (``max_position_lots`` x lot size), per symbol;
- ``symbol_notional``: |position| x price / ``max_symbol_notional``, per symbol;
- ``portfolio_exposure``: sqrt(e' C e) / ``max_portfolio_exposure``, e the signed
  notionals, C 1 on the diagonal and ``correlation`` elsewhere — the engine's own check;
- ``order_notional``: the largest order's amount x price (its arrival mid when it had no
  limit) / ``max_order_notional``.

Prices are the fills' (the journal holds no market data), so this is the use the journal
can prove, not the engine's intraday view between fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.journal import FillRecord
from flows.execution import OrderIntent


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitsInForce:
    """One takeover's limits: the release's risk section and the symbols' lot sizes."""

    since: datetime
    version: str
    risk: Mapping[str, Any]
    lot_sizes: Mapping[str, Decimal]

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, recorded_at: datetime) -> LimitsInForce:
        """Read a LEADERSHIP ``acquired`` body (older ones lack the limits: empty)."""
        release = body.get("release") or {}
        instruments = body.get("instruments") or {}
        return cls(
            since=recorded_at, version=str(release.get("version", "?")),
            risk=release.get("risk") or {},
            lot_sizes={s: Decimal(str(i["lot_size"])) for s, i in instruments.items()},
        )  # fmt: skip

    def limit(self, name: str) -> float | None:
        """Return one limit as a float (None: this release did not journal it)."""
        value = self.risk.get(name)
        return None if value is None else float(value)


@dataclass(slots=True)
class _Peak:
    use: float = 0.0
    value: float = 0.0
    limit: float | None = None
    at: datetime | None = None

    def see(self, value: float, limit: float | None, at: datetime) -> None:
        if limit is None or limit <= 0:
            return
        use = value / limit
        if use >= self.use:
            self.use, self.value, self.limit, self.at = use, value, limit, at

    def as_json(self) -> dict[str, object]:
        return {"use": round(self.use, 4), "value": round(self.value, 6), "limit": self.limit,
                "at": None if self.at is None else self.at.isoformat()}  # fmt: skip


def _in_force(timeline: Sequence[LimitsInForce], at: datetime) -> LimitsInForce | None:
    current = timeline[0] if timeline else None
    for limits in timeline:
        if limits.since > at:
            break
        current = limits
    return current


def _exposure(notionals: Mapping[str, float], correlation: float) -> float:
    values = list(notionals.values())
    total = sum(
        e_i * e_j * (1.0 if i == j else correlation)
        for i, e_i in enumerate(values)
        for j, e_j in enumerate(values)
    )
    return math.sqrt(max(total, 0.0))


def risk_use(
    fills: Iterable[FillRecord], intents: Iterable[OrderIntent], *,
    timeline: Sequence[LimitsInForce], start: datetime, end: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Return the risk-limit-use section of the daily report (fills before ``end``)."""
    if not timeline or not any(t.risk for t in timeline):
        return {"limits": None, "note": "no engine journaled its limits by the end of the"
                " day (takeovers before this report existed do not hold them)"}  # fmt: skip
    qty: dict[str, Decimal] = {}
    price: dict[str, Decimal] = {}
    position: dict[str, _Peak] = {}
    symbol_notional: dict[str, _Peak] = {}
    exposure = _Peak()

    def measure(symbol: str, at: datetime) -> None:
        limits = _in_force(timeline, at)
        if limits is None:
            return
        lot = limits.lot_sizes.get(symbol)
        max_lots = limits.limit("max_position_lots")
        held = float(abs(qty[symbol]))
        position.setdefault(symbol, _Peak()).see(
            held, None if lot is None or max_lots is None else max_lots * float(lot), at
        )
        symbol_notional.setdefault(symbol, _Peak()).see(
            held * float(price[symbol]), limits.limit("max_symbol_notional"), at
        )
        exposure.see(
            _exposure({s: float(q * price[s]) for s, q in qty.items()},
                      limits.limit("correlation") or 0.0),
            limits.limit("max_portfolio_exposure"), at)  # fmt: skip

    opening_measured = False
    for f in sorted(fills, key=lambda f: (f.traded_at, f.symbol, int(f.trade_id), f.side)):
        if f.traded_at >= end:
            break
        if f.traded_at >= start and not opening_measured:
            opening_measured = True
            for symbol in list(qty):
                measure(symbol, start)
        qty[f.symbol] = qty.get(f.symbol, Decimal(0)) + (f.qty if f.side == "buy" else -f.qty)
        price[f.symbol] = f.price
        if f.traded_at >= start:
            measure(f.symbol, f.traded_at)
    order = _Peak()
    for intent in intents:
        reference = intent.price or intent.arrival_mid
        at = intent.decided_at or start
        limits = _in_force(timeline, at)
        if reference is not None and limits is not None:
            order.see(float(intent.amount * reference), limits.limit("max_order_notional"), at)
    breaches = [f"position {s}" for s, p in position.items() if p.use > 1.0]
    breaches += [f"symbol_notional {s}" for s, p in symbol_notional.items() if p.use > 1.0]
    breaches += [name for name, p in (("portfolio_exposure", exposure),
                                      ("order_notional", order)) if p.use > 1.0]  # fmt: skip
    opening = _in_force(timeline, start)
    in_force = {t.version for t in timeline if start <= t.since < end}
    if opening is not None:
        in_force.add(opening.version)
    last = timeline[-1]
    return {
        "limits": {"release": last.version, **dict(last.risk)},
        "releases_in_force": sorted(in_force),
        "peak_use": {
            "position": {s: p.as_json() for s, p in sorted(position.items())},
            "symbol_notional": {s: p.as_json() for s, p in sorted(symbol_notional.items())},
            "portfolio_exposure": exposure.as_json(),
            "order_notional": order.as_json(),
        },
        "breaches": sorted(breaches),
    }
