"""The replay loop: book, features, model, post-trade, strategy, risk and fills per event.

One call processes ``events[lo:hi]`` and leaves every piece of state in the caller's arrays,
so a file is replayed chunk by chunk (and a single event can be decided from Python) with the
same result as one long call.
"""

# ruff: noqa: PLR0917, PLR0912, PLR0915 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import (
    BOOK_DELTA,
    BUY,
    EVENT_DTYPE,
    FILL_DTYPE,
    FILL_FLAG_LATENCY_ARB,
    INTENT_DTYPE,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    ORDER_IOC,
    POSITION_DTYPE,
    SELL,
    SNAPSHOT_END,
    TRADE,
)
from engine.kernels._jit import kernel
from engine.kernels.book_nb import BOOK_GAP, book_apply
from engine.kernels.features_nb import update_book_features, update_trade_flow
from engine.kernels.fills_nb import apply_fill, passive_fill_from_trade, walk_book
from engine.kernels.layout import (
    ASK_PX,
    BID_PX,
    BOOK_ROWS,
    G_BOOK_CODE_BASE,
    G_COLUMNS,
    G_EVENTS,
    G_LATENCY_ARB,
    G_MK_COUNT,
    G_STOPS,
    GF_COLUMNS,
    MK_COLUMNS,
    MV_ROWS,
    N_FEATURES,
    P_ADVERSE_ALPHA,
    P_ADVERSE_DECAY,
    P_COLUMNS,
    P_EWMA_ALPHA,
    P_FLOW_ALPHA,
    P_HALT_DRAWDOWN,
    P_IMBALANCE_LEVELS,
    P_LATENCY_ARB_MOVE_TICKS,
    P_LATENCY_ARB_PENALTY,
    P_LATENCY_ARB_WINDOW_NS,
    P_LIVE,
    P_MAKER_FEE_BPS,
    P_MARKOUT_NS,
    P_REDUCE_DRAWDOWN,
    P_STALE_NS,
    P_STOP_COOLDOWN_NS,
    P_STOP_SLIPPAGE_TICKS,
    P_STOP_TICKS,
    P_TAKER_FEE_BPS,
    PK_DEPTH,
    PK_FILL_CAPACITY,
    PK_HEADER,
    PK_HIDDEN,
    PK_INTENT_CAPACITY,
    PK_MODEL_KIND,
    PK_RING,
    PK_SYMBOLS,
    PK_WIDTH,
    SF_ADVERSE,
    SF_COLUMNS,
    SF_EQUITY,
    SF_MID,
    SF_PREDICTION,
    SI_COLUMNS,
    SI_IN_SNAPSHOT,
    SI_LATENCY_ARB_FILLS,
    SI_N_ASK,
    SI_N_BID,
    SI_PRED_FRESH,
    SI_Q_AHEAD,
    SI_Q_LIVE_NS,
    SI_Q_PX,
    SI_Q_QTY,
    SI_STOP_UNTIL_NS,
    SI_STOPS,
    SI_VALID,
)
from engine.kernels.model_nb import predict
from engine.kernels.posttrade_nb import (
    drawdown_switch,
    is_latency_arb,
    markout_drain,
    markout_push,
    record_reference_move,
    stop_loss_hit,
)
from engine.kernels.quote_nb import cancel_quote, quote_symbol, submit
from engine.kernels.risk_nb import ACCEPTED, RL_COLUMNS, RL_MULTIPLIER


