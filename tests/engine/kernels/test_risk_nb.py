from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import (
    ACTIVE,
    BUY,
    HALTED,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    ORDER_IOC,
    ORDER_LIMIT_POST_ONLY,
    REDUCING,
    SELL,
    empty_positions,
)
from engine.kernels._jit import py_func
from engine.kernels.book_nb import new_book
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    GF_COLUMNS,
    GF_TOKENS,
    SF_COLUMNS,
    SF_MID,
    SI_N_ASK,
    SI_N_BID,
    SI_Q_QTY,
)
from engine.kernels.risk_nb import (
    ACCEPTED,
    DENY_HALTED,
    DENY_LIQUIDITY,
    DENY_NOT_REDUCING,
    DENY_ORDER_NOTIONAL,
    DENY_ORDER_RATE,
    DENY_PORTFOLIO_EXPOSURE,
    DENY_POSITION_LIMIT,
    DENY_PRICE_BAND,
    check_order,
    choose_liquidity,
    is_reducing,
)
from engine.replay.config import ReplayConfig, RiskConfig

CHECK = [pytest.param(check_order, id="compiled"), pytest.param(py_func(check_order), id="py_func")]


def _world(risk: RiskConfig | None = None, symbols: int = 2) -> dict[str, Any]:
    book, sym_i = new_book(symbols, 4)
    for s in range(symbols):
        book[s, BID_PX, 0], book[s, BID_QTY, 0] = 9_999, 1_000
        book[s, ASK_PX, 0], book[s, ASK_QTY, 0] = 10_001, 1_000
        sym_i[s, SI_N_BID] = sym_i[s, SI_N_ASK] = 1
    sym_f = np.zeros((symbols, SF_COLUMNS))
    sym_f[:, SF_MID] = 10_000.0
    config = ReplayConfig(risk=risk or RiskConfig())
    gf = np.zeros(GF_COLUMNS)
    gf[GF_TOKENS] = 1e9
    return {
        "book": book,
        "sym_i": sym_i,
        "sym_f": sym_f,
        "positions": empty_positions(symbols),
        "limits": config.limits((0.1,) * symbols, (0.01,) * symbols),
        "params": config.params(),
        "corr": config.correlation(symbols),
        "gf": gf,
    }


def _check(
    fn: Any,
    w: Any,
    *,
    state: int = ACTIVE,
    side: int = BUY,
    price: int = 9_999,
    qty: int = 1,
    order_type: int = ORDER_LIMIT_POST_ONLY,
    symbol: int = 0,
    now: int = 0,
) -> int:
    return int(
        fn(
            state,
            symbol,
            side,
            price,
            qty,
            order_type,
            now,
            w["book"],
            w["sym_i"],
            w["sym_f"],
            w["positions"],
            w["limits"],
            w["params"],
            w["corr"],
            w["gf"],
        )
    )


@pytest.mark.parametrize("fn", CHECK)
def test_ordinary_order_is_accepted(fn):
    assert _check(fn, _world()) == ACCEPTED


@pytest.mark.parametrize("fn", CHECK)
def test_price_far_from_mid_is_denied_by_the_band(fn):
    assert _check(fn, _world(), price=12_000) == DENY_PRICE_BAND


@pytest.mark.parametrize("fn", CHECK)
def test_order_notional_limit(fn):
    w = _world(RiskConfig(max_order_notional=100.0, max_depth_fraction=10.0))
    # 9_999 ticks * 0.1 * 0.01 = ~10 per lot
    assert _check(fn, w, qty=9) == ACCEPTED
    assert _check(fn, w, qty=11) == DENY_ORDER_NOTIONAL


@pytest.mark.parametrize("fn", CHECK)
def test_position_limit_counts_open_orders(fn):
    w = _world(RiskConfig(max_position_lots=10))
    w["positions"][0]["qty"] = 6
    w["sym_i"][0, SI_Q_QTY] = 3  # resting bid
    assert _check(fn, w, qty=1) == ACCEPTED
    assert _check(fn, w, qty=2) == DENY_POSITION_LIMIT
    assert _check(fn, w, side=SELL, price=10_001, qty=16) == ACCEPTED


