from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import OffGridError
from engine.execution.instruments import (
    Instrument,
    floats_to_units,
    from_units,
    instrument_from_market,
    to_units,
)

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


@given(units=st.lists(st.integers(min_value=0, max_value=10**11), max_size=50), step=STEPS)
def test_floats_parsed_from_on_grid_decimals_convert_exactly(units, step):
    # what ccxt does: parse the wire's decimal string into a float
    floats = np.array([float(str(from_units(u, step))) for u in units], dtype=np.float64)
    assert floats_to_units(floats, step).tolist() == units


@given(units=st.integers(min_value=0, max_value=10**9), step=STEPS)
def test_off_grid_float_is_rejected(units, step):
    value = float(from_units(units, step) + step / 2)
    with pytest.raises(OffGridError):
        floats_to_units(np.array([value]), step)


def test_nan_and_infinity_are_rejected():
    with pytest.raises(OffGridError):
        floats_to_units(np.array([float("nan")]), Decimal("0.01"))
    with pytest.raises(OffGridError):
        floats_to_units(np.array([float("inf")]), Decimal("0.01"))


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