@kernel
def _passive_fill(
    positions: np.ndarray,
    fills: np.ndarray,
    g: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    ring: np.ndarray,
    limits: np.ndarray,
    params: np.ndarray,
    symbol: int,
    j: int,
    qty: int,
    ts_ns: int,
) -> None:
    """Fill ``qty`` lots of our resting quote on side ``j`` at its price."""
    side = BUY if j == 0 else SELL
    price = sym_i[symbol, SI_Q_PX + j]
    flags = 0
    if is_latency_arb(sym_i, symbol, side, ts_ns, int(params[P_LATENCY_ARB_WINDOW_NS])):
        flags = FILL_FLAG_LATENCY_ARB
        g[G_LATENCY_ARB] += 1
        sym_i[symbol, SI_LATENCY_ARB_FILLS] += 1
        sym_f[symbol, SF_ADVERSE] += params[P_LATENCY_ARB_PENALTY]
    apply_fill(
        positions, fills, g, symbol, side, price, qty, limits[symbol, RL_MULTIPLIER],
        params[P_MAKER_FEE_BPS], LIQUIDITY_MAKER, ts_ns, flags,
    )  # fmt: skip
    markout_push(ring, g, ts_ns, symbol, side, price)
    left = sym_i[symbol, SI_Q_QTY + j] - qty
    sym_i[symbol, SI_Q_QTY + j] = left
    if left <= 0:
        sym_i[symbol, SI_Q_PX + j] = 0
        sym_i[symbol, SI_Q_AHEAD + j] = 0


@kernel
def live_fill(
    positions: np.ndarray,
    fills: np.ndarray,
    g: np.ndarray,
    sym_i: np.ndarray,
    sym_f: np.ndarray,
    ring: np.ndarray,
    limits: np.ndarray,
    params: np.ndarray,
    symbol: int,
    side: int,
    price: int,
    qty: int,
    maker: bool,
    ts_ns: int,
) -> None:
    """Book one venue fill of ours: position, markout, latency-arb check, resting quote.

    The live counterpart of the fill model: a maker fill shrinks the resting quote on its
    side (so the strategy requotes once it is gone); fees follow the venue's schedule.
    """
    flags = 0
    if maker and is_latency_arb(sym_i, symbol, side, ts_ns, int(params[P_LATENCY_ARB_WINDOW_NS])):
        flags = FILL_FLAG_LATENCY_ARB
        g[G_LATENCY_ARB] += 1
        sym_i[symbol, SI_LATENCY_ARB_FILLS] += 1
        sym_f[symbol, SF_ADVERSE] += params[P_LATENCY_ARB_PENALTY]
    fee_bps = params[P_MAKER_FEE_BPS] if maker else params[P_TAKER_FEE_BPS]
    liquidity = LIQUIDITY_MAKER if maker else LIQUIDITY_TAKER
    apply_fill(positions, fills, g, symbol, side, price, qty, limits[symbol, RL_MULTIPLIER],
               fee_bps, liquidity, ts_ns, flags)  # fmt: skip
    markout_push(ring, g, ts_ns, symbol, side, price)
    if maker:
        j = 0 if side == BUY else 1
        left = sym_i[symbol, SI_Q_QTY + j] - qty
        if left <= 0:
            sym_i[symbol, SI_Q_PX + j] = 0
            sym_i[symbol, SI_Q_QTY + j] = 0
            sym_i[symbol, SI_Q_AHEAD + j] = 0
        else:
            sym_i[symbol, SI_Q_QTY + j] = left


