from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import ACTIVE, BUY, HALTED, REDUCING, SELL, empty_positions
from engine.kernels._jit import py_func
from engine.kernels.layout import (
    G_COLUMNS,
    G_MARKOUTS,
    G_MK_COUNT,
    G_MK_DROPPED,
    G_MK_HEAD,
    G_TRADING_STATE,
    GF_COLUMNS,
    GF_EQUITY,
    GF_EQUITY_PEAK,
    GF_MAX_DRAWDOWN,
    MK_COLUMNS,
    MK_PRICE,
    MK_TS,
    SF_ADVERSE,
    SF_COLUMNS,
    SF_MID,
    SI_COLUMNS,
)
from engine.kernels.posttrade_nb import (
    drawdown_switch,
    is_latency_arb,
    mark_to_market,
    markout_drain,
    markout_push,
    record_reference_move,
    stop_loss_hit,
)
from engine.kernels.risk_nb import RL_COLUMNS, RL_MULTIPLIER


def _both(fn: Any) -> list[Any]:
    return [pytest.param(fn, id="compiled"), pytest.param(py_func(fn), id="py_func")]


STOP = _both(stop_loss_hit)
DRAWDOWN = _both(drawdown_switch)
LATENCY_ARB = _both(is_latency_arb)
MOVE = _both(record_reference_move)
MARK_TO_MARKET = _both(mark_to_market)

HORIZON = 1_000
ALPHA = 0.5
WINDOW = 500


# --- stop-loss ---------------------------------------------------------------------------------


def _first_hit(fn: Any, qty: int, avg: float, mids: np.ndarray, stop: float) -> float | None:
    for mid in mids:
        if fn(qty, avg, float(mid), stop):
            return float(mid)
    return None


@pytest.mark.parametrize("fn", STOP)
def test_stop_fires_exactly_when_the_mid_falls_stop_ticks_below_a_long_entry(fn):
    falling = 100.25 - 0.5 * np.arange(30)  # 100.25, 99.75, ... in half ticks
    assert _first_hit(fn, 3, 100.25, falling, 4.0) == pytest.approx(96.25)
    assert not fn(3, 100.25, 96.5, 4.0)
    assert not fn(3, 100.25, 130.0, 4.0)  # a move in our favour never stops us


@pytest.mark.parametrize("fn", STOP)
def test_stop_fires_exactly_when_the_mid_rises_stop_ticks_above_a_short_entry(fn):
    rising = 100.0 + 0.5 * np.arange(30)
    assert _first_hit(fn, -2, 100.0, rising, 3.0) == pytest.approx(103.0)
    assert not fn(-2, 100.0, 102.5, 3.0)
    assert not fn(-2, 100.0, 70.0, 3.0)


@pytest.mark.parametrize("fn", STOP)
def test_flat_position_never_stops(fn):
    assert not fn(0, 100.0, 0.0, 1.0)
    assert not fn(0, 0.0, 1e9, 1.0)


@settings(max_examples=80, deadline=None)
@given(
    qty=st.integers(-50, 50),
    avg_half_ticks=st.integers(100, 300),
    move_half_ticks=st.integers(-40, 40),
    stop=st.integers(1, 10),
    compiled=st.booleans(),
)
def test_stop_fires_iff_the_adverse_move_reaches_the_stop(
    qty, avg_half_ticks, move_half_ticks, stop, compiled
):
    fn = stop_loss_hit if compiled else py_func(stop_loss_hit)
    avg = 0.5 * avg_half_ticks
    mid = avg + 0.5 * move_half_ticks
    adverse_half_ticks = -move_half_ticks if qty > 0 else move_half_ticks
    expected = qty != 0 and adverse_half_ticks >= 2 * stop
    assert fn(qty, avg, mid, float(stop)) == expected


# --- drawdown switch ---------------------------------------------------------------------------


def _drawdown_arrays(state: int = ACTIVE) -> tuple[Any, Any]:
    g = np.zeros(G_COLUMNS, dtype=np.int64)
    g[G_TRADING_STATE] = state
    return g, np.zeros(GF_COLUMNS)


@pytest.mark.parametrize("fn", DRAWDOWN)
def test_drawdown_lowers_to_reducing_then_halted_and_never_back(fn):
    g, gf = _drawdown_arrays()
    steps = [
        (100.0, ACTIVE),
        (60.0, ACTIVE),  # drawdown 40 < 50
        (50.0, REDUCING),  # drawdown 50: exactly the threshold
        (95.0, REDUCING),  # recovery does not raise the state
        (20.0, HALTED),  # drawdown 80
        (500.0, HALTED),
        (499.0, HALTED),
    ]
    for equity, expected in steps:
        assert fn(g, gf, equity, 50.0, 80.0) == expected
        assert g[G_TRADING_STATE] == expected
    assert gf[GF_EQUITY] == 499.0
    assert gf[GF_EQUITY_PEAK] == 500.0
    assert gf[GF_MAX_DRAWDOWN] == 80.0


