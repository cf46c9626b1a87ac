"""All arrays of one engine run, allocated once; the replay kernel only writes into them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.dtypes import TRADING_STATE_NAMES
from engine.kernels._jit import py_func
from engine.kernels.book_nb import BOOK_CODE_NAMES
from engine.kernels.layout import (
    G_BOOK_CODE_BASE,
    G_CANCELS,
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
    GF_EQUITY,
    GF_MAX_DRAWDOWN,
    GF_TOKENS,
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
)
from engine.kernels.replay_nb import arena_offsets, arena_views, replay_packed
from engine.kernels.risk_nb import DENY_REASON_NAMES
from engine.models.artifact import ModelWeights
from engine.replay.config import ReplayConfig


@dataclass(kw_only=True)
class EngineState:
    """Caller-owned buffers of the replay kernel (see ``engine.kernels.layout``).

    Every array is a view into one byte ``arena`` (int64 words, float64 words, then the
    record arrays), so one event can be decided from Python with four arguments
    (``replay_packed``). Change the arrays in place; never rebind them.
    """

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
    arena: np.ndarray
    """All of the above in one byte buffer (``PK_*`` header first; ``replay_packed``'s
    single state argument)."""

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
        depth = config.book_depth
        cap = config.markout_capacity
        kind, mv, w1, _ = weights.kernel_arrays()
        hidden, width = w1.shape[0], mv.shape[1]
        *_, end = arena_offsets(n, depth, cap, hidden, width, fill_capacity, intent_capacity)
        arena = np.zeros(end, dtype=np.uint8)
        header = arena[0 : PK_HEADER * 8].view(np.int64)
        header[PK_SYMBOLS], header[PK_DEPTH], header[PK_RING] = n, depth, cap
        header[PK_HIDDEN], header[PK_WIDTH], header[PK_MODEL_KIND] = hidden, width, kind
        header[PK_FILL_CAPACITY], header[PK_INTENT_CAPACITY] = fill_capacity, intent_capacity
        # the kernel's own carving, run by NumPy: every array is a view into the arena
        (book, sym_i, sym_f, features, positions, g, gf, limits, corr, params, model_kind,
         mv_view, w1_view, scratch, ring, fills, intents) = py_func(arena_views)(arena)  # fmt: skip
        gf[GF_TOKENS] = config.risk.order_burst
        limits[:] = config.limits(tick_size, lot_size)
        corr[:] = config.correlation(n)
        params[:] = config.params()
        mv_view[:] = mv
        w1_view[:] = w1
        return cls(
            symbols=symbols,
            book=book,
            sym_i=sym_i,
            sym_f=sym_f,
            features=features,
            positions=positions,
            g=g,
            gf=gf,
            limits=limits,
            corr=corr,
            params=params,
            model_kind=model_kind,
            mv=mv_view,
            w1=w1_view,
            scratch=scratch,
            ring=ring,
            fills=fills,
            intents=intents,
            arena=arena,
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
        return int(replay_packed(events.view(np.uint8), lo, end, self.arena))

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
