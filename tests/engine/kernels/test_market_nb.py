"""Market-data kernels: book views and trades become kernel events."""

from __future__ import annotations

import numpy as np

from engine.dtypes import (
    ASK,
    BID,
    BOOK_DELTA,
    BUY,
    EVENT_DTYPE,
    SELL,
    SNAPSHOT_BEGIN,
    SNAPSHOT_END,
    TRADE,
    empty_book_levels,
    empty_trades,
)
from engine.kernels.market_nb import book_view_events, trade_events


def _view(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> np.ndarray:
    levels = empty_book_levels(len(bids) + len(asks))
    for i, (side, (price, qty)) in enumerate([(BID, b) for b in bids] + [(ASK, a) for a in asks]):
        levels[i]["side"], levels[i]["price_ticks"], levels[i]["qty_lots"] = side, price, qty
    levels["symbol_id"] = 1
    levels["ts_ns"] = 77
    return levels


def test_a_book_view_becomes_a_snapshot_of_its_top_levels() -> None:
    out = np.zeros(16, dtype=EVENT_DTYPE)
    out["flags"] = 9  # left over from an earlier batch: must be cleared
    view = _view([(100, 1), (99, 2), (98, 3)], [(101, 4), (102, 5)])
    count = book_view_events(view, 2, out, 3, 10)  # depth 2, after 3 pending rows
    assert count == 6
    rows = out[3:9]
    assert rows["kind"].tolist() == [SNAPSHOT_BEGIN, BOOK_DELTA, BOOK_DELTA, BOOK_DELTA,
                                     BOOK_DELTA, SNAPSHOT_END]  # fmt: skip
    assert rows["side"].tolist() == [0, BUY, BUY, SELL, SELL, 0]
    assert rows["price"].tolist() == [0, 100, 99, 101, 102, 0]
    assert rows["qty"].tolist() == [0, 1, 2, 4, 5, 0]
    assert rows["seq"].tolist() == list(range(10, 16))
    assert set(rows["ts_ns"].tolist()) == {77}
    assert set(rows["symbol"].tolist()) == {1}
    assert set(rows["flags"].tolist()) == {0}
    assert out["flags"][:3].tolist() == [9, 9, 9]  # the pending rows are untouched


def test_a_book_view_that_does_not_fit_writes_nothing() -> None:
    out = np.zeros(5, dtype=EVENT_DTYPE)
    assert book_view_events(_view([(100, 1), (99, 1)], [(101, 1), (102, 1)]), 5, out, 0, 1) == -1
    assert not out["kind"].any()
    assert not out["seq"].any()


def test_trades_take_the_next_numbers_of_their_symbols_sequence() -> None:
    trades = empty_trades(3)
    trades["symbol_id"] = [0, 1, 0]
    trades["side"] = [BID, ASK, BID]
    trades["price_ticks"] = [100, 200, 101]
    trades["qty_lots"] = [1, 2, 3]
    trades["ts_ns"] = [5, 6, 7]
    seq = np.array([10, 20], dtype=np.int64)
    out = np.zeros(4, dtype=EVENT_DTYPE)
    assert trade_events(trades, out, 1, seq) == 3
    assert out["seq"][1:].tolist() == [11, 21, 12]
    assert seq.tolist() == [12, 21]
    assert set(out["kind"][1:].tolist()) == {TRADE}
    assert out["price"][1:].tolist() == [100, 200, 101]
    assert trade_events(trades, out, 2, seq) == -1  # no room: sequence unchanged
    assert seq.tolist() == [12, 21]