@kernel
def replay_chunk(
    events: np.ndarray,
    lo: int,
    hi: int,
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
    model_kind: int,
    mv: np.ndarray,
    w1: np.ndarray,
    scratch: np.ndarray,
    ring: np.ndarray,
    fills: np.ndarray,
    intents: np.ndarray,
) -> int:
    """Run the engine over ``events[lo:hi]``; return the number of events processed.

    State arrays are described in ``engine.kernels.layout``; ``engine.replay.state`` builds
    them. ``fills`` and ``intents`` are logs: once full, later rows are counted, not stored.
    """
    stale_ns = int(params[P_STALE_NS])
    levels = int(params[P_IMBALANCE_LEVELS])
    alpha = params[P_EWMA_ALPHA]
    flow_alpha = params[P_FLOW_ALPHA]
    move_ticks = params[P_LATENCY_ARB_MOVE_TICKS]
    markout_ns = int(params[P_MARKOUT_NS])
    # Live: the same decisions, but fills only ever come from the venue (live_fill); the
    # fill model below is replay's stand-in for it.
    simulate = params[P_LIVE] == 0.0
    n_symbols = positions.shape[0]
    # one strided view per field, made once: a record per event is slow on read-only input
    ev_symbol = events["symbol"]
    ev_kind = events["kind"]
    ev_side = events["side"]
    ev_price = events["price"]
    ev_qty = events["qty"]
    ev_ts = events["ts_ns"]
    ev_seq = events["seq"]
    for k in range(lo, hi):
        s = ev_symbol[k]
        kind = ev_kind[k]
        side = ev_side[k]
        price = ev_price[k]
        qty = ev_qty[k]
        ts = ev_ts[k]
        g[G_EVENTS] += 1
        # before applying: does a delta land strictly below the top ``levels`` levels?
        deep = False
        if kind == BOOK_DELTA:
            if side == BUY:
                deep = sym_i[s, SI_N_BID] >= levels and price < book[s, BID_PX, levels - 1]
            else:
                deep = sym_i[s, SI_N_ASK] >= levels and price > book[s, ASK_PX, levels - 1]
        code = book_apply(book, sym_i, s, kind, side, price, qty, ev_seq[k], ts, stale_ns)
        g[G_BOOK_CODE_BASE + code] += 1
        if code >= BOOK_GAP:
            cancel_quote(sym_i, g, s, 0)
            cancel_quote(sym_i, g, s, 1)
            continue
        if sym_i[s, SI_VALID] == 0 or sym_i[s, SI_N_BID] == 0 or sym_i[s, SI_N_ASK] == 0:
            continue
        if kind == TRADE:
            update_trade_flow(sym_f, features, s, side, qty, flow_alpha)
            sym_i[s, SI_PRED_FRESH] = 0
            j = 0 if side == SELL else 1  # a seller hits our bid, a buyer lifts our ask
            if simulate and sym_i[s, SI_Q_QTY + j] > 0 and ts >= sym_i[s, SI_Q_LIVE_NS + j]:
                filled, ahead = passive_fill_from_trade(
                    sym_i[s, SI_Q_PX + j], sym_i[s, SI_Q_QTY + j], sym_i[s, SI_Q_AHEAD + j],
                    j == 0, price, qty,
                )  # fmt: skip
                sym_i[s, SI_Q_AHEAD + j] = ahead
                if filled > 0:
                    _passive_fill(positions, fills, g, sym_i, sym_f, ring, limits, params,
                                  s, j, filled, ts)  # fmt: skip
        elif kind in (BOOK_DELTA, SNAPSHOT_END):
            if kind == BOOK_DELTA:
                j = 0 if side == BUY else 1
                if sym_i[s, SI_Q_PX + j] == price and sym_i[s, SI_Q_AHEAD + j] > qty:
                    sym_i[s, SI_Q_AHEAD + j] = qty
            # A delta below the top ``levels`` levels leaves every book feature (and the mid)
            # exactly as it was: recomputing them would write the same values.
            if not deep:
                change = update_book_features(book, sym_i, sym_f, features, s, levels, alpha)
                sym_i[s, SI_PRED_FRESH] = 0
                if change != 0.0:
                    record_reference_move(sym_i, s, change, move_ticks, ts)
            # the market moved onto a resting quote: it trades at the quote's price
            if (
                simulate
                and sym_i[s, SI_Q_QTY] > 0
                and ts >= sym_i[s, SI_Q_LIVE_NS]
                and sym_i[s, SI_Q_PX] >= book[s, ASK_PX, 0]
            ):
                _passive_fill(positions, fills, g, sym_i, sym_f, ring, limits, params,
                              s, 0, sym_i[s, SI_Q_QTY], ts)  # fmt: skip
            if (
                simulate
                and sym_i[s, SI_Q_QTY + 1] > 0
                and ts >= sym_i[s, SI_Q_LIVE_NS + 1]
                and sym_i[s, SI_Q_PX + 1] <= book[s, BID_PX, 0]
            ):
                _passive_fill(positions, fills, g, sym_i, sym_f, ring, limits, params,
                              s, 1, sym_i[s, SI_Q_QTY + 1], ts)  # fmt: skip
        else:
            continue
        if sym_i[s, SI_IN_SNAPSHOT] == 1:
            continue
        # post-trade
        sym_f[s, SF_ADVERSE] *= params[P_ADVERSE_DECAY]
        if g[G_MK_COUNT] > 0:
            markout_drain(ring, g, sym_f, ts, markout_ns, params[P_ADVERSE_ALPHA])
        # Mark to market incrementally: only this event's symbol can have a new mid or
        # position, so only its term is recomputed; the sum runs over the stored terms in
        # symbol order, exactly like posttrade_nb.mark_to_market (same rounding).
        p = positions[s]
        sym_f[s, SF_EQUITY] = p["cash"] + p["qty"] * sym_f[s, SF_MID] * limits[s, RL_MULTIPLIER]
        equity = 0.0
        for i in range(n_symbols):
            equity += sym_f[i, SF_EQUITY]
        drawdown_switch(g, gf, equity, params[P_REDUCE_DRAWDOWN], params[P_HALT_DRAWDOWN])
        pos = positions[s]["qty"]
        if (
            pos != 0
            and ts >= sym_i[s, SI_STOP_UNTIL_NS]
            and stop_loss_hit(
                pos, positions[s]["avg_price"], sym_f[s, SF_MID], params[P_STOP_TICKS]
            )
        ):
            g[G_STOPS] += 1
            sym_i[s, SI_STOPS] += 1
            sym_i[s, SI_STOP_UNTIL_NS] = ts + int(params[P_STOP_COOLDOWN_NS])
            cancel_quote(sym_i, g, s, 0)
            cancel_quote(sym_i, g, s, 1)
            out_side = SELL if pos > 0 else BUY
            slip = int(params[P_STOP_SLIPPAGE_TICKS])
            limit = book[s, BID_PX, 0] - slip if pos > 0 else book[s, ASK_PX, 0] + slip
            lots = abs(pos)
            code = submit(book, sym_i, sym_f, positions, g, gf, limits, corr, params, intents,
                          s, out_side, limit, lots, ORDER_IOC, ts)  # fmt: skip
            if code == ACCEPTED and simulate:  # live: the venue fills it
                walk_book(book, sym_i, positions, fills, g, s, out_side, limit, lots,
                          limits[s, RL_MULTIPLIER], params[P_TAKER_FEE_BPS], ts)  # fmt: skip
            continue
        # The model is a pure function of the feature row (the weights are fixed for a run),
        # so it runs only when the row may have changed since its last output.
        if sym_i[s, SI_PRED_FRESH] == 0:
            sym_f[s, SF_PREDICTION] = predict(model_kind, features[s], mv, w1, scratch)
            sym_i[s, SI_PRED_FRESH] = 1
        prediction = sym_f[s, SF_PREDICTION]
        quote_symbol(book, sym_i, sym_f, features, positions, g, gf, limits, corr, params,
                     intents, fills, s, ts, prediction)  # fmt: skip
    return hi - lo


