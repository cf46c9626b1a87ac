"""Instruments and the conversion of venue decimals to integer ticks and lots.

The engine counts prices in ticks and quantities in lots (int64). The venue speaks decimals
(strings on the wire; ccxt hands them over as floats). Conversion is exact or it fails:
a value that is not an integral multiple of the step raises :class:`OffGridError`, it is
never rounded silently, because an off-grid value means wrong precision metadata or
corrupt data, and trading on either is worse than stopping.

Two paths:

* :func:`to_units` / :func:`from_units`: exact, with :class:`~decimal.Decimal` (orders,
  fills, balances: the journal and the venue edge).
* floats, for market data: a float parsed from a decimal string is the nearest double, so
  ``value / step`` lands within a few ulps of an integer when the decimal was on the
  grid; anything further than :data:`FLOAT_GRID_TOLERANCE` of a unit from an integer is
  off the grid. The feeds convert whole messages with the kernels of
  :mod:`engine.kernels.market_nb` (``trade_records``, ``book_records``) and name a refused
  value with :func:`off_grid_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from engine.errors import OffGridError
from engine.kernels.market_nb import GRID_TOLERANCE

FLOAT_GRID_TOLERANCE: Final = GRID_TOLERANCE
"""Distance, in units, between ``value / step`` and an integer still on the grid (small
values; large ones get a tolerance relative to their magnitude)."""

# ccxt's precision modes (ccxt.base.decimal_to_precision); the adapter does not import
# them from ccxt here so this module stays usable without a venue.
DECIMAL_PLACES: Final = 2
SIGNIFICANT_DIGITS: Final = 3
TICK_SIZE: Final = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class Instrument:
    """A tradable market with the grid its prices and quantities live on.

    Attributes:
        symbol: unified ccxt symbol, e.g. ``BTC/USDT``.
        symbol_id: the engine's int32 id of the symbol (index in the configured list).
        market_id: the venue's id, e.g. ``BTCUSDT``.
        tick_size: price step.
        lot_size: quantity step.
    """

    symbol: str
    symbol_id: int
    market_id: str
    tick_size: Decimal
    lot_size: Decimal
    # the steps as floats, for the market-data kernels (converted once, not per message)
    tick_float: float = field(init=False, repr=False, compare=False)
    lot_float: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError(
                f"{self.symbol}: tick_size and lot_size must be > 0"
                f" (got {self.tick_size}, {self.lot_size})"
            )
        object.__setattr__(self, "tick_float", float(self.tick_size))
        object.__setattr__(self, "lot_float", float(self.lot_size))

    def price_to_ticks(self, price: Decimal | str) -> int:
        """Return ``price`` in ticks. Raises OffGridError when off the tick grid."""
        return to_units(price, self.tick_size, field=f"{self.symbol} price")

    def qty_to_lots(self, qty: Decimal | str) -> int:
        """Return ``qty`` in lots. Raises OffGridError when off the lot grid."""
        return to_units(qty, self.lot_size, field=f"{self.symbol} quantity")

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Return the decimal price of ``ticks``."""
        return from_units(ticks, self.tick_size)

    def lots_to_qty(self, lots: int) -> Decimal:
        """Return the decimal quantity of ``lots``."""
        return from_units(lots, self.lot_size)


def _step(precision: object, mode: int, *, field: str) -> Decimal:
    if precision is None:
        raise ValueError(f"{field}: the venue gave no precision")
    if mode == TICK_SIZE:
        # repr of a float is the shortest string that reads back to it: 0.01 -> "0.01"
        step = Decimal(repr(precision)) if isinstance(precision, float) else Decimal(str(precision))
    elif mode == DECIMAL_PLACES:
        step = Decimal(1).scaleb(-int(str(precision).split(".")[0]))
    else:
        raise ValueError(f"{field}: precision mode {mode} cannot define a grid")
    return step.normalize()


def instrument_from_market(
    market: Mapping[str, Any], *, symbol_id: int, precision_mode: int = TICK_SIZE
) -> Instrument:
    """Build an :class:`Instrument` from a ccxt market structure.

    Args:
        market: one entry of ``exchange.markets``.
        symbol_id: the engine's id for the symbol.
        precision_mode: ``exchange.precisionMode`` (Binance: TICK_SIZE).

    Raises:
        ValueError: the market carries no usable precision.
    """
    symbol = str(market["symbol"])
    precision = market.get("precision") or {}
    return Instrument(
        symbol=symbol,
        symbol_id=symbol_id,
        market_id=str(market["id"]),
        tick_size=_step(precision.get("price"), precision_mode, field=f"{symbol} price"),
        lot_size=_step(precision.get("amount"), precision_mode, field=f"{symbol} amount"),
    )


def to_units(value: Decimal | str, step: Decimal, *, field: str = "value") -> int:
    """Return ``value / step`` as an int, exactly.

    Raises:
        OffGridError: ``value`` is not a finite integral multiple of ``step``.
    """
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
        quotient = number / step
        exact = quotient.is_finite() and quotient == quotient.to_integral_value()
    except (InvalidOperation, ArithmeticError) as e:
        raise OffGridError(f"{field}: {value!r} is not a decimal number") from e
    if not exact:
        raise OffGridError(f"{field}: {value} is not a multiple of the step {step}")
    return int(quotient)


def from_units(units: int, step: Decimal) -> Decimal:
    """Return the decimal value of ``units`` steps (exact)."""
    return (step * units).normalize()


def off_grid_error(
    instrument: Instrument, bad: int, rows: npt.NDArray[np.float64], *, fields: tuple[str, str]
) -> OffGridError:
    """Name the value a grid kernel refused.

    ``bad`` is the kernel's ``2 * row + column`` into ``rows`` (``[price, amount, ...]``
    each); ``fields`` names the price and the amount column in the message.
    """
    row, column = divmod(bad, 2)
    step = instrument.lot_size if column else instrument.tick_size
    value = float(rows[row, column])
    return OffGridError(f"{fields[column]}: {value!r} is not a multiple of the step {step}")
