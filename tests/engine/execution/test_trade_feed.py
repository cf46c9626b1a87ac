"""TradeFeed with a scripted ccxt client and a manual clock.

Unit level: the simulator cannot show trade-id gaps inside a live stream or a gap wider
than its recent-trades window on demand; those cases are scripted here. Reconnect and
backfill against the real simulator are in ``test_simulator.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import numpy as np
import pytest

from engine.dtypes import ASK, BID, Trades
from engine.errors import OffGridError
from engine.execution.gateway import VenueGateway
from engine.execution.instruments import Instrument
from engine.execution.trade_feed import BACKFILL_PAGE, TradeFeed, trades_to_records
from engine.execution.watchdog import StreamWatchdog
from tests.engine.execution.fakes import ManualClock, ScriptedExchange, sample_value

BTC = Instrument(
    symbol="BTC/USDT",
    symbol_id=2,
    market_id="BTCUSDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.001"),
)


class StopFeedError(Exception):
    """Ends a feed loop in a test (not a venue error, so it propagates)."""


def _trade(trade_id: int, *, price: float = 100.01, side: str = "buy") -> dict[str, Any]:
    return {
        "id": str(trade_id),
        "timestamp": 1_700_000_000_000 + trade_id,
        "side": side,
        "price": price,
        "amount": 0.002,
    }


def _feed(
    exchange: ScriptedExchange, *, last_trade_id: int | None = None
) -> tuple[TradeFeed, list[Trades]]:
    clock = ManualClock()
    gateway = VenueGateway(exchange, venue="binance", secrets=[], clock=clock)
    batches: list[Trades] = []
    feed = TradeFeed(
        gateway,
        instrument=BTC,
        on_trades=batches.append,
        watchdog=StreamWatchdog(venue="binance", clock=clock),
        last_trade_id=last_trade_id,
    )
    return feed, batches


def _ids(batches: list[Trades]) -> list[int]:
    return [int(i) for batch in batches for i in batch["trade_id"]]


def _backfill_calls(exchange: ScriptedExchange) -> list[tuple[Any, ...]]:
    return [args for name, args in exchange.calls if name == "fetch_trades"]


def test_trades_become_records_in_ticks_and_lots():
    records = trades_to_records(
        [_trade(7, price=100.01, side="buy"), _trade(8, price=99.5, side="sell")], BTC
    )
    assert records["trade_id"].tolist() == [7, 8]
    assert records["price_ticks"].tolist() == [10001, 9950]
    assert records["qty_lots"].tolist() == [2, 2]
    assert records["side"].tolist() == [BID, ASK]
    assert records["symbol_id"].tolist() == [2, 2]
    assert records["ts_ns"].tolist() == [
        (1_700_000_000_000 + 7) * 1_000_000,
        (1_700_000_000_000 + 8) * 1_000_000,
    ]


def test_no_trades_become_an_empty_array():
    records = trades_to_records([], BTC)
    assert records.shape == (0,)
    assert records.dtype.names is not None
    assert "trade_id" in records.dtype.names


def test_off_grid_trade_price_is_refused():
    with pytest.raises(OffGridError, match=r"trade price: 100\.015 "):
        trades_to_records([_trade(1, price=100.015)], BTC)


@pytest.mark.parametrize("amount", [0.0025, float("nan"), float("inf")])
def test_off_grid_trade_amount_is_refused_and_named(amount: float) -> None:
    rows = [_trade(1), {**_trade(2), "amount": amount}]
    with pytest.raises(OffGridError, match=f"trade amount: {amount!r} "):
        trades_to_records(rows, BTC)


async def test_gap_inside_the_live_stream_is_backfilled_before_the_batch():
    exchange = ScriptedExchange()
    exchange.plan(
        "watch_trades",
        [_trade(1), _trade(2)],
        [_trade(6), _trade(5)],  # 3 and 4 missed; the batch is also out of order
        StopFeedError(),
    )
    # the venue's recent trades, newest last, reaching past the gap
    exchange.plan("fetch_trades", [_trade(i) for i in range(1, 7)])
    feed, batches = _feed(exchange)
    with pytest.raises(StopFeedError):
        await feed.run()
    assert _ids(batches) == [1, 2, 3, 4, 5, 6]
    assert feed.backfilled == 2
    assert feed.last_trade_id == 6
    (call,) = _backfill_calls(exchange)
    assert call[3]["fetchTradesMethod"] == "publicGetTrades"  # served by Binance and the sim


async def test_reconnect_backfills_missed_trades_each_id_once_in_order():
    exchange = ScriptedExchange()
    exchange.plan(
        "watch_trades",
        [_trade(10), _trade(11)],
        ccxt.NetworkError("connection closed"),
        [_trade(14), _trade(15)],  # the stream resumes with trades already backfilled
        StopFeedError(),
    )
    exchange.plan("fetch_trades", [_trade(i) for i in range(8, 15)])
    feed, batches = _feed(exchange)
    reconnects = sample_value(
        "bot4_venue_websocket_reconnects_total", {"venue": "binance", "stream": feed.stream}
    )
    with pytest.raises(StopFeedError):
        await feed.run()
    assert _ids(batches) == [10, 11, 12, 13, 14, 15]
    assert feed.backfilled == 3
    assert (
        sample_value(
            "bot4_venue_websocket_reconnects_total", {"venue": "binance", "stream": feed.stream}
        )
        - reconnects
        == 1
    )


async def test_resuming_from_a_known_trade_id_backfills_first():
    exchange = ScriptedExchange()
    exchange.plan("watch_trades", [_trade(21)], StopFeedError())
    exchange.plan("fetch_trades", [_trade(i) for i in range(15, 21)])
    feed, batches = _feed(exchange, last_trade_id=17)
    with pytest.raises(StopFeedError):
        await feed.run()
    assert _ids(batches) == [18, 19, 20, 21]


async def test_gap_wider_than_the_recent_window_is_counted_as_lost():
    exchange = ScriptedExchange()
    newest = 5000
    window = [_trade(i) for i in range(newest - BACKFILL_PAGE + 1, newest + 1)]
    exchange.plan("fetch_trades", window)
    feed, batches = _feed(exchange, last_trade_id=100)
    labels = {"venue": "binance", "symbol": "BTC/USDT"}
    lost = sample_value("bot4_venue_trades_lost_total", labels)
    emitted = await feed.backfill(until_trade_id=None)
    assert emitted == BACKFILL_PAGE
    assert feed.lost == newest - BACKFILL_PAGE - 100
    assert sample_value("bot4_venue_trades_lost_total", labels) - lost == feed.lost
    ids = np.array(_ids(batches))
    assert (np.diff(ids) == 1).all()
    assert int(ids[-1]) == newest


async def test_backfill_without_a_known_trade_id_fetches_nothing():
    exchange = ScriptedExchange()
    feed, batches = _feed(exchange)
    assert await feed.backfill(until_trade_id=None) == 0
    assert batches == []
    assert _backfill_calls(exchange) == []
