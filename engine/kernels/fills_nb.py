"""Fill model and position keeping.

Passive quotes sit behind the lots that were visible at their price when they arrived
(``queue ahead``). Trades at that price eat the queue first, then the quote; a trade through
the price, or the opposite side moving onto it, fills the quote whole. A level shrinking
below the queue ahead shrinks the queue (cancels are assumed to come from the front: the
optimistic end). Aggressive IOC orders walk the visible opposite side up to their limit;
our own taking does not change the recorded book (no market impact).
"""

# ruff: noqa: PLR0917 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

import numpy as np

from engine.dtypes import BUY, LIQUIDITY_TAKER
from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    G_FILLS,
    SI_N_ASK,
    SI_N_BID,
)


@kernel
def apply_fill(
    positions: np.ndarray,
    fills: np.ndarray,
    g: np.ndarray,
    symbol: int,
    side: int,
    price: int,
    qty: int,
    multiplier: float,
    fee_bps: float,
    liquidity: int,
    ts_ns: int,
    flags: int,
) -> None:
    """Book one execution into ``positions[symbol]`` and log it in ``fills`` if room is left."""
    notional = price * multiplier * qty
    fee = notional * fee_bps * 1e-4
    p = positions[symbol]
    old = p["qty"]
    signed = qty if side == BUY else -qty
    new = old + signed
    if old == 0 or (old > 0) == (signed > 0):
        p["avg_price"] = (p["avg_price"] * abs(old) + price * qty) / abs(new)
    elif new == 0:
        p["avg_price"] = 0.0
    elif (new > 0) != (old > 0):
        p["avg_price"] = float(price)  # flipped: the remainder opened at this price
    p["qty"] = new
    p["cash"] -= signed * price * multiplier + fee
    p["fees"] += fee
    p["volume"] += qty
    p["fills"] += 1
    k = g[G_FILLS]
    if k < fills.shape[0]:
        f = fills[k]
        f["ts_ns"] = ts_ns
        f["price"] = price
        f["qty"] = qty
        f["fee"] = fee
        f["symbol"] = symbol
        f["side"] = side
        f["liquidity"] = liquidity
        f["flags"] = flags
    g[G_FILLS] = k + 1


@kernel
def walk_book(
    book: np.ndarray,
    sym_i: np.ndarray,
    positions: np.ndarray,
    fills: np.ndarray,
    g: np.ndarray,
    symbol: int,
    side: int,
    limit: int,
    qty: int,
    multiplier: float,
    fee_bps: float,
    ts_ns: int,
) -> int:
    """Execute an IOC against the visible opposite side; return the lots filled."""
    left = qty
    if side == BUY:
        for i in range(sym_i[symbol, SI_N_ASK]):
            px = book[symbol, ASK_PX, i]
            if px > limit or left == 0:
                break
            take = min(left, book[symbol, ASK_QTY, i])
            apply_fill(
                positions,
                fills,
                g,
                symbol,
                side,
                px,
                take,
                multiplier,
                fee_bps,
                LIQUIDITY_TAKER,
                ts_ns,
                0,
            )
            left -= take
    else:
        for i in range(sym_i[symbol, SI_N_BID]):
            px = book[symbol, BID_PX, i]
            if px < limit or left == 0:
                break
            take = min(left, book[symbol, BID_QTY, i])
            apply_fill(
                positions,
                fills,
                g,
                symbol,
                side,
                px,
                take,
                multiplier,
                fee_bps,
                LIQUIDITY_TAKER,
                ts_ns,
                0,
            )
            left -= take
    return qty - left


@inline_kernel
def passive_fill_from_trade(
    quote_px: int, quote_qty: int, queue_ahead: int, is_bid: bool, trade_px: int, trade_qty: int
) -> tuple[int, int]:
    """Return ``(filled lots, new queue ahead)`` for a resting quote and one trade.

    The caller passes only trades whose aggressor hits the quote's side.
    """
    if quote_qty <= 0:
        return 0, queue_ahead
    through = trade_px < quote_px if is_bid else trade_px > quote_px
    if through:
        return quote_qty, 0
    if trade_px != quote_px:
        return 0, queue_ahead
    if trade_qty <= queue_ahead:
        return 0, queue_ahead - trade_qty
    return min(quote_qty, trade_qty - queue_ahead), 0


@kernel
def level_qty(book: np.ndarray, sym_i: np.ndarray, symbol: int, is_bid: bool, price: int) -> int:
    """Return the visible lots at ``price`` on one side (0 if the level is absent)."""
    if is_bid:
        for i in range(sym_i[symbol, SI_N_BID]):
            px = book[symbol, BID_PX, i]
            if px == price:
                return int(book[symbol, BID_QTY, i])
            if px < price:
                return 0
        return 0
    for i in range(sym_i[symbol, SI_N_ASK]):
        px = book[symbol, ASK_PX, i]
        if px == price:
            return int(book[symbol, ASK_QTY, i])
        if px > price:
            return 0
    return 0
