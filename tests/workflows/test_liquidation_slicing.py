"""The liquidation's arithmetic and input rules, on numbers (no servers)."""

from __future__ import annotations

import argparse
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot4.control_commands import _UsageError
from bot4.liquidate_cli import configure_parser, params_of, parse_duration_s
from workflows.liquidation import slicing
from workflows.liquidation.models import (
    ChildFills,
    LiquidationInput,
    SymbolUnwind,
    UnwindResult,
    check_input,
    child_id,
    child_prefix,
    workflow_id,
)
from workflows.liquidation.workflow import shortfall_bps


@given(
    mid2=st.integers(min_value=2, max_value=10**10),
    band=st.floats(min_value=0.01, max_value=2000),
    sell=st.booleans(),
)
def test_band_limit_is_never_outside_the_band(mid2: int, band: float, sell: bool) -> None:
    limit = slicing.band_limit(mid2, sell=sell, band_bps=band)
    mid = Fraction(mid2, 2)  # exact: a float or 28-digit Decimal edge would blur the check
    edge = mid * (1 - Fraction(band) / 10_000) if sell else mid * (1 + Fraction(band) / 10_000)
    if sell:
        assert limit >= edge
        assert limit - 1 < edge  # and as far out as the band allows
    else:
        assert limit <= edge
        assert limit + 1 > edge


def test_band_limit_is_exact_at_a_large_mid() -> None:
    # 2,459,941,200 ticks * 1.005 is exactly 2,472,240,906; float arithmetic gave ...905.
    assert slicing.band_limit(4_919_882_400, sell=False, band_bps=50.0) == 2_472_240_906


def test_within_band_counts_only_levels_the_band_allows() -> None:
    market = slicing.Market(best_bid=100, best_ask=102, bids=((100, 5), (99, 7), (97, 9)),
                            asks=((102, 1), (104, 2)))  # fmt: skip
    assert slicing.within_band(market, 99, sell=True) == 12
    assert slicing.within_band(market, 101, sell=True) == 0
    assert slicing.within_band(market, 103, sell=False) == 1


@given(
    remaining=st.integers(min_value=1, max_value=10**9),
    market_lots=st.integers(min_value=-10, max_value=10**9),
    cap=st.floats(min_value=0.001, max_value=1.0),
)
def test_participation_never_exceeds_the_cap_nor_the_remainder(
    remaining: int, market_lots: int, cap: float
) -> None:
    lots = slicing.participation_lots(remaining, market_lots=market_lots, cap=cap)
    assert 0 <= lots <= remaining
    assert lots <= max(0, market_lots) * cap + 1e-6


def test_twap_spreads_the_remainder_over_the_slices_left() -> None:
    # 10 slices left, the last two kept to catch up on partial fills: 100 over 8
    assert slicing.twap_lots(100, time_left_ms=10_000, interval_ms=1_000) == 13
    assert slicing.twap_lots(100, time_left_ms=3_000, interval_ms=1_000) == 100  # catch-up
    assert slicing.twap_lots(100, time_left_ms=500, interval_ms=1_000) == 100  # last slice
    assert slicing.twap_lots(7, time_left_ms=10_000, interval_ms=1_000) == 1


@given(
    lots=st.integers(min_value=1, max_value=1000),
    remaining=st.integers(min_value=1, max_value=1000),
    floor=st.integers(min_value=1, max_value=50),
    capped=st.booleans(),
)
def test_a_child_leaves_nothing_or_a_sellable_remainder(
    lots: int, remaining: int, floor: int, capped: bool
) -> None:
    lots = min(lots, remaining)
    out = slicing.leave_no_dust(lots, remaining=remaining, floor=floor, capped=capped)
    assert 0 < out <= remaining
    if capped:
        assert out <= lots  # the cap is never exceeded to avoid dust
    else:
        assert remaining - out == 0 or remaining - out >= floor


