from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import BUY, SELL
from engine.kernels._jit import py_func
from engine.kernels.book_nb import new_book
from engine.kernels.features_nb import (
    imbalance,
    microprice,
    update_book_features,
    update_trade_flow,
)
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    FEAT_EWMA_RET,
    FEAT_EWMA_VOL,
    FEAT_FLOW_IMBALANCE,
    FEAT_IMBALANCE_L1,
    FEAT_IMBALANCE_LN,
    FEAT_MICRO_OFFSET,
    FEAT_SPREAD,
    N_FEATURES,
    SF_COLUMNS,
    SF_EWMA_RET,
    SF_EWMA_VAR,
    SF_FLOW_SIGNED,
    SF_FLOW_TOTAL,
    SF_MID,
    SI_N_ASK,
    SI_N_BID,
)

MICRO = [pytest.param(microprice, id="compiled"), pytest.param(py_func(microprice), id="py_func")]
IMBALANCE = [pytest.param(imbalance, id="compiled"), pytest.param(py_func(imbalance), id="py_func")]
BOOK_FEATURES = [
    pytest.param(update_book_features, id="compiled"),
    pytest.param(py_func(update_book_features), id="py_func"),
]
TRADE_FLOW = [
    pytest.param(update_trade_flow, id="compiled"),
    pytest.param(py_func(update_trade_flow), id="py_func"),
]


def _book(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], *, symbols: int = 1, symbol: int = 0
) -> tuple[Any, Any]:
    """Return a book whose ``symbol`` holds the given levels, best first."""
    book, sym_i = new_book(symbols, 8)
    for i, (px, qty) in enumerate(bids):
        book[symbol, BID_PX, i], book[symbol, BID_QTY, i] = px, qty
    for i, (px, qty) in enumerate(asks):
        book[symbol, ASK_PX, i], book[symbol, ASK_QTY, i] = px, qty
    sym_i[symbol, SI_N_BID], sym_i[symbol, SI_N_ASK] = len(bids), len(asks)
    return book, sym_i


def _set_top(book: Any, bid: int, ask: int) -> None:
    book[0, BID_PX, 0], book[0, ASK_PX, 0] = bid, ask


def _ewma_reference(xs: np.ndarray, alpha: float) -> float:
    """Return the EWMA of ``xs`` started at 0, as the closed-form weighted sum."""
    n = xs.shape[0]
    weights = alpha * (1.0 - alpha) ** np.arange(n - 1, -1, -1)
    return float(weights @ xs)


# --- microprice --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", MICRO)
def test_microprice_equals_mid_for_equal_sizes(fn):
    assert fn(100, 7, 102, 7) == pytest.approx(101.0)


@pytest.mark.parametrize("fn", MICRO)
def test_microprice_leans_toward_the_thinner_side(fn):
    # thin bid (1 lot) against a thick ask (3 lots): price is about to tick down
    assert fn(100, 1, 104, 3) == pytest.approx(101.0)
    # thin ask: leans up, symmetric
    assert fn(100, 3, 104, 1) == pytest.approx(103.0)


@pytest.mark.parametrize("fn", MICRO)
def test_microprice_of_an_empty_top_is_the_mid(fn):
    assert fn(100, 0, 103, 0) == pytest.approx(101.5)


@settings(max_examples=60, deadline=None)
@given(
    bid=st.integers(1, 10_000),
    spread=st.integers(1, 50),
    bid_qty=st.integers(1, 10**6),
    ask_qty=st.integers(1, 10**6),
    compiled=st.booleans(),
)
def test_microprice_lies_in_the_spread_on_the_side_of_the_thinner_queue(
    bid, spread, bid_qty, ask_qty, compiled
):
    fn = microprice if compiled else py_func(microprice)
    ask = bid + spread
    mid = 0.5 * (bid + ask)
    micro = fn(bid, bid_qty, ask, ask_qty)
    assert bid <= micro <= ask
    if bid_qty < ask_qty:
        assert micro < mid
    elif bid_qty > ask_qty:
        assert micro > mid
    else:
        assert micro == pytest.approx(mid)


# --- imbalance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", IMBALANCE)
def test_multi_level_imbalance_on_a_hand_built_book(fn):
    book, sym_i = _book([(100, 5), (99, 3), (98, 100)], [(101, 2), (102, 2), (103, 1)])
    n_bid, n_ask = int(sym_i[0, SI_N_BID]), int(sym_i[0, SI_N_ASK])
    assert fn(book, 0, 1, n_bid, n_ask) == pytest.approx((5 - 2) / (5 + 2))
    assert fn(book, 0, 2, n_bid, n_ask) == pytest.approx((8 - 4) / (8 + 4))
    # the deep bid level flips nothing but dominates once included
    assert fn(book, 0, 3, n_bid, n_ask) == pytest.approx((108 - 5) / (108 + 5))
    # more levels than the book holds: only the levels present count
    assert fn(book, 0, 8, n_bid, n_ask) == pytest.approx((108 - 5) / (108 + 5))


