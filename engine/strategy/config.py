"""The market maker's parameters: a frozen config a release manifest can set.

The decision itself is the numba kernel :func:`engine.kernels.quote_nb.quote_symbol`; this
module only turns the config into the kernel's parameter vector.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from engine.kernels.layout import (
    P_ADVERSE_MULT,
    P_ADVERSE_PULL,
    P_BASE_HALF_SPREAD,
    P_EWMA_ALPHA,
    P_FLOW_ALPHA,
    P_IMBALANCE_LEVELS,
    P_INVENTORY_SKEW,
    P_MAKER_FILL_PROB,
    P_MIN_HALF_SPREAD,
    P_MIN_TAKER_EDGE,
    P_PREDICTION_WEIGHT,
    P_QUOTE_QTY,
    P_REQUOTE_TICKS,
    P_RETRY_NS,
    P_TAKER_COOLDOWN_NS,
    P_TAKER_ENABLED,
    P_TAKER_QTY,
    P_VOL_MULT,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketMakerConfig:
    """Quoting parameters. Prices in ticks, sizes in lots, times in nanoseconds."""

    quote_lots: int = 5
    min_half_spread_ticks: float = 0.5
    base_half_spread_ticks: float = 0.5
    volatility_multiplier: float = 1.0
    adverse_multiplier: float = 1.0
    adverse_pull_ticks: float = 5.0
    inventory_skew_ticks: float = 2.0  # fair value shift at the position limit
    prediction_weight: float = 1.0
    requote_ticks: int = 1
    retry_after_deny_ns: int = 50_000_000
    taker_enabled: bool = True
    taker_lots: int = 2
    taker_cooldown_ns: int = 200_000_000
    maker_fill_probability: float = 0.3
    min_taker_edge_ticks: float = 0.5
    imbalance_levels: int = 5
    ewma_alpha: float = 0.05
    flow_alpha: float = 0.1

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ValueError: names the field and its allowed range.
        """
        positive = ("quote_lots", "requote_ticks", "imbalance_levels")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ewma_alpha", "flow_alpha", "maker_fill_probability"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> MarketMakerConfig:
        """Build from a release manifest's ``strategy`` section.

        Raises:
            ValueError: an unknown key or a value out of range.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown strategy parameters {unknown}; known: {sorted(known)}")
        return cls(**values)

    def write_params(self, params: np.ndarray) -> None:
        """Write this config into the kernel parameter vector."""
        params[P_QUOTE_QTY] = self.quote_lots
        params[P_MIN_HALF_SPREAD] = self.min_half_spread_ticks
        params[P_BASE_HALF_SPREAD] = self.base_half_spread_ticks
        params[P_VOL_MULT] = self.volatility_multiplier
        params[P_ADVERSE_MULT] = self.adverse_multiplier
        params[P_ADVERSE_PULL] = self.adverse_pull_ticks
        params[P_INVENTORY_SKEW] = self.inventory_skew_ticks
        params[P_PREDICTION_WEIGHT] = self.prediction_weight
        params[P_REQUOTE_TICKS] = self.requote_ticks
        params[P_RETRY_NS] = self.retry_after_deny_ns
        params[P_TAKER_ENABLED] = 1.0 if self.taker_enabled else 0.0
        params[P_TAKER_QTY] = self.taker_lots
        params[P_TAKER_COOLDOWN_NS] = self.taker_cooldown_ns
        params[P_MAKER_FILL_PROB] = self.maker_fill_probability
        params[P_MIN_TAKER_EDGE] = self.min_taker_edge_ticks
        params[P_IMBALANCE_LEVELS] = self.imbalance_levels
        params[P_EWMA_ALPHA] = self.ewma_alpha
        params[P_FLOW_ALPHA] = self.flow_alpha
