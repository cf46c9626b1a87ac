"""Post-trade kernels: markouts and adverse selection, latency arbitrage, stops, drawdown.

- Every fill is marked out ``horizon`` later: ``side * (mid - fill price)`` in ticks. The
  loss part feeds an EWMA adverse-selection score per symbol that widens quotes and, above
  a threshold, pulls them. The score decays a little with every event of the symbol.
- A passive fill within ``window`` of an adverse reference (mid) move is flagged: someone
  faster picked off a stale quote. It adds a penalty to the adverse score.
- A stop-loss fires when the mid moves ``stop`` ticks against a position's entry.
- The drawdown switch lowers the trading state (REDUCING, then HALTED); it never raises it.
"""

# ruff: noqa: PLR0917 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

import numpy as np

from engine.dtypes import BUY, HALTED, REDUCING
from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.layout import (
    G_MARKOUTS,
    G_MK_COUNT,
    G_MK_DROPPED,
    G_MK_HEAD,
    G_TRADING_STATE,
    GF_EQUITY,
    GF_EQUITY_PEAK,
    GF_MAX_DRAWDOWN,
    MK_PRICE,
    MK_SIDE,
    MK_SYMBOL,
    MK_TS,
    SF_ADVERSE,
    SF_MID,
    SI_MOVE_DIR,
    SI_MOVE_TS,
)
from engine.kernels.risk_nb import RL_MULTIPLIER


@kernel
def markout_push(
    ring: np.ndarray, g: np.ndarray, ts_ns: int, symbol: int, side: int, price: int
) -> None:
    """Queue one fill for its markout; a full ring drops its oldest entry."""
    cap = ring.shape[0]
    if g[G_MK_COUNT] == cap:
        g[G_MK_HEAD] = (g[G_MK_HEAD] + 1) % cap
        g[G_MK_COUNT] -= 1
        g[G_MK_DROPPED] += 1
    slot = (g[G_MK_HEAD] + g[G_MK_COUNT]) % cap
    ring[slot, MK_TS] = ts_ns
    ring[slot, MK_SYMBOL] = symbol
    ring[slot, MK_SIDE] = side
    ring[slot, MK_PRICE] = price
    g[G_MK_COUNT] += 1


@kernel
def markout_drain(
    ring: np.ndarray,
    g: np.ndarray,
    sym_f: np.ndarray,
    now_ns: int,
    horizon_ns: int,
    alpha: float,
) -> int:
    """Mark out every queued fill older than ``horizon_ns``; return how many were done."""
    cap = ring.shape[0]
    done = 0
    while g[G_MK_COUNT] > 0:
        slot = g[G_MK_HEAD]
        if ring[slot, MK_TS] + horizon_ns > now_ns:
            break
        s = ring[slot, MK_SYMBOL]
        markout = ring[slot, MK_SIDE] * (sym_f[s, SF_MID] - ring[slot, MK_PRICE])
        loss = -markout if markout < 0.0 else 0.0
        sym_f[s, SF_ADVERSE] += alpha * (loss - sym_f[s, SF_ADVERSE])
        g[G_MK_HEAD] = (slot + 1) % cap
        g[G_MK_COUNT] -= 1
        done += 1
    g[G_MARKOUTS] += done
    return done


@inline_kernel
def record_reference_move(
    sym_i: np.ndarray, symbol: int, change_ticks: float, min_move_ticks: float, ts_ns: int
) -> None:
    """Remember the time and direction of a mid move of at least ``min_move_ticks``."""
    if abs(change_ticks) >= min_move_ticks:
        sym_i[symbol, SI_MOVE_TS] = ts_ns
        sym_i[symbol, SI_MOVE_DIR] = 1 if change_ticks > 0 else -1


@kernel
def is_latency_arb(sym_i: np.ndarray, symbol: int, side: int, ts_ns: int, window_ns: int) -> bool:
    """Return whether a passive fill on ``side`` came right after an adverse reference move.

    We bought (BUY) and the price had just dropped, or sold and it had just risen.
    """
    move_ts = sym_i[symbol, SI_MOVE_TS]
    if move_ts == 0 or ts_ns - move_ts > window_ns:
        return False
    direction = sym_i[symbol, SI_MOVE_DIR]
    return (side == BUY and direction < 0) or (side != BUY and direction > 0)


@inline_kernel
def stop_loss_hit(qty: int, avg_price: float, mid: float, stop_ticks: float) -> bool:
    """Return whether the mid has moved ``stop_ticks`` against the open position."""
    if qty > 0:
        return mid <= avg_price - stop_ticks
    if qty < 0:
        return mid >= avg_price + stop_ticks
    return False


@kernel
def mark_to_market(positions: np.ndarray, sym_f: np.ndarray, limits: np.ndarray) -> float:
    """Return cash plus every position valued at its mid, in quote currency."""
    equity = 0.0
    for i in range(positions.shape[0]):
        p = positions[i]
        equity += p["cash"] + p["qty"] * sym_f[i, SF_MID] * limits[i, RL_MULTIPLIER]
    return equity


@inline_kernel
def drawdown_switch(
    g: np.ndarray, gf: np.ndarray, equity: float, reduce_at: float, halt_at: float
) -> int:
    """Track peak equity and lower the trading state on drawdown; return the state."""
    gf[GF_EQUITY] = equity
    gf[GF_EQUITY_PEAK] = max(gf[GF_EQUITY_PEAK], equity)
    drawdown = gf[GF_EQUITY_PEAK] - equity
    gf[GF_MAX_DRAWDOWN] = max(gf[GF_MAX_DRAWDOWN], drawdown)
    state = g[G_TRADING_STATE]
    if drawdown >= halt_at and state < HALTED:
        state = HALTED
    elif drawdown >= reduce_at and state < REDUCING:
        state = REDUCING
    g[G_TRADING_STATE] = state
    return int(state)
