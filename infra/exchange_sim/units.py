"""Conversions between the API's decimal strings and the engine's ticks, lots and units.

This is the Decimal edge: requests are parsed here into integers (refusing what the
symbol's filters refuse) and integers are formatted back into Binance's strings.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from infra.exchange_sim.config import ASSET_UNIT, SymbolSpec
from infra.exchange_sim.errors import FilterError, illegal
from infra.exchange_sim.models import OrderType


def parse_decimal(name: str, text: str) -> Decimal:
    """Parse a positive finite decimal parameter.

    Raises:
        BadRequestError: not a plain positive number (-1100).
    """
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise illegal(name, "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
    if not value.is_finite() or value <= 0 or len(text) > 40:
        raise illegal(name, "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    return value


def units_to_str(units: int) -> str:
    """Format asset units with eight decimals, as Binance does."""
    return f"{Decimal(units) * ASSET_UNIT:.8f}"


def str_to_units(value: Decimal) -> int:
    """Convert a decimal amount of an asset to whole units (truncating dust)."""
    return int(value / ASSET_UNIT)


class Market:
    """A symbol's spec with its integer scales and filters."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.base_per_lot = spec.base_units_per_lot
        self.quote_per_tick_lot = spec.quote_units_per_tick_lot
        self.min_ticks = int(spec.min_price / spec.tick_size)
        self.max_ticks = int(spec.max_price / spec.tick_size)
        self.min_lots = int(spec.min_qty / spec.step_size)
        self.max_lots = int(spec.max_qty / spec.step_size)
        self.min_notional_units = int(spec.min_notional / ASSET_UNIT)

    def ticks(self, price: Decimal) -> int:
        """Return ``price`` in ticks.

        Raises:
            FilterError: not a whole number of ticks (PRICE_FILTER).
        """
        ticks = price / self.spec.tick_size
        if ticks != ticks.to_integral_value():
            raise FilterError("Filter failure: PRICE_FILTER")
        return int(ticks)

    def lots(self, qty: Decimal) -> int:
        """Return ``qty`` in lots.

        Raises:
            FilterError: not a whole number of lots (LOT_SIZE).
        """
        lots = qty / self.spec.step_size
        if lots != lots.to_integral_value():
            raise FilterError("Filter failure: LOT_SIZE")
        return int(lots)

    def check_filters(self, order_type: OrderType, price: int, qty: int, best: int | None) -> None:
        """Enforce PRICE_FILTER, LOT_SIZE and NOTIONAL on integer price and quantity.

        Raises:
            FilterError: the first filter the order breaks (-1013).
        """
        if not self.min_lots <= qty <= self.max_lots:
            raise FilterError("Filter failure: LOT_SIZE")
        reference = best
        if order_type is not OrderType.MARKET:
            if not self.min_ticks <= price <= self.max_ticks:
                raise FilterError("Filter failure: PRICE_FILTER")
            reference = price
        # Market orders are checked against the price they would trade at first.
        if reference is not None and reference * qty * self.quote_per_tick_lot < (
            self.min_notional_units
        ):
            raise FilterError("Filter failure: NOTIONAL")

    def price_str(self, ticks: int) -> str:
        """Format ticks as a price with the symbol's precision."""
        return f"{Decimal(ticks) * self.spec.tick_size:.8f}"

    def qty_str(self, lots: int) -> str:
        """Format lots as a quantity with eight decimals."""
        return f"{Decimal(lots) * self.spec.step_size:.8f}"

    def quote_str(self, units: int) -> str:
        """Format quote units."""
        return units_to_str(units)
