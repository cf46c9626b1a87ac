"""Kernels for market data arriving from the venue: grid units, book checks, events.

Every book view and trade list passes through these on its way to the decision, so they
are on tick-to-order's path. In numpy the same work was dozens of small array operations
(~60 µs to convert and check a 10-level book, ~30 µs more to turn it into kernel events,
~40 µs for two trades, mostly per-call overhead); a loop over a few dozen values is a
microsecond or two.
"""

# ruff: noqa: PLR0911, PLR0912, PLR0917 -- one early return per problem keeps a kernel flat,
# as in validate_nb (a helper call per check costs more than the check); njit has no
# keyword-only parameters.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import ASK, BID, BOOK_DELTA, BUY, SELL, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import inline_kernel, kernel

# Tolerances of the float → units conversion (see engine.execution.instruments).
GRID_TOLERANCE: Final = 1e-6  # distance in units from an integer still on the grid
RELATIVE_ULPS: Final = 1e-14  # a few dozen ulps: parse + division error, never half a unit
INT64_SAFE: Final = float(2**62)  # stay clear of int64 overflow after rint

BOOK_SOUND: Final = 0
BOOK_UPDATE_ID_NOT_INCREASING: Final = 1
BOOK_NON_POSITIVE_QUANTITY: Final = 2
BOOK_NON_POSITIVE_PRICE: Final = 3
BOOK_UNSORTED: Final = 4
BOOK_CROSSED: Final = 5


@inline_kernel
def _on_grid(value: float, step: float) -> tuple[bool, int]:
    """Return ``(True, units)`` when ``value`` is a whole number of ``step``s."""
    ratio = value / step
    if not np.isfinite(ratio) or abs(ratio) > INT64_SAFE:
        return False, 0
    units = np.rint(ratio)
    if abs(ratio - units) > max(GRID_TOLERANCE, abs(ratio) * RELATIVE_ULPS):
        return False, 0
    return True, int(units)


@inline_kernel
def _grid_pair(price: float, amount: float, tick: float, lot: float) -> tuple[int, int, int]:
    """Return ``(-1, ticks, lots)``, or the refused column (0 price, 1 amount) first.

    The feeds' kernels report a refusal as ``2 * row + column``
    (:func:`engine.execution.instruments.off_grid_error` names it).
    """
    ok, ticks = _on_grid(price, tick)
    if not ok:
        return 0, 0, 0
    ok, lots = _on_grid(amount, lot)
    if not ok:
        return 1, 0, 0
    return -1, ticks, lots


@kernel
def book_problem(levels: np.ndarray, previous_update_id: int) -> int:
    """Return why a batch of book levels must not be used, or :data:`BOOK_SOUND`.

    The checks, in the order their reasons win: update id not above ``previous_update_id``
    (-1: no previous), a non-positive quantity, a non-positive price, bids not strictly
    descending or asks not strictly ascending, best bid at or above best ask.
    """
    n = levels.shape[0]
    if n and previous_update_id >= 0 and levels[0]["update_id"] <= previous_update_id:
        return BOOK_UPDATE_ID_NOT_INCREASING
    for i in range(n):
        if levels[i]["qty_lots"] <= 0:
            return BOOK_NON_POSITIVE_QUANTITY
    for i in range(n):
        if levels[i]["price_ticks"] <= 0:
            return BOOK_NON_POSITIVE_PRICE
    best_bid = best_ask = last_bid = last_ask = 0
    for i in range(n):
        price = levels[i]["price_ticks"]
        if levels[i]["side"] == BID:
            if best_bid and price >= last_bid:
                return BOOK_UNSORTED
            if not best_bid:
                best_bid = price
            last_bid = price
        else:
            if best_ask and price <= last_ask:
                return BOOK_UNSORTED
            if not best_ask:
                best_ask = price
            last_ask = price
    if best_bid and best_ask and best_bid >= best_ask:
        return BOOK_CROSSED
    return BOOK_SOUND


@inline_kernel
def write_event(out: np.ndarray, r: int, ts: int, seq: int, symbol: int, kind: int, side: int,
                price: int, qty: int) -> None:  # fmt: skip
    """Write one :data:`engine.dtypes.EVENT_DTYPE` row (flags cleared) at ``out[r]``."""
    e = out[r]
    e["ts_ns"] = ts
    e["seq"] = seq
    e["symbol"] = symbol
    e["kind"] = kind
    e["side"] = side
    e["price"] = price
    e["qty"] = qty
    e["flags"] = 0


