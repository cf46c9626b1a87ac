"""Pre-trade risk: one kernel that returns a deny-reason code for an intended order.

Checks run cheapest and most fundamental first; the order-rate token is only spent by an
order that passed everything else. Limits use the worst case: the position plus every open
order on the same side plus this order. A limit that is already exceeded (prices moved) never
blocks an order that makes things better.
"""

# ruff: noqa: PLR0917, PLR0911, PLR0912 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import ACTIVE, BUY, HALTED, LIQUIDITY_MAKER, LIQUIDITY_TAKER, ORDER_IOC
from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    GF_TOKENS,
    GF_TOKENS_TS,
    P_MAX_EXPOSURE,
    P_ORDER_BURST,
    P_ORDERS_PER_S,
    SF_MID,
    SI_N_ASK,
    SI_N_BID,
    SI_Q_QTY,
)

# --- deny reasons -----------------------------------------------------------------------------
ACCEPTED: Final = 0
DENY_HALTED: Final = 1
DENY_NOT_REDUCING: Final = 2
DENY_INVALID_ORDER: Final = 3
DENY_NO_REFERENCE: Final = 4
DENY_PRICE_BAND: Final = 5
DENY_ORDER_NOTIONAL: Final = 6
DENY_SYMBOL_NOTIONAL: Final = 7
DENY_POSITION_LIMIT: Final = 8
DENY_PORTFOLIO_EXPOSURE: Final = 9
DENY_LIQUIDITY: Final = 10
DENY_ORDER_RATE: Final = 11
DENY_REASON_NAMES: Final = (
    "accepted",
    "halted",
    "not_reducing",
    "invalid_order",
    "no_reference_price",
    "price_band",
    "order_notional",
    "symbol_notional",
    "position_limit",
    "portfolio_exposure",
    "liquidity",
    "order_rate",
)
N_DENY_REASONS: Final = len(DENY_REASON_NAMES)

# --- per-symbol limits: float64[symbols, RL_COLUMNS] ------------------------------------------
RL_MULTIPLIER: Final = 0  # quote currency per tick per lot (tick size x lot size)
RL_MAX_ORDER_NOTIONAL: Final = 1
RL_MAX_SYMBOL_NOTIONAL: Final = 2
RL_MAX_POSITION: Final = 3  # lots
RL_PRICE_BAND_BPS: Final = 4
RL_MAX_DEPTH_FRACTION: Final = 5  # of the visible lots on the side the order meets
RL_COLUMNS: Final = 6


@inline_kernel
def worst_case_position(position: int, open_buy: int, open_sell: int, side: int, qty: int) -> int:
    """Return the position if this order and every open order on its side filled."""
    if side == BUY:
        return position + open_buy + qty
    return position - open_sell - qty


@inline_kernel
def is_reducing(position: int, open_buy: int, open_sell: int, side: int, qty: int) -> bool:
    """Return whether the order only shrinks the position, never flipping it."""
    after = worst_case_position(position, open_buy, open_sell, side, qty)
    if side == BUY:
        return position < 0 and after <= 0
    return position > 0 and after >= 0


@inline_kernel
def portfolio_exposure(
    positions: np.ndarray,
    sym_f: np.ndarray,
    limits: np.ndarray,
    corr: np.ndarray,
    symbol: int,
    lots: int,
) -> float:
    """Return sqrt(e' C e) with ``symbol``'s position replaced by ``lots``."""
    n = corr.shape[0]
    total = 0.0
    for i in range(n):
        qi = lots if i == symbol else positions[i]["qty"]
        ei = qi * sym_f[i, SF_MID] * limits[i, RL_MULTIPLIER]
        if ei == 0.0:
            continue
        row = 0.0
        for j in range(n):
            qj = lots if j == symbol else positions[j]["qty"]
            row += corr[i, j] * qj * sym_f[j, SF_MID] * limits[j, RL_MULTIPLIER]
        total += ei * row
    return float(np.sqrt(max(total, 0.0)))