@pytest.mark.parametrize("fn", CHECK)
def test_correlated_exposure_limit(fn):
    w = _world(RiskConfig(max_portfolio_exposure=500.0, correlation=0.9))
    w["positions"][1]["qty"] = 400  # ~400 quote currency in the other symbol
    assert _check(fn, w, qty=100) == DENY_PORTFOLIO_EXPOSURE
    assert _check(fn, w, side=SELL, price=10_001, qty=100) == ACCEPTED  # hedges


@pytest.mark.parametrize("fn", CHECK)
def test_liquidity_check_against_visible_depth(fn):
    w = _world(
        RiskConfig(
            max_depth_fraction=0.1,
            max_order_notional=1e9,
            max_symbol_notional=1e9,
            max_position_lots=10**6,
            max_portfolio_exposure=1e12,
        )
    )
    assert _check(fn, w, qty=100, order_type=ORDER_IOC, price=10_001) == ACCEPTED
    assert _check(fn, w, qty=101, order_type=ORDER_IOC, price=10_001) == DENY_LIQUIDITY


@pytest.mark.parametrize("fn", CHECK)
def test_order_rate_throttle_refills_over_time(fn):
    w = _world(RiskConfig(orders_per_second=10.0, order_burst=2.0))
    w["gf"][GF_TOKENS] = 2.0
    assert _check(fn, w, now=0) == ACCEPTED
    assert _check(fn, w, now=0) == ACCEPTED
    assert _check(fn, w, now=0) == DENY_ORDER_RATE
    assert _check(fn, w, now=100_000_000) == ACCEPTED


def test_maker_taker_choice_takes_only_when_edge_pays_for_crossing():
    assert choose_liquidity(0.2, 0.5, 10_000.0, 0.0, 4.0, 0.3, 0.5) == LIQUIDITY_MAKER
    assert choose_liquidity(10.0, 0.5, 10_000.0, 0.0, 0.1, 0.3, 0.5) == LIQUIDITY_TAKER
    assert py_func(choose_liquidity)(10.0, 0.5, 10_000.0, 0.0, 0.1, 0.3, 0.5) == LIQUIDITY_TAKER


ORDERS = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(9_950, 10_050),
    st.integers(-5, 300),
    st.sampled_from([ORDER_LIMIT_POST_ONLY, ORDER_IOC]),
)


@settings(max_examples=100, deadline=None)
@given(order=ORDERS, position=st.integers(-200, 200), compiled=st.booleans())
def test_no_intent_passes_when_halted(order, position, compiled):
    fn = check_order if compiled else py_func(check_order)
    w = _world()
    w["positions"][0]["qty"] = position
    side, price, qty, order_type = order
    code = _check(fn, w, state=HALTED, side=side, price=price, qty=qty, order_type=order_type)
    assert code == DENY_HALTED


@settings(max_examples=150, deadline=None)
@given(
    order=ORDERS,
    position=st.integers(-200, 200),
    open_buy=st.integers(0, 50),
    open_sell=st.integers(0, 50),
    compiled=st.booleans(),
)
def test_reducing_lets_only_risk_reducing_intents_through(
    order, position, open_buy, open_sell, compiled
):
    fn = check_order if compiled else py_func(check_order)
    w = _world()
    w["positions"][0]["qty"] = position
    w["sym_i"][0, SI_Q_QTY], w["sym_i"][0, SI_Q_QTY + 1] = open_buy, open_sell
    side, price, qty, order_type = order
    code = _check(fn, w, state=REDUCING, side=side, price=price, qty=qty, order_type=order_type)
    if code == ACCEPTED:
        assert is_reducing(position, open_buy, open_sell, side, qty)
        worst = position + open_buy + qty if side == BUY else position - open_sell - qty
        assert abs(worst) < abs(position)
        assert (worst >= 0) == (position > 0) or worst == 0
    if not is_reducing(position, open_buy, open_sell, side, qty) and qty > 0:
        assert code in (DENY_NOT_REDUCING, DENY_PRICE_BAND) or code != ACCEPTED