@kernel
def book_view_events(levels: np.ndarray, depth: int, out: np.ndarray, start: int,
                     first_seq: int) -> int:  # fmt: skip
    """Write one symbol's book view as kernel events into ``out[start:]``; return how many.

    SNAPSHOT_BEGIN, the first ``depth`` bid levels, the first ``depth`` ask levels, then
    SNAPSHOT_END, numbered ``first_seq`` on, all at the view's venue time. Returns -1
    (nothing written) when ``out`` has no room for them.
    """
    n = levels.shape[0]
    bids = asks = 0
    for i in range(n):
        if levels[i]["side"] == BUY:
            bids += 1
        elif levels[i]["side"] == SELL:
            asks += 1
    count = min(bids, depth) + min(asks, depth) + 2
    if start + count > out.shape[0]:
        return -1
    ts = levels[0]["ts_ns"]
    symbol = levels[0]["symbol_id"]
    r = start
    write_event(out, r, ts, first_seq, symbol, SNAPSHOT_BEGIN, 0, 0, 0)
    for side in (BUY, SELL):
        taken = 0
        for i in range(n):
            if levels[i]["side"] == side and taken < depth:
                r += 1
                taken += 1
                write_event(out, r, ts, first_seq + r - start, symbol, BOOK_DELTA, side,
                            levels[i]["price_ticks"], levels[i]["qty_lots"])  # fmt: skip
    r += 1
    write_event(out, r, ts, first_seq + r - start, symbol, SNAPSHOT_END, 0, 0, 0)
    return count


@kernel
def trade_events(trades: np.ndarray, out: np.ndarray, start: int, seq: np.ndarray) -> int:
    """Write public trades as kernel events into ``out[start:]``; return how many.

    Each trade takes the next number of its symbol's sequence (``seq``, advanced in place).
    Returns -1 (nothing written) when ``out`` has no room for them.
    """
    n = trades.shape[0]
    if start + n > out.shape[0]:
        return -1
    for k in range(n):
        t = trades[k]
        s = t["symbol_id"]
        seq[s] += 1
        write_event(out, start + k, t["ts_ns"], seq[s], s, TRADE, t["side"],
                    t["price_ticks"], t["qty_lots"])  # fmt: skip
    return int(n)


@kernel
def trade_records(
    floats: np.ndarray, ints: np.ndarray, symbol_id: int, tick: float, lot: float, out: np.ndarray
) -> int:
    """Fill ``out`` (PUBLIC_TRADE records) from a feed's columns; return the first bad row.

    ``floats`` rows are ``(price, amount, 1.0 for a buy)``, ``ints`` rows ``(timestamp ms,
    trade id)``. Returns -1 when every row is on the grid, else ``2 * row`` for an off-grid
    price and ``2 * row + 1`` for an off-grid amount (the caller names it).
    """
    for i in range(floats.shape[0]):
        refused, price, qty = _grid_pair(floats[i, 0], floats[i, 1], tick, lot)
        if refused >= 0:
            return 2 * i + refused
        r = out[i]
        r["ts_ns"] = ints[i, 0] * 1_000_000
        r["symbol_id"] = symbol_id
        r["side"] = BID if floats[i, 2] == 1.0 else ASK
        r["price_ticks"] = price
        r["qty_lots"] = qty
        r["trade_id"] = ints[i, 1]
    return -1


@kernel
def book_records(
    bids: np.ndarray,
    asks: np.ndarray,
    symbol_id: int,
    tick: float,
    lot: float,
    update_id: int,
    ts_ns: int,
    out: np.ndarray,
) -> int:
    """Fill ``out`` (BOOK_LEVEL records, bids first) from ``[price, amount]`` rows.

    Returns -1 when every level is on the grid, else ``2 * row`` (off-grid price) or
    ``2 * row + 1`` (off-grid amount), ``row`` counting the bids first, then the asks.
    """
    n_bids = bids.shape[0]
    for i in range(n_bids + asks.shape[0]):
        level = bids[i] if i < n_bids else asks[i - n_bids]
        refused, price, qty = _grid_pair(level[0], level[1], tick, lot)
        if refused >= 0:
            return 2 * i + refused
        r = out[i]
        r["ts_ns"] = ts_ns
        r["symbol_id"] = symbol_id
        r["side"] = BID if i < n_bids else ASK
        r["price_ticks"] = price
        r["qty_lots"] = qty
        r["update_id"] = update_id
    return -1