@kernel
def packed_offsets(
    symbols: int, depth: int, ring: int, hidden: int, width: int
) -> tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]:
    """Return where each array starts in the packed buffers, and each buffer's length.

    ``(book, sym_i, g, ring, int_end, sym_f, features, gf, limits, corr, params, mv, w1,
    scratch, float_end)``; see ``PK_*`` in the layout.
    """
    o_book = PK_HEADER
    o_sym_i = o_book + symbols * BOOK_ROWS * depth
    o_g = o_sym_i + symbols * SI_COLUMNS
    o_ring = o_g + G_COLUMNS
    i_end = o_ring + ring * MK_COLUMNS
    o_sym_f = 0
    o_features = o_sym_f + symbols * SF_COLUMNS
    o_gf = o_features + symbols * N_FEATURES
    o_limits = o_gf + GF_COLUMNS
    o_corr = o_limits + symbols * RL_COLUMNS
    o_params = o_corr + symbols * symbols
    o_mv = o_params + P_COLUMNS
    o_w1 = o_mv + MV_ROWS * width
    o_scratch = o_w1 + hidden * N_FEATURES
    f_end = o_scratch + N_FEATURES + hidden
    return (
        o_book,
        o_sym_i,
        o_g,
        o_ring,
        i_end,
        o_sym_f,
        o_features,
        o_gf,
        o_limits,
        o_corr,
        o_params,
        o_mv,
        o_w1,
        o_scratch,
        f_end,
    )


# record sizes as plain ints: numba reads a global int as a constant, not a dtype's attribute
_POSITION_BYTES: Final = POSITION_DTYPE.itemsize
_FILL_BYTES: Final = FILL_DTYPE.itemsize
_INTENT_BYTES: Final = INTENT_DTYPE.itemsize


