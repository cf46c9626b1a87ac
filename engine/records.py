"""Market-event records: the engine's one dtypes module.

Events travel as numpy structured arrays, never as Python objects per level or per trade.
Prices are int64 ticks, quantities int64 lots, timestamps int64 UNIX nanoseconds; the
conversion from a venue's decimals lives at the venue edge
(``engine/execution/instruments.py``). Later issues add record types here, next to these.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

BID: Final = 1
"""``side`` of a bid level, and of a trade whose aggressor bought."""
ASK: Final = -1
"""``side`` of an ask level, and of a trade whose aggressor sold."""

BOOK_LEVEL: Final = np.dtype(
    [
        ("ts_ns", np.int64),  # venue event time
        ("symbol_id", np.int32),
        ("side", np.int8),  # BID or ASK
        ("price_ticks", np.int64),
        ("qty_lots", np.int64),  # 0 removes the level
        ("update_id", np.int64),  # venue sequence (Binance u); one batch shares one id
    ]
)
"""One price level of an L2 book update."""

TRADE: Final = np.dtype(
    [
        ("ts_ns", np.int64),  # venue trade time
        ("symbol_id", np.int32),
        ("side", np.int8),  # aggressor: BID bought, ASK sold
        ("price_ticks", np.int64),
        ("qty_lots", np.int64),
        ("trade_id", np.int64),  # venue trade id, consecutive per symbol on Binance
    ]
)
"""One public trade."""

BookLevels = npt.NDArray[np.void]
"""An array of :data:`BOOK_LEVEL` records."""
Trades = npt.NDArray[np.void]
"""An array of :data:`TRADE` records."""


def empty_book_levels(count: int = 0) -> BookLevels:
    """Return ``count`` zeroed book-level records."""
    return np.zeros(count, dtype=BOOK_LEVEL)


def empty_trades(count: int = 0) -> Trades:
    """Return ``count`` zeroed trade records."""
    return np.zeros(count, dtype=TRADE)