@pytest.mark.parametrize("fn", DRAWDOWN)
def test_a_deep_drop_goes_straight_to_halted(fn):
    g, gf = _drawdown_arrays()
    assert fn(g, gf, 10.0, 5.0, 8.0) == ACTIVE
    assert fn(g, gf, 1.0, 5.0, 8.0) == HALTED


@pytest.mark.parametrize("fn", DRAWDOWN)
def test_an_operator_set_state_is_kept_without_drawdown(fn):
    g, gf = _drawdown_arrays(state=REDUCING)
    assert fn(g, gf, 10.0, 5.0, 8.0) == REDUCING
    g[G_TRADING_STATE] = HALTED
    assert fn(g, gf, 10.0, 5.0, 8.0) == HALTED


@settings(max_examples=80, deadline=None)
@given(
    equities=st.lists(st.floats(-1_000.0, 1_000.0), min_size=1, max_size=40),
    reduce_at=st.floats(1.0, 300.0),
    extra=st.floats(0.0, 300.0),
    compiled=st.booleans(),
)
def test_drawdown_state_is_monotone_and_matches_numpy(equities, reduce_at, extra, compiled):
    fn = drawdown_switch if compiled else py_func(drawdown_switch)
    halt_at = reduce_at + extra
    g, gf = _drawdown_arrays()
    states = [int(fn(g, gf, e, reduce_at, halt_at)) for e in equities]
    assert all(a <= b for a, b in pairwise(states))
    path = np.array(equities)
    peaks = np.maximum.accumulate(np.concatenate([[0.0], path]))[1:]  # peak starts at 0
    drawdowns = peaks - path
    worst = float(drawdowns.max())
    expected = HALTED if worst >= halt_at else REDUCING if worst >= reduce_at else ACTIVE
    assert states[-1] == expected
    assert gf[GF_MAX_DRAWDOWN] == pytest.approx(worst)
    assert gf[GF_EQUITY_PEAK] == pytest.approx(peaks[-1])


# --- markouts and adverse selection ------------------------------------------------------------


def _ring(capacity: int = 8, symbols: int = 1, mid: float = 100.0) -> tuple[Any, Any, Any]:
    ring = np.zeros((capacity, MK_COLUMNS), dtype=np.int64)
    g = np.zeros(G_COLUMNS, dtype=np.int64)
    sym_f = np.zeros((symbols, SF_COLUMNS))
    sym_f[:, SF_MID] = mid
    return ring, g, sym_f


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "py_func"])
def test_adverse_fill_is_drained_after_the_horizon_and_raises_the_score(compiled):
    push = markout_push if compiled else py_func(markout_push)
    drain = markout_drain if compiled else py_func(markout_drain)
    ring, g, sym_f = _ring()
    push(ring, g, 1_000, 0, BUY, 100)  # bought at 100
    sym_f[0, SF_MID] = 96.0  # and the price fell: 4 ticks adverse
    assert drain(ring, g, sym_f, 1_000 + HORIZON - 1, HORIZON, ALPHA) == 0
    assert g[G_MK_COUNT] == 1
    assert sym_f[0, SF_ADVERSE] == 0.0
    assert drain(ring, g, sym_f, 1_000 + HORIZON, HORIZON, ALPHA) == 1
    assert g[G_MK_COUNT] == 0
    assert g[G_MARKOUTS] == 1
    assert sym_f[0, SF_ADVERSE] == pytest.approx(ALPHA * 4.0)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "py_func"])
def test_adverse_sell_raises_and_favourable_fill_decays_the_score(compiled):
    push = markout_push if compiled else py_func(markout_push)
    drain = markout_drain if compiled else py_func(markout_drain)
    ring, g, sym_f = _ring()
    push(ring, g, 0, 0, SELL, 100)  # sold at 100
    sym_f[0, SF_MID] = 103.0  # price rose: 3 ticks adverse
    assert drain(ring, g, sym_f, HORIZON, HORIZON, ALPHA) == 1
    assert sym_f[0, SF_ADVERSE] == pytest.approx(1.5)
    push(ring, g, 10, 0, SELL, 110)  # sold at 110, mid 103: 7 ticks in our favour
    assert drain(ring, g, sym_f, 10 + HORIZON, HORIZON, ALPHA) == 1
    assert sym_f[0, SF_ADVERSE] == pytest.approx(1.5 + ALPHA * (0.0 - 1.5))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "py_func"])