@kernel
def arena_offsets(
    symbols: int, depth: int, ring: int, hidden: int, width: int, fill_cap: int, intent_cap: int
) -> tuple[int, int, int, int, int, int]:
    """Return the arena's byte offsets: ``(floats, positions, fills, intents, end)`` after 0.

    The int64 words start at byte 0, then the float64 words, then the record arrays; every
    record size is a multiple of 8, so every section stays 8-byte aligned.
    """
    offsets = packed_offsets(symbols, depth, ring, hidden, width)
    o_floats = offsets[4] * 8
    o_positions = o_floats + offsets[14] * 8
    o_fills = o_positions + symbols * _POSITION_BYTES
    o_intents = o_fills + fill_cap * _FILL_BYTES
    end = o_intents + intent_cap * _INTENT_BYTES
    return 0, o_floats, o_positions, o_fills, o_intents, end


@kernel
def arena_views(
    arena: np.ndarray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray,
]:  # fmt: skip
    """Return every state array of :func:`replay_chunk`, in its order, as views of ``arena``.

    The one place the arena is carved up: the kernel calls it compiled, and
    ``engine.replay.state`` calls ``arena_views.py_func`` (NumPy does the same views).
    """
    header = arena[0 : PK_HEADER * 8].view(np.int64)
    n = header[PK_SYMBOLS]
    depth = header[PK_DEPTH]
    cap = header[PK_RING]
    hidden = header[PK_HIDDEN]
    width = header[PK_WIDTH]
    _, o_floats, o_positions, o_fills, o_intents, end = arena_offsets(
        n, depth, cap, hidden, width, header[PK_FILL_CAPACITY], header[PK_INTENT_CAPACITY]
    )
    ibuf = arena[0:o_floats].view(np.int64)
    fbuf = arena[o_floats:o_positions].view(np.float64)
    (
        o_book,
        o_sym_i,
        o_g,
        o_ring,
        i_end,
        o_sym_f,
        o_features,
        o_gf,
        o_limits,
        o_corr,
        o_params,
        o_mv,
        o_w1,
        o_scratch,
        f_end,
    ) = packed_offsets(n, depth, cap, hidden, width)
    return (
        ibuf[o_book:o_sym_i].reshape((n, BOOK_ROWS, depth)),
        ibuf[o_sym_i:o_g].reshape((n, SI_COLUMNS)),
        fbuf[o_sym_f:o_features].reshape((n, SF_COLUMNS)),
        fbuf[o_features:o_gf].reshape((n, N_FEATURES)),
        arena[o_positions:o_fills].view(POSITION_DTYPE),
        ibuf[o_g:o_ring],
        fbuf[o_gf:o_limits],
        fbuf[o_limits:o_corr].reshape((n, RL_COLUMNS)),
        fbuf[o_corr:o_params].reshape((n, n)),
        fbuf[o_params:o_mv],
        int(header[PK_MODEL_KIND]),
        fbuf[o_mv:o_w1].reshape((MV_ROWS, width)),
        fbuf[o_w1:o_scratch].reshape((hidden, N_FEATURES)),
        fbuf[o_scratch:f_end],
        ibuf[o_ring:i_end].reshape((cap, MK_COLUMNS)),
        arena[o_fills:o_intents].view(FILL_DTYPE),
        arena[o_intents:end].view(INTENT_DTYPE),
    )


@kernel
def replay_packed(event_bytes: np.ndarray, lo: int, hi: int, arena: np.ndarray) -> int:
    """Run :func:`replay_chunk` on the state packed in one byte arena (``PK_*`` layout).

    Same result as ``replay_chunk`` on the unpacked arrays (they are views of the arena);
    this entry point exists because a call from Python pays per array argument, and more
    for a record array: numba types a structured array in Python on every call (~300 ns),
    a plain one in C. So the events arrive as a ``uint8`` view (``events.view(np.uint8)``)
    and are viewed back as records here.
    """
    return replay_chunk(event_bytes.view(EVENT_DTYPE), lo, hi, *arena_views(arena))
