"""Write a realistic synthetic event file: several correlated symbols, L2 deltas and trades."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from engine.data.format import EventHeader
from engine.data.writer import EventWriter
from engine.dtypes import EVENT_DTYPE
from engine.kernels.layout import BOOK_ROWS
from engine.kernels.synth_nb import (
    GG_COLUMNS,
    GG_DEPTH,
    GG_FACTOR_VOL,
    GG_MEAN_DT_NS,
    GG_MEAN_QTY,
    GG_TRADE_PROB,
    GS_BASE,
    GS_BETA,
    GS_COLUMNS,
    GS_VOL,
    synth_fill,
)

CHUNK_EVENTS: Final = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticSymbol:
    """One generated symbol: price in quote currency, sizes, and its market beta."""

    name: str
    price: float
    tick_size: float
    lot_size: float
    beta: float = 1.0
    own_volatility: float = 2e-6  # relative, per generated event of the symbol


DEFAULT_SYMBOLS: Final = (
    SyntheticSymbol(name="BTC-USDT", price=60_000.0, tick_size=0.1, lot_size=0.001, beta=1.0),
    SyntheticSymbol(name="ETH-USDT", price=3_000.0, tick_size=0.01, lot_size=0.02, beta=1.3),
    SyntheticSymbol(name="SOL-USDT", price=150.0, tick_size=0.001, lot_size=0.5, beta=1.6),
    SyntheticSymbol(name="XRP-USDT", price=0.6, tick_size=0.0001, lot_size=100.0, beta=1.2),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticMarket:
    """Parameters of the synthetic stream."""

    symbols: tuple[SyntheticSymbol, ...] = field(default=DEFAULT_SYMBOLS)
    factor_volatility: float = 1.5e-6  # relative, per event, shared by all symbols
    mean_gap_ns: float = 50_000.0
    trade_probability: float = 0.15
    mean_lots: float = 20.0
    depth: int = 10


def generate(
    path: Path,
    *,
    events: int,
    seed: int,
    market: SyntheticMarket | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EventHeader:
    """Write ``events`` synthetic events to ``path`` (and its header); return the header.

    The same ``seed`` and market always give the same file.

    Raises:
        ValueError: ``events`` is not positive or ``seed`` is negative.
    """
    if events <= 0:
        raise ValueError(f"events must be > 0, got {events}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    market = market or SyntheticMarket()
    n = len(market.symbols)
    header = EventHeader(
        symbols=tuple(s.name for s in market.symbols),
        tick_size=tuple(s.tick_size for s in market.symbols),
        lot_size=tuple(s.lot_size for s in market.symbols),
    )
    gs = np.zeros((n, GS_COLUMNS), dtype=np.float64)
    for i, spec in enumerate(market.symbols):
        gs[i, GS_BASE] = spec.price / spec.tick_size
        gs[i, GS_BETA] = spec.beta
        gs[i, GS_VOL] = spec.own_volatility
    gg = np.zeros(GG_COLUMNS, dtype=np.float64)
    gg[GG_FACTOR_VOL] = market.factor_volatility
    gg[GG_MEAN_DT_NS] = market.mean_gap_ns
    gg[GG_TRADE_PROB] = market.trade_probability
    gg[GG_MEAN_QTY] = market.mean_lots
    gg[GG_DEPTH] = market.depth
    book = np.zeros((n, BOOK_ROWS, market.depth + 1), dtype=np.int64)
    rng = np.array([np.uint64(seed) * np.uint64(2654435761) + np.uint64(88172645463325252)])
    rng[0] = rng[0] if rng[0] != 0 else np.uint64(1)
    buffer = np.zeros(min(events, CHUNK_EVENTS) + 4 * market.depth + 8, dtype=EVENT_DTYPE)
    written = 0
    with EventWriter(path, header) as writer:
        while written < events:
            produced = synth_fill(buffer, gs, gg, book, rng)
            take = min(produced, events - written)
            writer.append(buffer[:take])
            written += take
            if progress is not None:
                progress(written, events)
    return EventHeader(
        symbols=header.symbols, tick_size=header.tick_size, lot_size=header.lot_size, count=events
    )