def test_min_lots_reaches_the_minimum_notional() -> None:
    # BTC/USDT: tick 0.01, lot 0.00001, 60000 USDT: a lot is 0.6 USDT, 5 USDT needs 9 lots
    assert slicing.min_lots(price_ticks=6_000_000, tick=0.01, lot=0.00001, min_notional=5) == 9


def test_workflow_id_is_the_sorted_symbols_or_all() -> None:
    one = LiquidationInput(symbols=("ETH/USDT", "BTC/USDT"))
    assert workflow_id(one) == "liquidate-btc-usdt+eth-usdt"
    assert workflow_id(LiquidationInput(all_symbols=True)) == "liquidate-all"
    assert workflow_id(LiquidationInput(symbols=("BTC/USDT",), dry_run=True)).startswith(
        "liquidate-btc-usdt-plan-"
    )


def test_child_ids_fit_the_venue_and_differ_between_runs() -> None:
    prefix = child_prefix("liquidate-btc-usdt/run-1")
    cid = child_id(prefix, 19, 999_999)
    assert len(cid) <= 36
    assert cid.startswith("liq-")
    assert child_prefix("liquidate-btc-usdt/run-2") != prefix
    assert child_id(prefix, 0, 5) == child_id(prefix, 0, 5)  # a retried slice: the same id


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({}, "symbols"),
        ({"symbols": ("BTCUSDT",)}, "BTC/USDT"),
        ({"symbols": ("BTC/USDT",), "all_symbols": True}, "not both"),
        ({"symbols": ("BTC/USDT",), "deadline_s": 0}, "deadline_s"),
        ({"symbols": ("BTC/USDT",), "mode": "vwap"}, "mode"),
        ({"symbols": ("BTC/USDT",), "max_participation": 1.5}, "max_participation"),
        ({"symbols": ("BTC/USDT",), "band_bps": 0}, "band_bps"),
        ({"symbols": ("BTC/USDT",), "slice_interval_ms": -1}, "slice_interval_ms"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        check_input(LiquidationInput(**fields))  # type: ignore[arg-type]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(list(argv))


def test_cli_turns_options_into_runbook_parameters() -> None:
    params = params_of(_args("--symbol", "btc/usdt", "--deadline", "2m", "--interval", "500ms",
                             "--mode", "participation", "--max-participation", "0.2"))  # fmt: skip
    assert params == {
        "symbols": ["BTC/USDT"], "deadline_s": 120, "mode": "participation",
        "max_participation": 0.2, "band_bps": 50.0, "slice_interval_ms": 500,
    }  # fmt: skip
    assert params_of(_args("--all"))["all_symbols"] is True


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--symbol", "BTC/USDT", "--deadline", "soon"), "--deadline"),
        (("--symbol", "BTC/USDT", "--band-bps", "0"), "--band-bps"),
        (("--symbol", "BTC/USDT", "--max-participation", "2"), "--max-participation"),
        (
            (
                "--symbol",
                "BTCUSDT",
            ),
            "--symbol",
        ),
    ],
)
def test_cli_refuses_bad_options_naming_them(argv: tuple[str, ...], named: str) -> None:
    with pytest.raises(_UsageError, match=named):
        params_of(_args(*argv))


def test_durations_read_as_operators_write_them() -> None:
    assert parse_duration_s("90", name="--deadline") == 90
    assert parse_duration_s("10m", name="--deadline") == 600
    assert parse_duration_s("1h", name="--deadline") == 3600


def test_shortfall_is_a_cost_when_selling_below_the_arrival_mid() -> None:
    leg = SymbolUnwind(symbol="BTC/USDT", side="sell", start_qty="1", filled="1", remaining="0",
                       notional="", arrival_mid="100", children=1, slices=1)  # fmt: skip
    unwind = UnwindResult(symbols=(leg,), slices=1, stopped="done", duration_ms=1)
    fills = {"BTC/USDT": ChildFills(symbol="BTC/USDT", qty="1", notional="99", children=1)}
    assert shortfall_bps(unwind, fills) == pytest.approx(100.0)
