from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import (
    BUY,
    FILL_DTYPE,
    FILL_FLAG_LATENCY_ARB,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    SELL,
    empty_positions,
)
from engine.kernels._jit import py_func
from engine.kernels.book_nb import new_book
from engine.kernels.fills_nb import apply_fill, level_qty, passive_fill_from_trade, walk_book
from engine.kernels.layout import (
    ASK_PX,
    ASK_QTY,
    BID_PX,
    BID_QTY,
    G_COLUMNS,
    G_FILLS,
    SI_N_ASK,
    SI_N_BID,
)

PASSIVE = [
    pytest.param(passive_fill_from_trade, id="compiled"),
    pytest.param(py_func(passive_fill_from_trade), id="py_func"),
]
WALK = [pytest.param(walk_book, id="compiled"), pytest.param(py_func(walk_book), id="py_func")]
APPLY = [pytest.param(apply_fill, id="compiled"), pytest.param(py_func(apply_fill), id="py_func")]
LEVEL = [pytest.param(level_qty, id="compiled"), pytest.param(py_func(level_qty), id="py_func")]

MULT = 0.01


def _book(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> tuple[Any, Any]:
    book, sym_i = new_book(1, 8)
    for i, (px, qty) in enumerate(bids):
        book[0, BID_PX, i], book[0, BID_QTY, i] = px, qty
    for i, (px, qty) in enumerate(asks):
        book[0, ASK_PX, i], book[0, ASK_QTY, i] = px, qty
    sym_i[0, SI_N_BID], sym_i[0, SI_N_ASK] = len(bids), len(asks)
    return book, sym_i


def _logs(capacity: int = 16) -> tuple[Any, Any, Any]:
    return empty_positions(1), np.zeros(capacity, dtype=FILL_DTYPE), np.zeros(G_COLUMNS, np.int64)


# --- passive fills -----------------------------------------------------------------------------


@pytest.mark.parametrize("fn", PASSIVE)
def test_trade_at_our_price_eats_the_queue_ahead_first(fn):
    # our bid: 5 lots at 100 behind 10 lots
    assert fn(100, 5, 10, True, 100, 4) == (0, 6)
    assert fn(100, 5, 6, True, 100, 6) == (0, 0)  # queue gone, nothing left for us
    assert fn(100, 5, 0, True, 100, 3) == (3, 0)
    assert fn(100, 5, 2, True, 100, 100) == (5, 0)  # never more than we rest


@pytest.mark.parametrize("fn", PASSIVE)
def test_trade_at_our_price_fills_the_remainder_past_the_queue(fn):
    assert fn(101, 5, 3, False, 101, 7) == (4, 0)


@pytest.mark.parametrize("fn", PASSIVE)
def test_trade_through_our_price_fills_the_quote_whole(fn):
    # the aggressor swept our level on its way to the printed price, queue or not
    assert fn(100, 5, 50, True, 99, 1) == (5, 0)
    assert fn(101, 8, 50, False, 102, 2) == (8, 0)


@pytest.mark.parametrize("fn", PASSIVE)
def test_trade_that_does_not_reach_our_price_fills_nothing(fn):
    assert fn(100, 5, 3, True, 101, 100) == (0, 3)
    assert fn(101, 5, 3, False, 100, 100) == (0, 3)


@pytest.mark.parametrize("fn", PASSIVE)
def test_no_resting_quote_fills_nothing(fn):
    assert fn(100, 0, 3, True, 99, 10) == (0, 3)


@settings(max_examples=100, deadline=None)
@given(
    quote_qty=st.integers(1, 100),
    ahead=st.integers(0, 100),
    trade_qty=st.integers(1, 300),
    is_bid=st.booleans(),
    compiled=st.booleans(),
)
def test_a_trade_at_our_price_conserves_lots(quote_qty, ahead, trade_qty, is_bid, compiled):
    fn = passive_fill_from_trade if compiled else py_func(passive_fill_from_trade)
    filled, new_ahead = fn(1_000, quote_qty, ahead, is_bid, 1_000, trade_qty)
    assert 0 <= filled <= quote_qty
    assert 0 <= new_ahead <= ahead
    # the trade is spent on the queue ahead, then on us, in that order
    assert (ahead - new_ahead) + filled == min(trade_qty, ahead + quote_qty)
    assert filled == 0 or new_ahead == 0


@pytest.mark.parametrize("fn", LEVEL)
def test_level_qty_finds_the_visible_lots_at_a_price(fn):
    book, sym_i = _book([(100, 5), (98, 2)], [(101, 3), (103, 7)])
    assert fn(book, sym_i, 0, True, 100) == 5
    assert fn(book, sym_i, 0, True, 98) == 2
    assert fn(book, sym_i, 0, True, 99) == 0
    assert fn(book, sym_i, 0, True, 97) == 0
    assert fn(book, sym_i, 0, False, 103) == 7
    assert fn(book, sym_i, 0, False, 102) == 0
    assert fn(book, sym_i, 0, False, 100) == 0


# --- aggressive orders walk the book ---------------------------------------------------------


@pytest.mark.parametrize("fn", WALK)
def test_buy_walks_asks_in_price_order_up_to_the_limit_and_pays_taker_fees(fn):
    book, sym_i = _book([(99, 10)], [(101, 3), (102, 4), (104, 50)])
    before = book.copy()
    positions, fills, g = _logs()
    filled = fn(book, sym_i, positions, fills, g, 0, BUY, 103, 10, MULT, 5.0, 77)
    assert filled == 7  # 104 is beyond the limit
    assert g[G_FILLS] == 2
    assert list(fills["price"][:2]) == [101, 102]
    assert list(fills["qty"][:2]) == [3, 4]
    assert set(fills["liquidity"][:2]) == {LIQUIDITY_TAKER}
    assert set(fills["ts_ns"][:2]) == {77}
    notional = (101 * 3 + 102 * 4) * MULT
    fee = notional * 5.0e-4
    assert fills["fee"][:2].sum() == pytest.approx(fee)
    p = positions[0]
    assert p["qty"] == 7
    assert p["avg_price"] == pytest.approx((101 * 3 + 102 * 4) / 7)
    assert p["cash"] == pytest.approx(-notional - fee)
    assert p["fees"] == pytest.approx(fee)
    np.testing.assert_array_equal(book, before)  # no market impact


@pytest.mark.parametrize("fn", WALK)
def test_sell_walks_bids_down_and_stops_when_filled(fn):
    book, sym_i = _book([(100, 2), (99, 5), (98, 9)], [(101, 1)])
    positions, fills, g = _logs()
    filled = fn(book, sym_i, positions, fills, g, 0, SELL, 90, 6, MULT, 2.0, 1)
    assert filled == 6
    assert list(fills["price"][: g[G_FILLS]]) == [100, 99]
    assert list(fills["qty"][: g[G_FILLS]]) == [2, 4]
    assert positions[0]["qty"] == -6
    notional = (100 * 2 + 99 * 4) * MULT
    assert positions[0]["cash"] == pytest.approx(notional - notional * 2.0e-4)


@pytest.mark.parametrize("fn", WALK)
def test_limit_better_than_the_touch_fills_nothing(fn):
    book, sym_i = _book([(100, 2)], [(101, 1)])
    positions, fills, g = _logs()
    assert fn(book, sym_i, positions, fills, g, 0, BUY, 100, 5, MULT, 2.0, 1) == 0
    assert fn(book, sym_i, positions, fills, g, 0, SELL, 101, 5, MULT, 2.0, 1) == 0
    assert g[G_FILLS] == 0
    assert positions[0]["qty"] == 0
    assert positions[0]["cash"] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    asks=st.lists(st.integers(1, 20), min_size=0, max_size=6),
    limit_offset=st.integers(-1, 8),
    qty=st.integers(1, 100),
    compiled=st.booleans(),
)
def test_walk_fills_the_depth_within_the_limit_at_non_decreasing_prices(
    asks, limit_offset, qty, compiled
):
    fn = walk_book if compiled else py_func(walk_book)
    levels = [(1_000 + 2 * i, q) for i, q in enumerate(asks)]
    book, sym_i = _book([(999, 5)], levels)
    positions, fills, g = _logs(capacity=8)
    limit = 1_000 + limit_offset
    filled = fn(book, sym_i, positions, fills, g, 0, BUY, limit, qty, MULT, 1.0, 1)
    depth = sum(q for px, q in levels if px <= limit)
    assert filled == min(qty, depth)
    logged = fills[: g[G_FILLS]]
    assert int(logged["qty"].sum()) == filled == positions[0]["qty"]
    assert np.all(logged["price"] <= limit)
    assert np.all(np.diff(logged["price"]) > 0)


