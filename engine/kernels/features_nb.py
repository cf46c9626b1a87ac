"""Feature kernels: microprice, imbalance, spread, EWMA return/volatility, trade flow.

Features are in ticks or dimensionless ratios and are written into ``features[symbol]``.
EWMAs advance in event time (once per mid change or trade), not clock time, so they are
deterministic for a given event stream.
"""

# ruff: noqa: PLR0917 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

import numpy as np

from engine.dtypes import BUY
from engine.kernels._jit import inline_kernel
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    FEAT_EWMA_RET,
    FEAT_EWMA_VOL,
    FEAT_FLOW_IMBALANCE,
    FEAT_IMBALANCE_L1,
    FEAT_IMBALANCE_LN,
    FEAT_MICRO_OFFSET,
    FEAT_SPREAD,
    SF_EWMA_RET,
    SF_EWMA_VAR,
    SF_FLOW_SIGNED,
    SF_FLOW_TOTAL,
    SF_MID,
    SI_N_ASK,
    SI_N_BID,
)


@inline_kernel
def microprice(bid_px: int, bid_qty: int, ask_px: int, ask_qty: int) -> float:
    """Return the size-weighted mid: leans toward the side with less resting size."""
    total = bid_qty + ask_qty
    if total <= 0:
        return 0.5 * (bid_px + ask_px)
    return (bid_px * ask_qty + ask_px * bid_qty) / total


@inline_kernel
def imbalance(book: np.ndarray, symbol: int, levels: int, n_bid: int, n_ask: int) -> float:
    """Return (bid - ask) / (bid + ask) lots over the top ``levels``, in [-1, 1]."""
    bid = 0
    ask = 0
    for i in range(min(levels, n_bid)):
        bid += book[symbol, BID_QTY, i]
    for i in range(min(levels, n_ask)):
        ask += book[symbol, ASK_QTY, i]
    total = bid + ask
    if total <= 0:
        return 0.0
    return (bid - ask) / total


@inline_kernel
def update_book_features(
    book: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    features: np.ndarray,
    symbol: int,
    levels: int,
    alpha: float,
) -> float:
    """Recompute the book features of ``symbol``; return the mid change in ticks.

    Requires a two-sided book. ``alpha`` is the EWMA weight of a new mid change.
    """
    n_bid = sym_i[symbol, SI_N_BID]
    n_ask = sym_i[symbol, SI_N_ASK]
    bp = book[symbol, BID_PX, 0]
    ap = book[symbol, ASK_PX, 0]
    bq = book[symbol, BID_QTY, 0]
    aq = book[symbol, ASK_QTY, 0]
    mid = 0.5 * (bp + ap)
    f = features[symbol]
    s = sym_f[symbol]
    f[FEAT_MICRO_OFFSET] = microprice(bp, bq, ap, aq) - mid
    f[FEAT_IMBALANCE_L1] = (bq - aq) / (bq + aq) if bq + aq > 0 else 0.0
    f[FEAT_IMBALANCE_LN] = imbalance(book, symbol, levels, n_bid, n_ask)
    f[FEAT_SPREAD] = float(ap - bp)
    change = 0.0
    if s[SF_MID] > 0.0:
        change = mid - s[SF_MID]
        if change != 0.0:
            s[SF_EWMA_RET] += alpha * (change - s[SF_EWMA_RET])
            s[SF_EWMA_VAR] += alpha * (change * change - s[SF_EWMA_VAR])
    s[SF_MID] = mid
    f[FEAT_EWMA_RET] = s[SF_EWMA_RET]
    f[FEAT_EWMA_VOL] = np.sqrt(s[SF_EWMA_VAR])
    return change


@inline_kernel
def update_trade_flow(
    sym_f: np.ndarray,
    features: np.ndarray,
    symbol: int,
    aggressor: int,
    qty: int,
    alpha: float,
) -> None:
    """Fold one trade into the EWMA of signed and total aggressor volume."""
    s = sym_f[symbol]
    signed = qty if aggressor == BUY else -qty
    s[SF_FLOW_SIGNED] += alpha * (signed - s[SF_FLOW_SIGNED])
    s[SF_FLOW_TOTAL] += alpha * (qty - s[SF_FLOW_TOTAL])
    total = s[SF_FLOW_TOTAL]
    features[symbol, FEAT_FLOW_IMBALANCE] = s[SF_FLOW_SIGNED] / total if total > 0.0 else 0.0