@kernel
def check_order(
    trading_state: int,
    symbol: int,
    side: int,
    price: int,
    qty: int,
    order_type: int,
    now_ns: int,
    book: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    positions: np.ndarray,
    limits: np.ndarray,
    params: np.ndarray,
    corr: np.ndarray,
    gf: np.ndarray,
) -> int:
    """Return ``ACCEPTED`` or the first deny reason for one intended order.

    Open orders are read from ``sym_i[:, SI_Q_QTY]`` (the caller removes an order it is
    replacing before checking its successor). On acceptance one order-rate token is spent
    from ``gf``; nothing else is changed.
    """
    if trading_state >= HALTED:
        return DENY_HALTED
    if qty <= 0 or price <= 0 or (side not in (BUY, -1)):
        return DENY_INVALID_ORDER
    pos = positions[symbol]["qty"]
    open_buy = sym_i[symbol, SI_Q_QTY]
    open_sell = sym_i[symbol, SI_Q_QTY + 1]
    reducing = is_reducing(pos, open_buy, open_sell, side, qty)
    if trading_state != ACTIVE and not reducing:
        return DENY_NOT_REDUCING
    n_bid = sym_i[symbol, SI_N_BID]
    n_ask = sym_i[symbol, SI_N_ASK]
    if n_bid == 0 or n_ask == 0:
        return DENY_NO_REFERENCE
    lim = limits[symbol]
    mid = 0.5 * (book[symbol, BID_PX, 0] + book[symbol, ASK_PX, 0])
    if abs(price - mid) * 10_000.0 > lim[RL_PRICE_BAND_BPS] * mid:
        return DENY_PRICE_BAND
    mult = lim[RL_MULTIPLIER]
    if price * qty * mult > lim[RL_MAX_ORDER_NOTIONAL]:
        return DENY_ORDER_NOTIONAL
    after = worst_case_position(pos, open_buy, open_sell, side, qty)
    before = abs(pos)
    if abs(after) > before:
        if abs(after) * price * mult > lim[RL_MAX_SYMBOL_NOTIONAL]:
            return DENY_SYMBOL_NOTIONAL
        if abs(after) > lim[RL_MAX_POSITION]:
            return DENY_POSITION_LIMIT
        exposure = portfolio_exposure(positions, sym_f, limits, corr, symbol, after)
        if exposure > params[P_MAX_EXPOSURE]:
            current = portfolio_exposure(positions, sym_f, limits, corr, symbol, pos)
            if exposure > current:
                return DENY_PORTFOLIO_EXPOSURE
    # liquidity: an order may be at most a fraction of what it meets (IOC) or joins (passive)
    takes_asks = (side == BUY) == (order_type == ORDER_IOC)
    depth = 0
    if takes_asks:
        for i in range(n_ask):
            depth += book[symbol, ASK_QTY, i]
    else:
        for i in range(n_bid):
            depth += book[symbol, BID_QTY, i]
    if qty > lim[RL_MAX_DEPTH_FRACTION] * depth:
        return DENY_LIQUIDITY
    rate = params[P_ORDERS_PER_S]
    burst = params[P_ORDER_BURST]
    tokens = min(burst, gf[GF_TOKENS] + (now_ns - gf[GF_TOKENS_TS]) * rate * 1e-9)
    gf[GF_TOKENS_TS] = now_ns
    if tokens < 1.0:
        gf[GF_TOKENS] = tokens
        return DENY_ORDER_RATE
    gf[GF_TOKENS] = tokens - 1.0
    return ACCEPTED


@inline_kernel
def choose_liquidity(
    edge_ticks: float,
    half_spread_ticks: float,
    price: float,
    maker_fee_bps: float,
    taker_fee_bps: float,
    maker_fill_probability: float,
    min_taker_edge_ticks: float,
) -> int:
    """Return ``LIQUIDITY_TAKER`` when crossing now beats resting, else ``LIQUIDITY_MAKER``.

    A taker pays the half spread and the taker fee to capture the whole predicted move; a
    maker earns the half spread less its fee, but only with the given fill probability.
    """
    edge = abs(edge_ticks)
    taker_value = edge - half_spread_ticks - taker_fee_bps * price * 1e-4
    maker_value = maker_fill_probability * (edge + half_spread_ticks - maker_fee_bps * price * 1e-4)
    if taker_value > min_taker_edge_ticks and taker_value > maker_value:
        return LIQUIDITY_TAKER
    return LIQUIDITY_MAKER