# --- position keeping ------------------------------------------------------------------------


def _apply(fn: Any, positions: Any, fills: Any, g: Any, side: int, price: int, qty: int) -> None:
    fn(positions, fills, g, 0, side, price, qty, MULT, 2.0, LIQUIDITY_MAKER, 5, 0)


@pytest.mark.parametrize("fn", APPLY)
def test_average_price_through_add_reduce_close_and_flip(fn):
    positions, fills, g = _logs()
    p = positions[0]
    _apply(fn, positions, fills, g, BUY, 100, 2)
    _apply(fn, positions, fills, g, BUY, 103, 1)
    assert p["qty"] == 3
    assert p["avg_price"] == pytest.approx(101.0)
    _apply(fn, positions, fills, g, SELL, 110, 1)  # reducing keeps the entry price
    assert p["qty"] == 2
    assert p["avg_price"] == pytest.approx(101.0)
    _apply(fn, positions, fills, g, SELL, 90, 5)  # flips short: the remainder opened at 90
    assert p["qty"] == -3
    assert p["avg_price"] == pytest.approx(90.0)
    _apply(fn, positions, fills, g, BUY, 95, 3)
    assert p["qty"] == 0
    assert p["avg_price"] == 0.0
    assert p["volume"] == 12
    assert p["fills"] == 5
    # flat: cash is the realised P&L net of fees
    gross = (-200 - 103 + 110 + 450 - 285) * MULT
    fees = 2.0e-4 * MULT * (200 + 103 + 110 + 450 + 285)
    assert p["fees"] == pytest.approx(fees)
    assert p["cash"] == pytest.approx(gross - fees)


