from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import OffGridError
from engine.execution.instruments import (
    Instrument,
    from_units,
    instrument_from_market,
    to_units,
)
from engine.execution.trade_feed import trades_to_records

STEPS = st.sampled_from([Decimal(s) for s in ("0.01", "0.1", "1", "0.00001", "0.0001", "5", "0.5")])
UNITS = st.integers(min_value=-(10**12), max_value=10**12)


@given(units=UNITS, step=STEPS)
def test_decimal_round_trip_is_exact(units, step):
    assert to_units(from_units(units, step), step) == units


@given(units=UNITS, step=STEPS)
def test_off_grid_decimal_is_an_error_not_rounded(units, step):
    off = from_units(units, step) + step / 3
    with pytest.raises(OffGridError):
        to_units(off, step)


def _prices_to_ticks(prices: list[float], tick: Decimal) -> list[int]:
    """Convert prices as the trade feed does (one kernel per message), amounts on grid."""
    instrument = Instrument(symbol="BTC/USDT", symbol_id=0, market_id="BTCUSDT",
                            tick_size=tick, lot_size=Decimal("0.001"))  # fmt: skip
    trades = [{"price": p, "amount": 0.001, "side": "buy", "timestamp": 1, "id": i}
              for i, p in enumerate(prices)]  # fmt: skip
    return [int(t) for t in trades_to_records(trades, instrument)["price_ticks"]]


@pytest.fixture(autouse=True, scope="module")
def _feed_kernel_loaded() -> None:
    """Load the feed's numba kernel once, outside hypothesis's 200 ms deadline per example."""
    _prices_to_ticks([1.0], Decimal("0.01"))


@given(units=st.lists(st.integers(min_value=0, max_value=10**11), max_size=50), step=STEPS)
def test_floats_parsed_from_on_grid_decimals_convert_exactly(units, step):
    # what ccxt does: parse the wire's decimal string into a float
    assert _prices_to_ticks([float(str(from_units(u, step))) for u in units], step) == units


@given(units=st.integers(min_value=0, max_value=10**9), step=STEPS)
def test_off_grid_float_is_rejected(units, step):
    value = float(from_units(units, step) + step / 2)
    with pytest.raises(OffGridError, match="trade price"):
        _prices_to_ticks([value], step)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e17])
def test_nan_infinity_and_values_beyond_int64_are_rejected(value):
    with pytest.raises(OffGridError, match="trade price"):
        _prices_to_ticks([100.01, value], Decimal("0.01"))


def test_instrument_from_a_ccxt_market_uses_its_tick_and_lot_size():
    market = {"symbol": "BTC/USDT", "id": "BTCUSDT", "precision": {"price": 0.01, "amount": 1e-05}}
    instrument = instrument_from_market(market, symbol_id=0)
    assert instrument.tick_size == Decimal("0.01")
    assert instrument.lot_size == Decimal("0.00001")
    assert instrument.price_to_ticks("27000.01") == 2_700_001
    with pytest.raises(OffGridError):
        instrument.price_to_ticks("27000.015")


def test_instrument_refuses_a_zero_step():
    with pytest.raises(ValueError, match="tick_size"):
        Instrument(
            symbol="X/Y", symbol_id=0, market_id="XY", tick_size=Decimal(0), lot_size=Decimal(1)
        )
