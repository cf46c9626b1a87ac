"""Validation kernel for event files: find the first malformed event of a chunk."""

# ruff: noqa: PLR0911 -- one early return per problem keeps the kernel flat
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.dtypes import BOOK_DELTA, BUY, SELL, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import kernel

EVENT_OK: Final = 0
EVENT_BAD_KIND: Final = 1
EVENT_BAD_SYMBOL: Final = 2
EVENT_BAD_SIDE: Final = 3
EVENT_BAD_PRICE: Final = 4
EVENT_BAD_QTY: Final = 5
EVENT_UNSORTED: Final = 6
EVENT_BAD_TIME: Final = 7
EVENT_PROBLEMS: Final = (
    "ok",
    "kind is not 0 (book delta), 1 (trade), 2 (snapshot begin) or 3 (snapshot end)",
    "symbol index is outside the header's symbol list",
    "side must be 1 (buy/bid) or -1 (sell/ask)",
    "price must be a positive number of ticks",
    "qty must be >= 0 lots for a book delta and > 0 for a trade",
    "timestamps are not sorted (ts_ns decreases)",
    "ts_ns must be positive UNIX nanoseconds",
)


@kernel
def validate_events(events: np.ndarray, symbols: int, last_ts: int) -> tuple[int, int, int]:
    """Return ``(problem, index, last ts)``: the first bad event of the chunk, if any.

    ``last_ts`` is the timestamp that ended the previous chunk (0 for the first).
    """
    prev = last_ts
    for i in range(events.shape[0]):
        e = events[i]
        kind = e["kind"]
        ts = e["ts_ns"]
        if ts <= 0:
            return EVENT_BAD_TIME, i, prev
        if ts < prev:
            return EVENT_UNSORTED, i, prev
        prev = ts
        sym = e["symbol"]
        if sym < 0 or sym >= symbols:
            return EVENT_BAD_SYMBOL, i, prev
        if kind in (SNAPSHOT_BEGIN, SNAPSHOT_END):
            continue
        if kind not in (BOOK_DELTA, TRADE):
            return EVENT_BAD_KIND, i, prev
        if e["side"] != BUY and e["side"] != SELL:
            return EVENT_BAD_SIDE, i, prev
        if e["price"] <= 0:
            return EVENT_BAD_PRICE, i, prev
        qty = e["qty"]
        if qty < 0 or (kind == TRADE and qty == 0):
            return EVENT_BAD_QTY, i, prev
    return EVENT_OK, -1, prev
