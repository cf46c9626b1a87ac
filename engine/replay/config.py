"""Replay configuration: venue fees and fill model, post-trade controls and risk limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.kernels.layout import (
    P_ADVERSE_ALPHA,
    P_ADVERSE_DECAY,
    P_COLUMNS,
    P_HALT_DRAWDOWN,
    P_LATENCY_ARB_MOVE_TICKS,
    P_LATENCY_ARB_PENALTY,
    P_LATENCY_ARB_WINDOW_NS,
    P_LATENCY_NS,
    P_MAKER_FEE_BPS,
    P_MARKOUT_NS,
    P_MAX_EXPOSURE,
    P_ORDER_BURST,
    P_ORDERS_PER_S,
    P_REDUCE_DRAWDOWN,
    P_STALE_NS,
    P_STOP_COOLDOWN_NS,
    P_STOP_SLIPPAGE_TICKS,
    P_STOP_TICKS,
    P_TAKER_FEE_BPS,
)
from engine.kernels.risk_nb import (
    RL_COLUMNS,
    RL_MAX_DEPTH_FRACTION,
    RL_MAX_ORDER_NOTIONAL,
    RL_MAX_POSITION,
    RL_MAX_SYMBOL_NOTIONAL,
    RL_MULTIPLIER,
    RL_PRICE_BAND_BPS,
)
from engine.strategy.config import MarketMakerConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class FillModelConfig:
    """Venue fees (bps of notional; negative = rebate) and the simulated order latency."""

    maker_fee_bps: float = 0.0
    taker_fee_bps: float = 4.0
    order_latency_ns: int = 1_000_000
    stale_after_ns: int = 5_000_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class PostTradeConfig:
    """Markouts, latency-arbitrage monitor, stop-loss and drawdown switch."""

    markout_horizon_ns: int = 1_000_000_000
    adverse_alpha: float = 0.1
    adverse_decay_per_event: float = 0.999
    latency_arb_window_ns: int = 2_000_000
    latency_arb_move_ticks: float = 1.0
    latency_arb_penalty_ticks: float = 0.5
    stop_loss_ticks: float = 50.0
    stop_cooldown_ns: int = 5_000_000_000
    stop_slippage_ticks: int = 5
    reducing_drawdown: float = 5_000.0  # quote currency
    halt_drawdown: float = 10_000.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskConfig:
    """Pre-trade limits, the same for every symbol; notionals in quote currency."""

    max_order_notional: float = 5_000.0
    max_symbol_notional: float = 50_000.0
    max_position_lots: int = 500
    price_band_bps: float = 50.0
    max_depth_fraction: float = 0.5
    max_portfolio_exposure: float = 100_000.0
    orders_per_second: float = 200.0
    order_burst: float = 50.0
    correlation: float = 0.7  # between every pair of symbols (1 on the diagonal)

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ValueError: names the field and its allowed range.
        """
        if not -1.0 <= self.correlation <= 1.0:
            raise ValueError(f"correlation must be in [-1, 1], got {self.correlation}")
        for name in ("max_order_notional", "max_symbol_notional", "max_position_lots",
                     "price_band_bps", "max_depth_fraction", "max_portfolio_exposure",
                     "orders_per_second", "order_burst"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayConfig:
    """Everything a replay needs besides the event file and the model."""

    strategy: MarketMakerConfig = field(default_factory=MarketMakerConfig)
    fills: FillModelConfig = field(default_factory=FillModelConfig)
    post_trade: PostTradeConfig = field(default_factory=PostTradeConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    book_depth: int = 16
    markout_capacity: int = 4096

    def params(self) -> np.ndarray:
        """Return the kernel parameter vector."""
        p = np.zeros(P_COLUMNS, dtype=np.float64)
        self.strategy.write_params(p)
        f, t, r = self.fills, self.post_trade, self.risk
        p[P_MAKER_FEE_BPS] = f.maker_fee_bps
        p[P_TAKER_FEE_BPS] = f.taker_fee_bps
        p[P_LATENCY_NS] = f.order_latency_ns
        p[P_STALE_NS] = f.stale_after_ns
        p[P_MARKOUT_NS] = t.markout_horizon_ns
        p[P_ADVERSE_ALPHA] = t.adverse_alpha
        p[P_ADVERSE_DECAY] = t.adverse_decay_per_event
        p[P_LATENCY_ARB_WINDOW_NS] = t.latency_arb_window_ns
        p[P_LATENCY_ARB_MOVE_TICKS] = t.latency_arb_move_ticks
        p[P_LATENCY_ARB_PENALTY] = t.latency_arb_penalty_ticks
        p[P_STOP_TICKS] = t.stop_loss_ticks
        p[P_STOP_COOLDOWN_NS] = t.stop_cooldown_ns
        p[P_STOP_SLIPPAGE_TICKS] = t.stop_slippage_ticks
        p[P_REDUCE_DRAWDOWN] = t.reducing_drawdown
        p[P_HALT_DRAWDOWN] = t.halt_drawdown
        p[P_MAX_EXPOSURE] = r.max_portfolio_exposure
        p[P_ORDERS_PER_S] = r.orders_per_second
        p[P_ORDER_BURST] = r.order_burst
        return p

    def limits(self, tick_size: tuple[float, ...], lot_size: tuple[float, ...]) -> np.ndarray:
        """Return the per-symbol limit rows for symbols of these sizes."""
        r = self.risk
        out = np.zeros((len(tick_size), RL_COLUMNS), dtype=np.float64)
        for i, (tick, lot) in enumerate(zip(tick_size, lot_size, strict=True)):
            out[i, RL_MULTIPLIER] = tick * lot
            out[i, RL_MAX_ORDER_NOTIONAL] = r.max_order_notional
            out[i, RL_MAX_SYMBOL_NOTIONAL] = r.max_symbol_notional
            out[i, RL_MAX_POSITION] = r.max_position_lots
            out[i, RL_PRICE_BAND_BPS] = r.price_band_bps
            out[i, RL_MAX_DEPTH_FRACTION] = r.max_depth_fraction
        return out

    def correlation(self, symbols: int) -> np.ndarray:
        """Return the symbols' correlation matrix."""
        corr = np.full((symbols, symbols), self.risk.correlation, dtype=np.float64)
        np.fill_diagonal(corr, 1.0)
        return corr
