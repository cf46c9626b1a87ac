"""L2 order book kernels: apply one event to a symbol's book and report its integrity.

A book side is a sorted struct-of-arrays row of ``depth`` levels (bids descending, asks
ascending). Levels worse than the deepest stored level are dropped when the side is full,
like a venue's depth-N feed. An update that would corrupt the book (gap, crossed, negative
quantity, non-positive price) is not applied: the book becomes invalid until the next
snapshot, and every event until then returns ``BOOK_AWAITING_SNAPSHOT``.
"""

# ruff: noqa: PLR0917, PLR0911, PLR0912 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import BOOK_DELTA, BUY, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    BOOK_ROWS,
    SI_COLUMNS,
    SI_IN_SNAPSHOT,
    SI_LAST_SEQ,
    SI_LAST_TS,
    SI_N_ASK,
    SI_N_BID,
    SI_VALID,
)

BOOK_OK: Final = 0
BOOK_STALE: Final = 1  # applied, but the symbol's stream was silent longer than allowed
BOOK_GAP: Final = 2
BOOK_CROSSED: Final = 3
BOOK_NEGATIVE_QTY: Final = 4
BOOK_BAD_PRICE: Final = 5
BOOK_AWAITING_SNAPSHOT: Final = 6
BOOK_BAD_KIND: Final = 7
BOOK_CODE_NAMES: Final = (
    "ok",
    "stale",
    "gap",
    "crossed",
    "negative_qty",
    "bad_price",
    "awaiting_snapshot",
    "bad_kind",
)


def new_book(symbols: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Return empty ``(book, symbol_state)`` arrays for ``symbols`` books of ``depth`` levels."""
    book = np.zeros((symbols, BOOK_ROWS, depth), dtype=np.int64)
    state = np.zeros((symbols, SI_COLUMNS), dtype=np.int64)
    return book, state


@kernel
def _set_level(px: np.ndarray, qty: np.ndarray, n: int, price: int, lots: int, is_bid: bool) -> int:
    """Set one level of a sorted side; return the new level count."""
    depth = px.shape[0]
    i = 0
    if is_bid:
        while i < n and px[i] > price:
            i += 1
    else:
        while i < n and px[i] < price:
            i += 1
    if i < n and px[i] == price:
        if lots > 0:
            qty[i] = lots
            return n
        for j in range(i, n - 1):
            px[j] = px[j + 1]
            qty[j] = qty[j + 1]
        px[n - 1] = 0
        qty[n - 1] = 0
        return n - 1
    if lots == 0 or i >= depth:
        return n  # removing an absent level, or a level beyond the stored depth
    last = n if n < depth else depth - 1
    for j in range(last, i, -1):
        px[j] = px[j - 1]
        qty[j] = qty[j - 1]
    px[i] = price
    qty[i] = lots
    return n + 1 if n < depth else n


@inline_kernel
def book_apply(
    book: np.ndarray,
    state: np.ndarray,
    symbol: int,
    kind: int,
    side: int,
    price: int,
    qty: int,
    seq: int,
    ts_ns: int,
    stale_ns: int,
) -> int:
    """Apply one event to ``book[symbol]``; return a ``BOOK_*`` code.

    Args:
        book: int64[symbols, BOOK_ROWS, depth], updated in place.
        state: int64[symbols, SI_COLUMNS], updated in place.
        symbol: Row of the symbol.
        kind: Event kind (``engine.dtypes``).
        side: BUY (bid) or SELL (ask) for deltas; the aggressor for trades.
        price: Ticks.
        qty: Lots; 0 removes a level.
        seq: The event's per-symbol sequence number.
        ts_ns: The event time.
        stale_ns: Longest silence before an update is reported stale.
    """
    st = state[symbol]
    if kind == SNAPSHOT_BEGIN:
        st[SI_N_BID] = 0
        st[SI_N_ASK] = 0
        book[symbol, :, :] = 0
        st[SI_IN_SNAPSHOT] = 1
        st[SI_VALID] = 0
        st[SI_LAST_SEQ] = seq
        st[SI_LAST_TS] = ts_ns
        return BOOK_OK
    if st[SI_VALID] == 0 and st[SI_IN_SNAPSHOT] == 0:
        return BOOK_AWAITING_SNAPSHOT
    if seq != st[SI_LAST_SEQ] + 1:
        st[SI_VALID] = 0
        st[SI_IN_SNAPSHOT] = 0
        st[SI_LAST_SEQ] = seq
        return BOOK_GAP
    st[SI_LAST_SEQ] = seq
    stale = st[SI_VALID] == 1 and ts_ns - st[SI_LAST_TS] > stale_ns
    st[SI_LAST_TS] = ts_ns
    if kind == SNAPSHOT_END:
        st[SI_IN_SNAPSHOT] = 0
        st[SI_VALID] = 1
        return BOOK_OK
    if kind == TRADE:
        if price <= 0 or qty <= 0:
            st[SI_VALID] = 0
            st[SI_IN_SNAPSHOT] = 0
            return BOOK_BAD_PRICE if price <= 0 else BOOK_NEGATIVE_QTY
        return BOOK_STALE if stale else BOOK_OK
    if kind != BOOK_DELTA:
        st[SI_VALID] = 0
        st[SI_IN_SNAPSHOT] = 0
        return BOOK_BAD_KIND
    code = BOOK_OK
    if qty < 0:
        code = BOOK_NEGATIVE_QTY
    elif price <= 0:
        code = BOOK_BAD_PRICE
    elif side == BUY:
        if qty > 0 and st[SI_N_ASK] > 0 and price >= book[symbol, ASK_PX, 0]:
            code = BOOK_CROSSED
        else:
            st[SI_N_BID] = _set_level(
                book[symbol, BID_PX], book[symbol, BID_QTY], st[SI_N_BID], price, qty, True
            )
    elif qty > 0 and st[SI_N_BID] > 0 and price <= book[symbol, BID_PX, 0]:
        code = BOOK_CROSSED
    else:
        st[SI_N_ASK] = _set_level(
            book[symbol, ASK_PX], book[symbol, ASK_QTY], st[SI_N_ASK], price, qty, False
        )
    if code != BOOK_OK:
        st[SI_VALID] = 0
        st[SI_IN_SNAPSHOT] = 0
        return code
    return BOOK_STALE if stale else BOOK_OK


@kernel
def book_is_tradeable(state: np.ndarray, symbol: int) -> bool:
    """Return whether the symbol's book is valid and has both sides."""
    st = state[symbol]
    return bool(st[SI_VALID] == 1 and st[SI_N_BID] > 0 and st[SI_N_ASK] > 0)


@kernel
def visible_depth(book: np.ndarray, state: np.ndarray, symbol: int, side: int) -> int:
    """Return the lots visible on one side (BUY = bids, SELL = asks)."""
    if side == BUY:
        return int(np.sum(book[symbol, BID_QTY, : state[symbol, SI_N_BID]]))
    return int(np.sum(book[symbol, ASK_QTY, : state[symbol, SI_N_ASK]]))
