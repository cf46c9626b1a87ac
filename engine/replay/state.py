"""All arrays of one engine run, allocated once; the replay kernel only writes into them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.dtypes import FILL_DTYPE, INTENT_DTYPE, POSITION_DTYPE, TRADING_STATE_NAMES
from engine.kernels.book_nb import BOOK_CODE_NAMES
from engine.kernels.layout import (
    BOOK_ROWS,
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
    MK_COLUMNS,
    MV_ROWS,
    N_FEATURES,
    PK_DEPTH,
    PK_FILL_CAPACITY,
    PK_HIDDEN,
    PK_INTENT_CAPACITY,
    PK_MODEL_KIND,
    PK_RING,
    PK_SYMBOLS,
    PK_WIDTH,
    SF_ADVERSE,
    SF_COLUMNS,
    SI_COLUMNS,
)
from engine.kernels.replay_nb import arena_offsets, packed_offsets, replay_packed
from engine.kernels.risk_nb import DENY_REASON_NAMES, RL_COLUMNS
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
    ibuf: np.ndarray
    """Every int64 array above, packed (``PK_*`` in ``engine.kernels.layout``)."""
    fbuf: np.ndarray
    """Every float64 array above, packed."""
    arena: np.ndarray
    """All of the above in one byte buffer (``replay_packed``'s single state argument)."""

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
        _, o_floats, o_positions, o_fills, o_intents, end = arena_offsets(
            n, depth, cap, hidden, width, fill_capacity, intent_capacity
        )
        arena = np.zeros(end, dtype=np.uint8)
        ibuf = arena[0:o_floats].view(np.int64)
        ibuf[PK_SYMBOLS], ibuf[PK_DEPTH], ibuf[PK_RING] = n, depth, cap
        ibuf[PK_HIDDEN], ibuf[PK_WIDTH], ibuf[PK_MODEL_KIND] = hidden, width, kind
        ibuf[PK_FILL_CAPACITY], ibuf[PK_INTENT_CAPACITY] = fill_capacity, intent_capacity
        fbuf = arena[o_floats:o_positions].view(np.float64)
        # every array below is a view into ibuf / fbuf: change them in place, never rebind
        gf = fbuf[o_gf:o_limits]
        gf[GF_TOKENS] = config.risk.order_burst
        limits = fbuf[o_limits:o_corr].reshape(n, RL_COLUMNS)
        limits[:] = config.limits(tick_size, lot_size)
        corr = fbuf[o_corr:o_params].reshape(n, n)
        corr[:] = config.correlation(n)
        params = fbuf[o_params:o_mv]
        params[:] = config.params()
        mv_view = fbuf[o_mv:o_w1].reshape(MV_ROWS, width)
        mv_view[:] = mv
        w1_view = fbuf[o_w1:o_scratch].reshape(hidden, N_FEATURES)
        w1_view[:] = w1
        return cls(
            symbols=symbols,
            book=ibuf[o_book:o_sym_i].reshape(n, BOOK_ROWS, depth),
            sym_i=ibuf[o_sym_i:o_g].reshape(n, SI_COLUMNS),
            sym_f=fbuf[o_sym_f:o_features].reshape(n, SF_COLUMNS),
            features=fbuf[o_features:o_gf].reshape(n, N_FEATURES),
            positions=arena[o_positions:o_fills].view(POSITION_DTYPE),
            g=ibuf[o_g:o_ring],
            gf=gf,
            limits=limits,
            corr=corr,
            params=params,
            model_kind=kind,
            mv=mv_view,
            w1=w1_view,
            scratch=fbuf[o_scratch:f_end],
            ring=ibuf[o_ring:i_end].reshape(cap, MK_COLUMNS),
            fills=arena[o_fills:o_intents].view(FILL_DTYPE),
            intents=arena[o_intents:end].view(INTENT_DTYPE),
            ibuf=ibuf,
            fbuf=fbuf,
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