@pytest.mark.parametrize("fn", IMBALANCE)
def test_imbalance_is_negative_when_asks_dominate_and_zero_when_empty(fn):
    book, _ = _book([(100, 1)], [(101, 9), (102, 10)])
    assert fn(book, 0, 2, 1, 2) == pytest.approx((1 - 19) / 20)
    assert fn(book, 0, 2, 0, 0) == 0.0
    assert fn(book, 0, 2, 0, 2) == pytest.approx(-1.0)
    assert fn(book, 0, 2, 1, 0) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", IMBALANCE)
def test_imbalance_reads_only_its_own_symbol(fn):
    book, _ = _book([(100, 4)], [(101, 1)], symbols=2, symbol=1)
    book[0, BID_QTY, 0] = 1_000  # noise in symbol 0
    assert fn(book, 1, 3, 1, 1) == pytest.approx(3 / 5)


@settings(max_examples=60, deadline=None)
@given(
    bid_qty=st.lists(st.integers(0, 10**6), max_size=8),
    ask_qty=st.lists(st.integers(0, 10**6), max_size=8),
    levels=st.integers(1, 8),
    compiled=st.booleans(),
)
def test_imbalance_is_in_unit_interval_and_matches_numpy(bid_qty, ask_qty, levels, compiled):
    fn = imbalance if compiled else py_func(imbalance)
    book, _ = _book(
        [(1_000 - i, q) for i, q in enumerate(bid_qty)],
        [(1_001 + i, q) for i, q in enumerate(ask_qty)],
    )
    value = fn(book, 0, levels, len(bid_qty), len(ask_qty))
    bid = float(np.sum(np.array(bid_qty[:levels], dtype=np.int64)))
    ask = float(np.sum(np.array(ask_qty[:levels], dtype=np.int64)))
    expected = (bid - ask) / (bid + ask) if bid + ask > 0 else 0.0
    assert -1.0 <= value <= 1.0
    assert value == pytest.approx(expected)


# --- book features: spread, microprice offset, EWMA return and volatility -----------------------


@pytest.mark.parametrize("fn", BOOK_FEATURES)
def test_book_features_on_a_hand_built_book(fn):
    book, sym_i = _book([(100, 1), (99, 9)], [(104, 3), (105, 1)])
    sym_f = np.zeros((1, SF_COLUMNS))
    features = np.zeros((1, N_FEATURES))
    change = fn(book, sym_i, sym_f, features, 0, 2, 0.5)
    assert change == 0.0  # first mid: nothing to compare with
    assert sym_f[0, SF_MID] == pytest.approx(102.0)
    f = features[0]
    assert f[FEAT_SPREAD] == pytest.approx(4.0)
    assert f[FEAT_MICRO_OFFSET] == pytest.approx(101.0 - 102.0)
    assert f[FEAT_IMBALANCE_L1] == pytest.approx((1 - 3) / 4)
    assert f[FEAT_IMBALANCE_LN] == pytest.approx((10 - 4) / 14)
    assert f[FEAT_EWMA_RET] == 0.0
    assert f[FEAT_EWMA_VOL] == 0.0


@pytest.mark.parametrize("fn", BOOK_FEATURES)
def test_ewma_return_and_volatility_after_known_mid_moves(fn):
    book, sym_i = _book([(100, 5)], [(102, 5)])
    sym_f = np.zeros((1, SF_COLUMNS))
    features = np.zeros((1, N_FEATURES))
    alpha = 0.25
    fn(book, sym_i, sym_f, features, 0, 1, alpha)  # mid 101
    tops = [(101, 103), (101, 103), (99, 102), (100, 102), (96, 98)]  # mids 102 102 100.5 101 97
    changes = []
    for bid, ask in tops:
        _set_top(book, bid, ask)
        changes.append(fn(book, sym_i, sym_f, features, 0, 1, alpha))
    assert changes == pytest.approx([1.0, 0.0, -1.5, 0.5, -4.0])
    moves = np.array([1.0, -1.5, 0.5, -4.0])  # an unchanged mid does not advance the EWMAs
    ret = _ewma_reference(moves, alpha)
    var = _ewma_reference(moves**2, alpha)
    assert sym_f[0, SF_EWMA_RET] == pytest.approx(ret)
    assert sym_f[0, SF_EWMA_VAR] == pytest.approx(var)
    assert features[0, FEAT_EWMA_RET] == pytest.approx(ret)
    assert features[0, FEAT_EWMA_VOL] == pytest.approx(np.sqrt(var))
    # hand check of the first step: 0 + 0.25 * (1 - 0)
    assert _ewma_reference(moves[:1], alpha) == pytest.approx(0.25)