def test_markouts_drain_in_order_and_only_the_ripe_ones(compiled):
    push = markout_push if compiled else py_func(markout_push)
    drain = markout_drain if compiled else py_func(markout_drain)
    ring, g, sym_f = _ring(capacity=4, symbols=2)
    sym_f[1, SF_MID] = 50.0
    push(ring, g, 100, 0, BUY, 102)  # 2 ticks adverse at mid 100
    push(ring, g, 200, 1, BUY, 49)  # 1 tick in our favour at mid 50
    push(ring, g, 300, 1, SELL, 48)  # 2 ticks adverse
    assert drain(ring, g, sym_f, 200 + HORIZON, HORIZON, ALPHA) == 2
    assert g[G_MK_COUNT] == 1
    assert ring[g[G_MK_HEAD], MK_TS] == 300
    assert sym_f[0, SF_ADVERSE] == pytest.approx(1.0)
    assert sym_f[1, SF_ADVERSE] == 0.0
    assert drain(ring, g, sym_f, 10**9, HORIZON, ALPHA) == 1
    assert sym_f[1, SF_ADVERSE] == pytest.approx(1.0)
    assert g[G_MARKOUTS] == 3


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "py_func"])
def test_a_full_ring_drops_its_oldest_markout(compiled):
    push = markout_push if compiled else py_func(markout_push)
    ring, g, _ = _ring(capacity=3)
    for i in range(5):
        push(ring, g, i, 0, BUY, 100 + i)
    assert g[G_MK_COUNT] == 3
    assert g[G_MK_DROPPED] == 2
    order = [ring[(g[G_MK_HEAD] + k) % 3, MK_PRICE] for k in range(3)]
    assert order == [102, 103, 104]


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(0, 50), st.sampled_from([BUY, SELL])), max_size=40
    ),
    compiled=st.booleans(),
)
def test_ring_is_a_bounded_fifo(ops, compiled):
    push = markout_push if compiled else py_func(markout_push)
    drain = markout_drain if compiled else py_func(markout_drain)
    ring, g, sym_f = _ring(capacity=4)
    model: list[int] = []  # fill times, oldest first
    now = 0
    for is_push, step, side in ops:
        now += step
        if is_push:
            push(ring, g, now, 0, side, 100)
            model.append(now)
            model = model[-4:]
        else:
            done = drain(ring, g, sym_f, now, 30, ALPHA)
            ripe = sum(1 for ts in model if ts + 30 <= now)
            assert done == ripe
            model = [ts for ts in model if ts + 30 > now]
        assert g[G_MK_COUNT] == len(model)
        assert [ring[(g[G_MK_HEAD] + k) % 4, MK_TS] for k in range(len(model))] == model
    assert sym_f[0, SF_ADVERSE] == 0.0  # every fill was at the mid: no loss


# --- latency arbitrage ------------------------------------------------------------------------


@pytest.mark.parametrize("arb", LATENCY_ARB)
@pytest.mark.parametrize("move", MOVE)
def test_fill_on_the_stale_side_within_the_window_is_flagged(arb, move):
    sym_i = np.zeros((2, SI_COLUMNS), dtype=np.int64)
    assert not arb(sym_i, 0, BUY, 1_000, WINDOW)  # no move recorded yet
    move(sym_i, 0, -2.0, 1.0, 1_000)  # the mid just fell: our bid was stale
    assert arb(sym_i, 0, BUY, 1_000, WINDOW)
    assert arb(sym_i, 0, BUY, 1_000 + WINDOW, WINDOW)
    assert not arb(sym_i, 0, BUY, 1_000 + WINDOW + 1, WINDOW)
    assert not arb(sym_i, 0, SELL, 1_100, WINDOW)  # selling into a falling market is fine
    assert not arb(sym_i, 1, BUY, 1_100, WINDOW)  # another symbol's move
    move(sym_i, 0, 1.5, 1.0, 2_000)  # now it rose: our ask was stale
    assert arb(sym_i, 0, SELL, 2_200, WINDOW)
    assert not arb(sym_i, 0, BUY, 2_200, WINDOW)


@pytest.mark.parametrize("arb", LATENCY_ARB)
@pytest.mark.parametrize("move", MOVE)
def test_a_move_below_the_threshold_is_not_a_reference_move(arb, move):
    sym_i = np.zeros((1, SI_COLUMNS), dtype=np.int64)
    move(sym_i, 0, -3.0, 2.0, 1_000)
    move(sym_i, 0, 1.5, 2.0, 1_200)  # too small to replace the drop
    assert arb(sym_i, 0, BUY, 1_300, WINDOW)
    assert not arb(sym_i, 0, SELL, 1_300, WINDOW)
    move(sym_i, 0, 2.0, 2.0, 1_400)  # exactly the threshold counts
    assert arb(sym_i, 0, SELL, 1_500, WINDOW)


# --- mark to market ---------------------------------------------------------------------------


@pytest.mark.parametrize("fn", MARK_TO_MARKET)
def test_equity_is_cash_plus_positions_at_mid(fn):
    positions = empty_positions(2)
    positions["qty"] = [3, -2]
    positions["cash"] = [-300.0, 50.0]
    sym_f = np.zeros((2, SF_COLUMNS))
    sym_f[:, SF_MID] = [101.0, 20.0]
    limits = np.zeros((2, RL_COLUMNS))
    limits[:, RL_MULTIPLIER] = [1.0, 0.5]
    assert fn(positions, sym_f, limits) == pytest.approx(-300.0 + 303.0 + 50.0 - 20.0)
