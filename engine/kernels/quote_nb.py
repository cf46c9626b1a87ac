"""Market-making decision kernel: where to quote one symbol, and whether to take instead.

Fair value is the microprice, moved by the model's predicted mid change and skewed against
inventory. The half width grows with EWMA volatility and the adverse-selection score; above
a threshold of that score quotes are pulled. Every new order goes through
:func:`engine.kernels.risk_nb.check_order`; a denied side waits ``retry`` before trying again.
"""

# ruff: noqa: PLR0917 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

import numpy as np

from engine.dtypes import (
    BUY,
    HALTED,
    LIQUIDITY_TAKER,
    ORDER_IOC,
    ORDER_LIMIT_POST_ONLY,
    SELL,
)
from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.fills_nb import level_qty, walk_book
from engine.kernels.layout import (
    ASK_PX,
    BID_PX,
    FEAT_EWMA_VOL,
    FEAT_MICRO_OFFSET,
    G_CANCELS,
    G_DENY_BASE,
    G_INTENTS,
    G_ORDERS,
    G_TAKER_ORDERS,
    G_TRADING_STATE,
    P_ADVERSE_MULT,
    P_ADVERSE_PULL,
    P_BASE_HALF_SPREAD,
    P_INVENTORY_SKEW,
    P_LATENCY_NS,
    P_LIVE,
    P_MAKER_FEE_BPS,
    P_MAKER_FILL_PROB,
    P_MIN_HALF_SPREAD,
    P_MIN_TAKER_EDGE,
    P_PREDICTION_WEIGHT,
    P_QUOTE_QTY,
    P_REQUOTE_TICKS,
    P_RETRY_NS,
    P_TAKER_COOLDOWN_NS,
    P_TAKER_ENABLED,
    P_TAKER_FEE_BPS,
    P_TAKER_QTY,
    P_VOL_MULT,
    SF_ADVERSE,
    SI_LAST_TAKER_NS,
    SI_Q_AHEAD,
    SI_Q_LIVE_NS,
    SI_Q_PX,
    SI_Q_QTY,
    SI_RETRY_NS,
    SI_STOP_UNTIL_NS,
)
from engine.kernels.risk_nb import (
    ACCEPTED,
    RL_MAX_POSITION,
    RL_MULTIPLIER,
    check_order,
    choose_liquidity,
)


@kernel
def submit(
    book: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    positions: np.ndarray,
    g: np.ndarray,
    gf: np.ndarray,
    limits: np.ndarray,
    corr: np.ndarray,
    params: np.ndarray,
    intents: np.ndarray,
    symbol: int,
    side: int,
    price: int,
    qty: int,
    order_type: int,
    ts_ns: int,
) -> int:
    """Run one intent through risk, log it and count the verdict; return the deny code."""
    code = check_order(
        g[G_TRADING_STATE], symbol, side, price, qty, order_type, ts_ns,
        book, sym_i, sym_f, positions, limits, params, corr, gf,
    )  # fmt: skip
    k = g[G_INTENTS]
    if k < intents.shape[0]:
        it = intents[k]
        it["ts_ns"] = ts_ns
        it["price"] = price
        it["qty"] = qty
        it["symbol"] = symbol
        it["side"] = side
        it["order_type"] = order_type
        it["deny_reason"] = code
    g[G_INTENTS] = k + 1
    g[G_DENY_BASE + code] += 1
    if code == ACCEPTED:
        g[G_ORDERS] += 1
    return code


@kernel
def cancel_quote(sym_i: np.ndarray, g: np.ndarray, symbol: int, j: int) -> None:
    """Cancel our resting quote on side ``j`` (0 bid, 1 ask); cancels are always allowed."""
    if sym_i[symbol, SI_Q_QTY + j] > 0:
        g[G_CANCELS] += 1
    sym_i[symbol, SI_Q_PX + j] = 0
    sym_i[symbol, SI_Q_QTY + j] = 0
    sym_i[symbol, SI_Q_AHEAD + j] = 0


@inline_kernel
def _would_act(
    sym_i: np.ndarray, symbol: int, j: int, price: int, qty: int, requote: float, ts_ns: int
) -> bool:
    """Return whether :func:`_maintain` would change anything (its early returns, inverted)."""
    if sym_i[symbol, SI_Q_QTY + j] > 0:
        return bool(abs(price - sym_i[symbol, SI_Q_PX + j]) >= requote)
    return bool(ts_ns >= sym_i[symbol, SI_RETRY_NS + j] and qty > 0)


@kernel
def _maintain(
    book: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    positions: np.ndarray,
    g: np.ndarray,
    gf: np.ndarray,
    limits: np.ndarray,
    corr: np.ndarray,
    params: np.ndarray,
    intents: np.ndarray,
    symbol: int,
    j: int,
    price: int,
    qty: int,
    ts_ns: int,
) -> None:
    """Keep, replace or place the quote on side ``j`` so it rests near ``price``."""
    current = sym_i[symbol, SI_Q_PX + j]
    if sym_i[symbol, SI_Q_QTY + j] > 0:
        if abs(price - current) < params[P_REQUOTE_TICKS]:
            return
        cancel_quote(sym_i, g, symbol, j)
    if ts_ns < sym_i[symbol, SI_RETRY_NS + j] or qty <= 0:
        return
    side = BUY if j == 0 else SELL
    code = submit(
        book, sym_i, sym_f, positions, g, gf, limits, corr, params, intents,
        symbol, side, price, qty, ORDER_LIMIT_POST_ONLY, ts_ns,
    )  # fmt: skip
    if code != ACCEPTED:
        sym_i[symbol, SI_RETRY_NS + j] = ts_ns + int(params[P_RETRY_NS])
        return
    sym_i[symbol, SI_Q_PX + j] = price
    sym_i[symbol, SI_Q_QTY + j] = qty
    sym_i[symbol, SI_Q_AHEAD + j] = level_qty(book, sym_i, symbol, j == 0, price)
    sym_i[symbol, SI_Q_LIVE_NS + j] = ts_ns + int(params[P_LATENCY_NS])


