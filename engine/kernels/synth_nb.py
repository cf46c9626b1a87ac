"""Synthetic market kernels: a correlated multi-symbol L2 stream, written chunk by chunk.

Each symbol's fair price is ``base * (1 + beta * F + I)``: ``F`` is a random walk shared by all
symbols (the correlation), ``I`` the symbol's own walk. The generator keeps its own book of
each symbol and moves it toward the fair price one level change at a time; trades take the
best level, with the aggressor leaning toward the fair price (so order flow carries signal).
The random numbers come from a xorshift64 state array, so a seed gives the same file in
compiled and interpreted runs.
"""

# ruff: noqa: PLR0917, PLR0912, PLR0915 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import BOOK_DELTA, BUY, SELL, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import kernel
from engine.kernels.book_nb import _set_level
from engine.kernels.layout import ASK_PX, ASK_QTY, BID_PX, BID_QTY
from engine.kernels.market_nb import write_event

# generator state: float64[symbols, GS_COLUMNS]
GS_BASE: Final = 0
GS_BETA: Final = 1
GS_IDIO: Final = 2
GS_VOL: Final = 3  # relative volatility per step of the symbol's own walk
GS_SEQ: Final = 4
GS_N_BID: Final = 5
GS_N_ASK: Final = 6
GS_STARTED: Final = 7
GS_COLUMNS: Final = 8
# engine-wide generator scalars: float64[GG_COLUMNS]
GG_FACTOR: Final = 0
GG_FACTOR_VOL: Final = 1
GG_TS: Final = 2
GG_MEAN_DT_NS: Final = 3
GG_TRADE_PROB: Final = 4
GG_MEAN_QTY: Final = 5
GG_DEPTH: Final = 6
GG_COLUMNS: Final = 7
START_NS: Final = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z; GG_TS counts from here


@kernel
def _uniform(rng: np.ndarray) -> float:
    x = rng[0]
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    rng[0] = x
    return float(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@kernel
def _normal(rng: np.ndarray) -> float:
    u1 = max(_uniform(rng), 1e-300)
    u2 = _uniform(rng)
    return float(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))


@kernel
def _lots(rng: np.ndarray, mean: float) -> int:
    return 1 + int(-np.log(max(_uniform(rng), 1e-300)) * mean)


@kernel
def _emit(
    out: np.ndarray,
    c: int,
    gs: np.ndarray,
    book: np.ndarray,
    s: int,
    kind: int,
    side: int,
    price: int,
    qty: int,
    ts: int,
) -> int:
    if kind == BOOK_DELTA and qty > 0:
        # a full side forgets its worst level: say so, or a deeper book would keep it
        cap = book.shape[2]
        row = BID_PX if side == BUY else ASK_PX
        n = int(gs[s, GS_N_BID] if side == BUY else gs[s, GS_N_ASK])
        worst = book[s, row, n - 1] if n > 0 else 0
        exists = False
        for i in range(n):
            if book[s, row, i] == price:
                exists = True
        if n == cap and not exists:
            c = _emit_one(out, c, gs, book, s, BOOK_DELTA, side, worst, 0, ts)
    return _emit_one(out, c, gs, book, s, kind, side, price, qty, ts)


@kernel
def _emit_one(
    out: np.ndarray,
    c: int,
    gs: np.ndarray,
    book: np.ndarray,
    s: int,
    kind: int,
    side: int,
    price: int,
    qty: int,
    ts: int,
) -> int:
    gs[s, GS_SEQ] += 1
    write_event(out, c, ts, int(gs[s, GS_SEQ]), s, kind, side, price, qty)
    if kind == BOOK_DELTA:
        if side == BUY:
            n = int(gs[s, GS_N_BID])
            gs[s, GS_N_BID] = _set_level(book[s, BID_PX], book[s, BID_QTY], n, price, qty, True)
        else:
            n = int(gs[s, GS_N_ASK])
            gs[s, GS_N_ASK] = _set_level(book[s, ASK_PX], book[s, ASK_QTY], n, price, qty, False)
    return c + 1


@kernel
def _snapshot(
    out: np.ndarray, c: int, gs: np.ndarray, gg: np.ndarray, book: np.ndarray, rng: np.ndarray,
    s: int, fair: float,
) -> int:  # fmt: skip
    ts = START_NS + int(gg[GG_TS])
    depth = int(gg[GG_DEPTH])
    c = _emit(out, c, gs, book, s, SNAPSHOT_BEGIN, 0, 0, 0, ts)
    gs[s, GS_N_BID] = 0
    gs[s, GS_N_ASK] = 0
    book[s, :, :] = 0
    best_bid = int(np.floor(fair))
    for i in range(depth):
        lots = _lots(rng, gg[GG_MEAN_QTY])
        c = _emit(out, c, gs, book, s, BOOK_DELTA, BUY, best_bid - i, lots, ts)
        lots = _lots(rng, gg[GG_MEAN_QTY])
        c = _emit(out, c, gs, book, s, BOOK_DELTA, SELL, best_bid + 1 + i, lots, ts)
    c = _emit(out, c, gs, book, s, SNAPSHOT_END, 0, 0, 0, ts)
    gs[s, GS_STARTED] = 1.0
    return c