@pytest.mark.parametrize("fn", APPLY)
def test_fill_log_records_each_fill_and_counts_past_capacity(fn):
    positions, fills, g = _logs(capacity=2)
    fn(positions, fills, g, 0, BUY, 100, 2, MULT, 1.0, LIQUIDITY_MAKER, 11, FILL_FLAG_LATENCY_ARB)
    fn(positions, fills, g, 0, SELL, 101, 1, MULT, 3.0, LIQUIDITY_TAKER, 12, 0)
    fn(positions, fills, g, 0, SELL, 102, 1, MULT, 3.0, LIQUIDITY_TAKER, 13, 0)
    assert g[G_FILLS] == 3
    assert list(fills["ts_ns"]) == [11, 12]
    assert list(fills["side"]) == [BUY, SELL]
    assert list(fills["liquidity"]) == [LIQUIDITY_MAKER, LIQUIDITY_TAKER]
    assert list(fills["flags"]) == [FILL_FLAG_LATENCY_ARB, 0]
    assert fills["fee"][1] == pytest.approx(101 * MULT * 3.0e-4)
    assert positions[0]["fills"] == 3  # the position still books the unlogged fill
    assert positions[0]["qty"] == 0


FILLS = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(1, 20)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(sequence=FILLS, fee_bps=st.floats(-2.0, 10.0), compiled=st.booleans())
def test_position_equals_the_sum_of_fills(sequence, fee_bps, compiled):
    fn = apply_fill if compiled else py_func(apply_fill)
    positions, fills, g = _logs(capacity=64)
    qty, avg = 0, Fraction(0)  # reference: average-cost accounting, exact
    for side, price, lots in sequence:
        fn(positions, fills, g, 0, side, price, lots, MULT, fee_bps, LIQUIDITY_MAKER, 0, 0)
        signed = lots if side == BUY else -lots
        new = qty + signed
        if new == 0:
            avg = Fraction(0)
        elif qty == 0 or (qty > 0) == (signed > 0):
            avg = (avg * abs(qty) + price * lots) / abs(new)
        elif (new > 0) != (qty > 0):
            avg = Fraction(price)
        qty = new
        p = positions[0]
        assert p["avg_price"] == pytest.approx(float(avg))
        if qty != 0:
            assert 90 <= p["avg_price"] <= 110
    signed_qty = np.array([q if s == BUY else -q for s, _, q in sequence], dtype=np.int64)
    prices = np.array([px for _, px, _ in sequence], dtype=np.float64)
    lots = np.abs(signed_qty)
    fees = float(np.sum(prices * MULT * lots * fee_bps * 1e-4))
    p = positions[0]
    assert p["qty"] == qty == int(signed_qty.sum())
    assert p["fees"] == pytest.approx(fees, abs=1e-9)
    assert p["cash"] == pytest.approx(-float(np.sum(signed_qty * prices * MULT)) - fees, abs=1e-9)
    assert p["volume"] == int(lots.sum())
    assert p["fills"] == g[G_FILLS] == len(sequence)
    assert fills["fee"][: len(sequence)].sum() == pytest.approx(fees, abs=1e-9)
