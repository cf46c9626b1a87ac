"""How big a child is and where its limit goes: pure arithmetic in ticks and lots.

No I/O here, so every rule can be tested on numbers: the price band against the live
book's mid, the TWAP share of what remains, the participation cap on the market volume
traded since the previous child, and the venue's minimum notional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final


@dataclass(frozen=True, kw_only=True, slots=True)
class Market:
    """One symbol's market at slice time (ticks and lots)."""

    best_bid: int | None
    best_ask: int | None
    bids: Sequence[tuple[int, int]] = ()
    asks: Sequence[tuple[int, int]] = ()

    @property
    def mid2(self) -> int | None:
        """Return twice the mid in ticks (exact), or None without a two-sided book."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_bid + self.best_ask


def band_limit(mid2: int, *, sell: bool, band_bps: float) -> int:
    """Return the IOC limit in ticks: a sell never below mid*(1-band), a buy never above.

    Rounded inwards (a sell's floor up, a buy's cap down), so no child is ever priced
    outside the band. Exact rational arithmetic: with floats, a mid near 1e8 ticks carries
    an error larger than any fixed epsilon and the rounding could step one tick outside.
    """
    mid = Fraction(mid2, 2)
    band = Fraction(band_bps) / 10_000
    if sell:
        return math.ceil(mid * (1 - band))
    return math.floor(mid * (1 + band))


def within_band(market: Market, limit: int, *, sell: bool) -> int:
    """Return the lots the book shows at prices the band allows."""
    if sell:
        return sum(q for p, q in market.bids if p >= limit)
    return sum(q for p, q in market.asks if p <= limit)


CATCH_UP_SLICES: Final = 2


def twap_lots(remaining: int, *, time_left_ms: int, interval_ms: int) -> int:
    """Return an even share of ``remaining`` over the slices left before the deadline.

    The schedule ends :data:`CATCH_UP_SLICES` slices early: a child that fills only in
    part (a thin book inside the band) leaves a remainder, and a schedule that used every
    slice would have none left to sell it before the deadline.
    """
    slices_left = max(1, time_left_ms // max(1, interval_ms) - CATCH_UP_SLICES)
    return min(remaining, math.ceil(remaining / slices_left))


def participation_lots(remaining: int, *, market_lots: int, cap: float) -> int:
    """Return at most ``cap`` of the market volume (ours excluded), rounded down."""
    return min(remaining, math.floor(max(0, market_lots) * cap + 1e-9))


def min_lots(*, price_ticks: int, tick: float, lot: float, min_notional: float) -> int:
    """Return the fewest lots whose notional at ``price_ticks`` reaches the venue minimum."""
    if min_notional <= 0:
        return 1
    return max(1, math.ceil(min_notional / (price_ticks * tick * lot) - 1e-9))


def leave_no_dust(lots: int, *, remaining: int, floor: int, capped: bool) -> int:
    """Adjust a child so what it leaves is either nothing or at least one minimum order.

    Uncapped (TWAP), a child that would leave less than ``floor`` takes the rest. Capped
    (participation), the cap is never exceeded: the child shrinks instead, so the
    remainder stays sellable by a later child.
    """
    left = remaining - lots
    if lots <= 0 or left <= 0 or left >= floor:
        return lots
    if not capped:
        return remaining
    return remaining - floor if remaining - floor >= floor else lots
