"""The engine's records: events in, intents out, fills and positions.

Every price is an int64 count of ticks, every quantity an int64 count of lots, every time an
int64 count of UNIX nanoseconds. Records are numpy structured dtypes so kernels read and write
them in place; nothing here is a Python object per event.

Event kinds (``kind``):

- ``BOOK_DELTA``: the level ``price`` on ``side`` now holds ``qty`` lots (0 removes it).
- ``TRADE``: ``qty`` lots traded at ``price``; ``side`` is the aggressor (BUY lifted the ask).
- ``SNAPSHOT_BEGIN`` / ``SNAPSHOT_END``: the deltas between them rebuild the symbol's book
  from empty; ``SNAPSHOT_BEGIN`` resets the sequence to its own ``seq``.

``seq`` is a per-symbol sequence number that increases by exactly one per event of that
symbol; a jump is a gap.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

# --- event kinds and sides -------------------------------------------------------------------
BOOK_DELTA: Final = 0
TRADE: Final = 1
SNAPSHOT_BEGIN: Final = 2
SNAPSHOT_END: Final = 3
EVENT_KIND_NAMES: Final = ("book_delta", "trade", "snapshot_begin", "snapshot_end")

BUY: Final = 1
SELL: Final = -1
NO_SIDE: Final = 0

# --- trading states (only ever lowered by the engine; raised by an operator) -----------------
ACTIVE: Final = 0
REDUCING: Final = 1
HALTED: Final = 2
TRADING_STATE_NAMES: Final = ("ACTIVE", "REDUCING", "HALTED")

# --- order types of an intent ----------------------------------------------------------------
ORDER_LIMIT_POST_ONLY: Final = 0  # passive quote (maker)
ORDER_IOC: Final = 1  # aggressive, immediate-or-cancel (taker)

LIQUIDITY_MAKER: Final = 0
LIQUIDITY_TAKER: Final = 1

EVENT_DTYPE: Final = np.dtype(
    [
        ("ts_ns", "<i8"),
        ("seq", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("symbol", "<i4"),
        ("kind", "i1"),
        ("side", "i1"),
        ("flags", "<i2"),
    ]
)
"""One market event, 40 bytes, little-endian, unaligned-safe (all fields naturally aligned)."""

INTENT_DTYPE: Final = np.dtype(
    [
        ("ts_ns", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("symbol", "<i4"),
        ("side", "i1"),
        ("order_type", "i1"),
        ("deny_reason", "<i2"),  # 0 = accepted; see engine.kernels.risk_nb
    ]
)
"""One order the strategy wanted to send, with the risk verdict."""

FILL_DTYPE: Final = np.dtype(
    [
        ("ts_ns", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("fee", "<f8"),  # quote currency, positive = paid
        ("symbol", "<i4"),
        ("side", "i1"),
        ("liquidity", "i1"),  # LIQUIDITY_MAKER / LIQUIDITY_TAKER
        ("flags", "<i2"),  # FILL_FLAG_* bits
    ]
)
"""One execution of one of our orders."""

FILL_FLAG_LATENCY_ARB: Final = 1
"""The fill came right after an adverse reference move (we were picked off)."""

POSITION_DTYPE: Final = np.dtype(
    [
        ("qty", "<i8"),  # signed lots
        ("avg_price", "<f8"),  # ticks: average entry price of the open position
        ("cash", "<f8"),  # quote currency, includes fees
        ("fees", "<f8"),
        ("volume", "<i8"),  # lots traded
        ("fills", "<i8"),
    ]
)
"""The position in one symbol; ``equity = cash + qty * mid * multiplier``."""


def empty_events(count: int) -> np.ndarray:
    """Return a zeroed event buffer of ``count`` rows."""
    return np.zeros(count, dtype=EVENT_DTYPE)


def empty_positions(symbols: int) -> np.ndarray:
    """Return a flat position per symbol."""
    return np.zeros(symbols, dtype=POSITION_DTYPE)


# --- venue-edge records: what the exchange adapter hands the engine -----------------------
# Converted from the venue's decimals at the edge (engine/execution/instruments.py).
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

PUBLIC_TRADE: Final = np.dtype(
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
"""An array of :data:`PUBLIC_TRADE` records."""


def empty_book_levels(count: int = 0) -> BookLevels:
    """Return ``count`` zeroed book-level records."""
    return np.zeros(count, dtype=BOOK_LEVEL)


def empty_trades(count: int = 0) -> Trades:
    """Return ``count`` zeroed trade records."""
    return np.zeros(count, dtype=PUBLIC_TRADE)