@inline_kernel
def quote_symbol(
    book: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    features: np.ndarray,
    positions: np.ndarray,
    g: np.ndarray,
    gf: np.ndarray,
    limits: np.ndarray,
    corr: np.ndarray,
    params: np.ndarray,
    intents: np.ndarray,
    fills: np.ndarray,
    symbol: int,
    ts_ns: int,
    prediction: float,
) -> None:
    """Decide and send the orders of one symbol after an event (book must be two-sided)."""
    s = symbol
    adverse = sym_f[s, SF_ADVERSE]
    if (
        g[G_TRADING_STATE] >= HALTED
        or ts_ns < sym_i[s, SI_STOP_UNTIL_NS]
        or adverse > params[P_ADVERSE_PULL]
    ):
        cancel_quote(sym_i, g, s, 0)
        cancel_quote(sym_i, g, s, 1)
        return
    best_bid = book[s, BID_PX, 0]
    best_ask = book[s, ASK_PX, 0]
    mid = 0.5 * (best_bid + best_ask)
    half = params[P_BASE_HALF_SPREAD] + params[P_VOL_MULT] * features[s, FEAT_EWMA_VOL]
    half = max(params[P_MIN_HALF_SPREAD], half + params[P_ADVERSE_MULT] * adverse)
    inventory = positions[s]["qty"] / limits[s, RL_MAX_POSITION]
    fair = mid + features[s, FEAT_MICRO_OFFSET] + params[P_PREDICTION_WEIGHT] * prediction
    fair -= params[P_INVENTORY_SKEW] * inventory
    if (
        params[P_TAKER_ENABLED] > 0.0
        and ts_ns - sym_i[s, SI_LAST_TAKER_NS] >= params[P_TAKER_COOLDOWN_NS]
    ):
        edge = fair - mid
        choice = choose_liquidity(
            edge, 0.5 * (best_ask - best_bid), mid, params[P_MAKER_FEE_BPS],
            params[P_TAKER_FEE_BPS], params[P_MAKER_FILL_PROB], params[P_MIN_TAKER_EDGE],
        )  # fmt: skip
        if choice == LIQUIDITY_TAKER:
            side = BUY if edge > 0.0 else SELL
            price = best_ask if side == BUY else best_bid
            qty = int(params[P_TAKER_QTY])
            sym_i[s, SI_LAST_TAKER_NS] = ts_ns
            code = submit(
                book, sym_i, sym_f, positions, g, gf, limits, corr, params, intents,
                s, side, price, qty, ORDER_IOC, ts_ns,
            )  # fmt: skip
            if code == ACCEPTED:
                g[G_TAKER_ORDERS] += 1
            if code == ACCEPTED and params[P_LIVE] == 0.0:  # live: the venue fills it
                walk_book(
                    book, sym_i, positions, fills, g, s, side, price, qty,
                    limits[s, RL_MULTIPLIER], params[P_TAKER_FEE_BPS], ts_ns,
                )  # fmt: skip
    bid = int(np.floor(fair - half))
    ask = int(np.ceil(fair + half))
    bid = min(bid, best_ask - 1)
    ask = max(ask, best_bid + 1)
    qty = int(params[P_QUOTE_QTY])
    # Most events change nothing: call _maintain (14 arrays across) only when it would act.
    if _would_act(sym_i, s, 0, bid, qty, params[P_REQUOTE_TICKS], ts_ns):
        _maintain(book, sym_i, sym_f, positions, g, gf, limits, corr, params, intents,
                  s, 0, bid, qty, ts_ns)  # fmt: skip
    if _would_act(sym_i, s, 1, ask, qty, params[P_REQUOTE_TICKS], ts_ns):
        _maintain(book, sym_i, sym_f, positions, g, gf, limits, corr, params, intents,
                  s, 1, ask, qty, ts_ns)  # fmt: skip


@kernel
def accepted_iocs(intents: np.ndarray, count: int, out: np.ndarray) -> int:
    """Copy the accepted IOC intents among the first ``count`` into ``out``; return how many.

    Rows of ``out`` (int64, at least ``count`` rows) are ``(symbol, side, price, qty)``. Most
    intents are quotes: filtering them in the live engine with numpy masks cost ~10 µs of
    every decision, for none found.
    """
    n = 0
    for k in range(count):
        it = intents[k]
        if it["deny_reason"] == ACCEPTED and it["order_type"] == ORDER_IOC:
            out[n, 0] = it["symbol"]
            out[n, 1] = it["side"]
            out[n, 2] = it["price"]
            out[n, 3] = it["qty"]
            n += 1
    return n