@kernel
def synth_fill(
    out: np.ndarray, gs: np.ndarray, gg: np.ndarray, book: np.ndarray, rng: np.ndarray
) -> int:
    """Write synthetic events into ``out`` until it is (nearly) full; return the count.

    Call again with the same state arrays to continue the stream.
    """
    symbols = gs.shape[0]
    depth = int(gg[GG_DEPTH])
    cap = out.shape[0]
    c = 0
    margin = 2 * depth + 4
    while c + margin < cap:
        s = min(int(_uniform(rng) * symbols), symbols - 1)
        gg[GG_FACTOR] += gg[GG_FACTOR_VOL] * _normal(rng)
        gs[s, GS_IDIO] += gs[s, GS_VOL] * _normal(rng)
        fair = gs[s, GS_BASE] * (1.0 + gs[s, GS_BETA] * gg[GG_FACTOR] + gs[s, GS_IDIO])
        gg[GG_TS] += 1.0 - np.log(max(_uniform(rng), 1e-300)) * gg[GG_MEAN_DT_NS]
        ts = START_NS + int(gg[GG_TS])
        if gs[s, GS_STARTED] == 0.0:
            c = _snapshot(out, c, gs, gg, book, rng, s, fair)
            continue
        n_bid = int(gs[s, GS_N_BID])
        n_ask = int(gs[s, GS_N_ASK])
        best_bid = book[s, BID_PX, 0]
        best_ask = book[s, ASK_PX, 0]
        target_bid = int(np.floor(fair))
        target_ask = target_bid + 1
        mean_qty = gg[GG_MEAN_QTY]
        u = _uniform(rng)
        if n_bid == 0 or n_ask == 0:
            c = _snapshot(out, c, gs, gg, book, rng, s, fair)
        elif u < 0.6 and best_bid < target_bid:
            if best_bid + 1 < best_ask:
                c = _emit(out, c, gs, book, s, BOOK_DELTA, BUY, best_bid + 1,
                          _lots(rng, mean_qty), ts)  # fmt: skip
            elif n_ask > 1:
                c = _emit(out, c, gs, book, s, BOOK_DELTA, SELL, best_ask, 0, ts)
        elif u < 0.6 and best_ask > target_ask:
            if best_ask - 1 > best_bid:
                c = _emit(out, c, gs, book, s, BOOK_DELTA, SELL, best_ask - 1,
                          _lots(rng, mean_qty), ts)  # fmt: skip
            elif n_bid > 1:
                c = _emit(out, c, gs, book, s, BOOK_DELTA, BUY, best_bid, 0, ts)
        elif u < 0.6 and best_bid > target_bid and n_bid > 1:
            c = _emit(out, c, gs, book, s, BOOK_DELTA, BUY, best_bid, 0, ts)
        elif u < 0.6 and best_ask < target_ask and n_ask > 1:
            c = _emit(out, c, gs, book, s, BOOK_DELTA, SELL, best_ask, 0, ts)
        elif u < 0.6 + gg[GG_TRADE_PROB]:
            lean = np.tanh(fair - 0.5 * (best_bid + best_ask))
            if _uniform(rng) < 0.5 + 0.35 * lean:
                lots = min(book[s, ASK_QTY, 0], _lots(rng, 0.5 * mean_qty))
                c = _emit(out, c, gs, book, s, TRADE, BUY, best_ask, lots, ts)
                left = book[s, ASK_QTY, 0] - lots
                if left > 0 or n_ask > 1:
                    c = _emit(out, c, gs, book, s, BOOK_DELTA, SELL, best_ask, left, ts)
            else:
                lots = min(book[s, BID_QTY, 0], _lots(rng, 0.5 * mean_qty))
                c = _emit(out, c, gs, book, s, TRADE, SELL, best_bid, lots, ts)
                left = book[s, BID_QTY, 0] - lots
                if left > 0 or n_bid > 1:
                    c = _emit(out, c, gs, book, s, BOOK_DELTA, BUY, best_bid, left, ts)
        else:
            is_bid = _uniform(rng) < 0.5
            n = n_bid if is_bid else n_ask
            side = BUY if is_bid else SELL
            row = BID_PX if is_bid else ASK_PX
            if n < depth and _uniform(rng) < 0.5:
                step = 1 + int(-np.log(max(_uniform(rng), 1e-300)))
                last = book[s, row, n - 1]
                price = last - step if is_bid else last + step
                if price > 0:
                    c = _emit(out, c, gs, book, s, BOOK_DELTA, side, price,
                              _lots(rng, mean_qty), ts)  # fmt: skip
            else:
                level = min(n - 1, int(-np.log(max(_uniform(rng), 1e-300)) * 3.0))
                price = book[s, row, level]
                if level > 0 and (n > depth or _uniform(rng) < 0.25):
                    c = _emit(out, c, gs, book, s, BOOK_DELTA, side, price, 0, ts)
                else:
                    c = _emit(out, c, gs, book, s, BOOK_DELTA, side, price,
                              _lots(rng, mean_qty), ts)  # fmt: skip
    return c
