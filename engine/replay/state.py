"""All arrays of one engine run, allocated once; the replay kernel only writes into them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.dtypes import FILL_DTYPE, INTENT_DTYPE, TRADING_STATE_NAMES, empty_positions
from engine.kernels.book_nb import BOOK_CODE_NAMES, new_book
from engine.kernels.layout import (
    G_BOOK_CODE_BASE,
    G_CANCELS,
    G_COLUMNS,
    G_DENY_BASE,
    G_EVENTS,
    G_FILLS,
    G_INTENTS,
    G_LATENCY_ARB,
    G_MARKOUTS,
    G_ORDERS,
    G_STOPS,
    G_TAKER_ORDERS,
    G_TRADING_STATE,
    GF_COLUMNS,
    GF_EQUITY,
    GF_MAX_DRAWDOWN,
    GF_TOKENS,
    MK_COLUMNS,
    N_FEATURES,
    SF_ADVERSE,
    SF_COLUMNS,
)
from engine.kernels.replay_nb import replay_chunk
from engine.kernels.risk_nb import DENY_REASON_NAMES
from engine.models.artifact import ModelWeights
from engine.replay.config import ReplayConfig


@dataclass(kw_only=True)
class EngineState:
    """Caller-owned buffers of the replay kernel (see ``engine.kernels.layout``)."""

    symbols: tuple[str, ...]
    book: np.ndarray
    sym_i: np.ndarray
    sym_f: np.ndarray
    features: np.ndarray
    positions: np.ndarray
    g: np.ndarray
    gf: np.ndarray
    limits: np.ndarray
    corr: np.ndarray
    params: np.ndarray
    model_kind: int
    mv: np.ndarray
    w1: np.ndarray
    scratch: np.ndarray
    ring: np.ndarray
    fills: np.ndarray
    intents: np.ndarray

    @classmethod
    def create(
        cls,
        *,
        symbols: tuple[str, ...],
        tick_size: tuple[float, ...],
        lot_size: tuple[float, ...],
        config: ReplayConfig,
        weights: ModelWeights,
        fill_capacity: int = 0,
        intent_capacity: int = 0,
    ) -> EngineState:
        """Allocate every buffer for these symbols; logs keep the first N fills/intents."""
        n = len(symbols)
        book, sym_i = new_book(n, config.book_depth)
        kind, mv, w1, scratch = weights.kernel_arrays()
        gf = np.zeros(GF_COLUMNS, dtype=np.float64)
        gf[GF_TOKENS] = config.risk.order_burst
        return cls(
            symbols=symbols,
            book=book,
            sym_i=sym_i,
            sym_f=np.zeros((n, SF_COLUMNS), dtype=np.float64),
            features=np.zeros((n, N_FEATURES), dtype=np.float64),
            positions=empty_positions(n),
            g=np.zeros(G_COLUMNS, dtype=np.int64),
            gf=gf,
            limits=config.limits(tick_size, lot_size),
            corr=config.correlation(n),
            params=config.params(),
            model_kind=kind,
            mv=mv,
            w1=w1,
            scratch=scratch,
            ring=np.zeros((config.markout_capacity, MK_COLUMNS), dtype=np.int64),
            fills=np.zeros(fill_capacity, dtype=FILL_DTYPE),
            intents=np.zeros(intent_capacity, dtype=INTENT_DTYPE),
        )

    def kernel_args(self) -> tuple[Any, ...]:
        """Return the state arguments of ``replay_chunk`` after ``events, lo, hi``."""
        return (
            self.book, self.sym_i, self.sym_f, self.features, self.positions, self.g,
            self.gf, self.limits, self.corr, self.params, self.model_kind, self.mv,
            self.w1, self.scratch, self.ring, self.fills, self.intents,
        )  # fmt: skip

    def run(self, events: np.ndarray, lo: int = 0, hi: int | None = None) -> int:
        """Process ``events[lo:hi]`` with the compiled kernel; return the count."""
        end = events.shape[0] if hi is None else hi
        return int(replay_chunk(events, lo, end, *self.kernel_args()))

    def logged_fills(self) -> np.ndarray:
        """Return the fills that fit in the log."""
        return self.fills[: min(int(self.g[G_FILLS]), self.fills.shape[0])]

    def logged_intents(self) -> np.ndarray:
        """Return the intents that fit in the log."""
        return self.intents[: min(int(self.g[G_INTENTS]), self.intents.shape[0])]

    def summary(self) -> dict[str, Any]:
        """Return the run's results as a JSON-ready dict."""
        g = self.g
        denials = {
            DENY_REASON_NAMES[i]: int(g[G_DENY_BASE + i])
            for i in range(1, len(DENY_REASON_NAMES))
            if g[G_DENY_BASE + i]
        }
        book_codes = {
            BOOK_CODE_NAMES[i]: int(g[G_BOOK_CODE_BASE + i])
            for i in range(1, len(BOOK_CODE_NAMES))
            if g[G_BOOK_CODE_BASE + i]
        }
        p = self.positions
        per_symbol = {
            name: {
                "position_lots": int(p[i]["qty"]),
                "fills": int(p[i]["fills"]),
                "volume_lots": int(p[i]["volume"]),
                "fees": round(float(p[i]["fees"]), 6),
                "adverse_score_ticks": round(float(self.sym_f[i, SF_ADVERSE]), 6),
            }
            for i, name in enumerate(self.symbols)
        }
        return {
            "events": int(g[G_EVENTS]),
            "pnl": round(float(self.gf[GF_EQUITY]), 6),
            "fees": round(float(np.sum(p["fees"])), 6),
            "orders": int(g[G_ORDERS]),
            "taker_orders": int(g[G_TAKER_ORDERS]),
            "intents": int(g[G_INTENTS]),
            "cancels": int(g[G_CANCELS]),
            "fills": int(g[G_FILLS]),
            "denials": denials,
            "max_drawdown": round(float(self.gf[GF_MAX_DRAWDOWN]), 6),
            "trading_state": TRADING_STATE_NAMES[int(g[G_TRADING_STATE])],
            "stops": int(g[G_STOPS]),
            "latency_arb_fills": int(g[G_LATENCY_ARB]),
            "markouts": int(g[G_MARKOUTS]),
            "book_integrity": book_codes,
            "symbols": per_symbol,
        }