@settings(max_examples=40, deadline=None)
@given(
    mids=st.lists(st.tuples(st.integers(50, 150), st.integers(1, 6)), min_size=1, max_size=30),
    alpha=st.floats(0.01, 1.0),
    compiled=st.booleans(),
)
def test_ewma_features_match_numpy_over_any_mid_path(mids, alpha, compiled):
    fn = update_book_features if compiled else py_func(update_book_features)
    book, sym_i = _book([(100, 1)], [(101, 1)])
    sym_f = np.zeros((1, SF_COLUMNS))
    features = np.zeros((1, N_FEATURES))
    for bid, spread in mids:
        _set_top(book, bid, bid + spread)
        fn(book, sym_i, sym_f, features, 0, 1, alpha)
    path = np.array([bid + 0.5 * spread for bid, spread in mids])
    moves = np.diff(path)
    moves = moves[moves != 0.0]
    assert sym_f[0, SF_MID] == pytest.approx(path[-1])
    assert features[0, FEAT_EWMA_RET] == pytest.approx(_ewma_reference(moves, alpha), abs=1e-9)
    vol = np.sqrt(_ewma_reference(moves**2, alpha))
    assert features[0, FEAT_EWMA_VOL] == pytest.approx(vol, abs=1e-9)
    assert features[0, FEAT_SPREAD] == pytest.approx(float(mids[-1][1]))


# --- trade flow --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", TRADE_FLOW)
def test_trade_flow_imbalance_with_alpha_decay(fn):
    sym_f = np.zeros((1, SF_COLUMNS))
    features = np.zeros((1, N_FEATURES))
    alpha = 0.5
    fn(sym_f, features, 0, BUY, 4, alpha)
    # signed 2, total 2
    assert features[0, FEAT_FLOW_IMBALANCE] == pytest.approx(1.0)
    fn(sym_f, features, 0, SELL, 2, alpha)
    # signed 2 + 0.5 * (-2 - 2) = 0, total 2 + 0.5 * (2 - 2) = 2
    assert sym_f[0, SF_FLOW_SIGNED] == pytest.approx(0.0)
    assert sym_f[0, SF_FLOW_TOTAL] == pytest.approx(2.0)
    assert features[0, FEAT_FLOW_IMBALANCE] == pytest.approx(0.0)
    fn(sym_f, features, 0, SELL, 6, alpha)
    # signed 0 + 0.5 * (-6 - 0) = -3, total 2 + 0.5 * (6 - 2) = 4
    assert features[0, FEAT_FLOW_IMBALANCE] == pytest.approx(-3 / 4)


@pytest.mark.parametrize("fn", TRADE_FLOW)
def test_trade_flow_with_no_volume_is_neutral(fn):
    sym_f = np.zeros((1, SF_COLUMNS))
    features = np.full((1, N_FEATURES), 7.0)
    fn(sym_f, features, 0, BUY, 0, 0.5)
    assert features[0, FEAT_FLOW_IMBALANCE] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    trades=st.lists(
        st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 1_000)), min_size=1, max_size=40
    ),
    alpha=st.floats(0.01, 1.0),
    compiled=st.booleans(),
)
def test_trade_flow_matches_numpy_and_stays_in_unit_interval(trades, alpha, compiled):
    fn = update_trade_flow if compiled else py_func(update_trade_flow)
    sym_f = np.zeros((2, SF_COLUMNS))
    features = np.zeros((2, N_FEATURES))
    for side, qty in trades:
        fn(sym_f, features, 1, side, qty, alpha)
        assert -1.0 - 1e-12 <= features[1, FEAT_FLOW_IMBALANCE] <= 1.0 + 1e-12
    qty = np.array([q for _, q in trades], dtype=np.float64)
    signed = np.array([q if s == BUY else -q for s, q in trades], dtype=np.float64)
    expected = _ewma_reference(signed, alpha) / _ewma_reference(qty, alpha)
    assert features[1, FEAT_FLOW_IMBALANCE] == pytest.approx(expected, abs=1e-9)
    assert not np.any(sym_f[0])  # the other symbol is untouched
    assert not np.any(features[0])
