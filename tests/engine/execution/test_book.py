from __future__ import annotations

import asyncio
import random
import re
from decimal import Decimal

import ccxt
import pytest

from engine.dtypes import ASK, BID, BookLevels
from engine.errors import OffGridError, OperationalError
from engine.execution.backoff import BackoffPolicy
from engine.execution.book import book_to_levels, checked_levels, integrity_problem
from engine.execution.book_feed import BookFeed, BookFeedConfig, BookStatus
from engine.execution.gateway import VenueGateway
from engine.execution.instruments import Instrument
from engine.execution.watchdog import StreamWatchdog
from tests.engine.execution.fakes import ManualClock, ScriptedExchange, sample_value

BTC = Instrument(
    symbol="BTC/USDT",
    symbol_id=3,
    market_id="BTCUSDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.001"),
)


class StopFeedError(Exception):
    """Ends a feed loop in a test (not a venue error, so it propagates)."""


def _book(nonce: int, bids, asks):
    return {"nonce": nonce, "timestamp": 1_700_000_000_000, "bids": bids, "asks": asks}


GOOD = ([[100.01, 1.5], [100.0, 2.0]], [[100.02, 0.5], [100.05, 1.0]])
CROSSED_BOOK = ([[100.03, 1.0]], [[100.02, 1.0]])


def test_book_view_becomes_records_in_ticks_and_lots():
    levels = book_to_levels(*GOOD, instrument=BTC, depth=20, update_id=42, ts_ns=7)
    assert levels["side"].tolist() == [BID, BID, ASK, ASK]
    assert levels["price_ticks"].tolist() == [10001, 10000, 10002, 10005]
    assert levels["qty_lots"].tolist() == [1500, 2000, 500, 1000]
    assert set(levels["update_id"].tolist()) == {42}
    assert set(levels["symbol_id"].tolist()) == {3}


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([[100.005, 1.0]], [[100.02, 1.0]], "BTC/USDT price: 100.005 "),
        ([[100.0, 1.0]], [[100.02, 1.0], [100.03, 0.0005]], "BTC/USDT quantity: 0.0005 "),
        ([[100.0, 1.0]], [[float("inf"), 1.0]], "BTC/USDT price: inf "),
    ],
)
def test_an_off_grid_level_is_named_with_its_side_value(bids, asks, message):
    with pytest.raises(OffGridError, match=re.escape(message)):
        book_to_levels(bids, asks, instrument=BTC, depth=20, update_id=1, ts_ns=0)


def test_depth_limits_the_levels_per_side():
    levels = book_to_levels(*GOOD, instrument=BTC, depth=1, update_id=1, ts_ns=0)
    assert len(levels) == 2


@pytest.mark.parametrize(
    ("bids", "asks", "previous", "problem"),
    [
        (*CROSSED_BOOK, None, "crossed"),
        ([[100.0, 1.0]], [[100.0, 1.0]], None, "crossed"),
        ([[100.0, 0.0]], [[100.02, 1.0]], None, "non_positive_quantity"),
        ([[100.0, -1.0]], [[100.02, 1.0]], None, "non_positive_quantity"),
        ([[100.0, 1.0], [100.01, 1.0]], [[100.02, 1.0]], None, "unsorted"),
        (*GOOD, 42, "update_id_not_increasing"),
        ([[100.005, 1.0]], [[100.02, 1.0]], None, "off_grid"),
        ([[100.0, float("nan")]], [[100.02, 1.0]], None, "off_grid"),
        ([[100.0, 1.0], [100.0, 2.0]], [[100.02, 1.0]], None, "unsorted"),  # a level twice
        ([[100.0, 1.0]], [[100.03, 1.0], [100.02, 1.0]], None, "unsorted"),
        ([[100.0, 1.0]], [[0.0, 1.0]], None, "non_positive_price"),
        ([[100.0]], [[100.02, 1.0]], None, "malformed_level"),
        ([[100.0, 1.0], [99.99]], [[100.02, 1.0]], None, "malformed_level"),  # ragged
        ([["a", 1.0]], [[100.02, 1.0]], None, "malformed_level"),
    ],
)
def test_integrity_checks_reject_bad_books(bids, asks, previous, problem):
    _, found = checked_levels(
        bids, asks, instrument=BTC, depth=20, update_id=42, ts_ns=0, previous_update_id=previous
    )
    assert found == problem


def test_extra_fields_of_a_level_are_dropped_and_empty_sides_allowed():
    # some venues send [price, amount, order count]; a side may be empty
    bids = [[100.0, 1.0, 3], [99.99, 2.0, 1]]
    levels, problem = checked_levels(
        bids, [], instrument=BTC, depth=20, update_id=5, ts_ns=0, previous_update_id=4
    )
    assert problem is None
    assert levels["price_ticks"].tolist() == [10000, 9999]
    assert levels["qty_lots"].tolist() == [1000, 2000]


def test_sound_book_passes():
    levels = book_to_levels(*GOOD, instrument=BTC, depth=20, update_id=43, ts_ns=0)
    assert integrity_problem(levels, previous_update_id=42) is None


def _feed(exchange: ScriptedExchange, clock: ManualClock, got: list[BookLevels], **config):
    gateway = VenueGateway(exchange, venue="book_unit", secrets=[], clock=clock)
    watchdog = StreamWatchdog(venue="book_unit", clock=clock)
    feed = BookFeed(
        gateway,
        instrument=BTC,
        on_levels=got.append,
        watchdog=watchdog,
        config=BookFeedConfig(
            backoff=BackoffPolicy(base_s=0.1, max_s=1.0), stale_after_s=5.0, **config
        ),
    )
    feed._backoff._rng = random.Random(0)  # deterministic jitter
    return feed, watchdog


async def test_sequence_gap_marks_the_book_invalid_then_resyncs():
    exchange, clock = ScriptedExchange(), ManualClock()
    got: list[BookLevels] = []
    exchange.plan(
        "watch_order_book",
        _book(10, *GOOD),
        ccxt.ChecksumError("gap"),  # ccxt saw U != previous u + 1 and dropped its book
        _book(3, *GOOD),  # the new snapshot may carry any id
        StopFeedError(),
    )
    feed, _ = _feed(exchange, clock, got)
    before = sample_value(
        "bot4_venue_book_resyncs_total",
        {"venue": "book_unit", "symbol": "BTC/USDT", "reason": "gap"},
    )
    with pytest.raises(StopFeedError):
        await feed.run()
    assert [int(batch["update_id"][0]) for batch in got] == [10, 3]
    assert feed.status is BookStatus.VALID
    assert feed.resyncs == 1
    after = sample_value(
        "bot4_venue_book_resyncs_total",
        {"venue": "book_unit", "symbol": "BTC/USDT", "reason": "gap"},
    )
    assert after - before == 1


async def test_crossed_book_is_never_delivered_and_forces_a_resync():
    exchange, clock = ScriptedExchange(), ManualClock()
    got: list[BookLevels] = []
    exchange.plan("watch_order_book", _book(10, *CROSSED_BOOK), _book(11, *GOOD), StopFeedError())
    exchange.plan("un_watch_order_book", None)
    feed, _ = _feed(exchange, clock, got)
    with pytest.raises(StopFeedError):
        await feed.run()
    assert len(got) == 1
    assert int(got[0]["update_id"][0]) == 11
    assert ("un_watch_order_book", ("BTC/USDT",)) in exchange.calls


async def test_failed_resync_of_unsubscribe_falls_back_to_a_new_connection():
    exchange, clock = ScriptedExchange(), ManualClock()
    got: list[BookLevels] = []
    exchange.plan("watch_order_book", _book(10, *CROSSED_BOOK), _book(11, *GOOD), StopFeedError())
    exchange.plan("un_watch_order_book", ccxt.NotSupported("no"))
    feed, _ = _feed(exchange, clock, got)
    with pytest.raises(StopFeedError):
        await feed.run()
    assert exchange.closed


async def test_resync_gives_up_after_bounded_consecutive_failures():
    exchange, clock = ScriptedExchange(), ManualClock()
    got: list[BookLevels] = []
    exchange.plan("watch_order_book", ccxt.ChecksumError("gap"))
    feed, _ = _feed(exchange, clock, got, max_consecutive_failures=3)
    with pytest.raises(OperationalError, match="resync"):
        await feed.run()
    assert feed.status is BookStatus.FAILED
    assert len(clock.sleeps) == 3
    assert clock.sleeps[-1] <= 0.4  # full jitter below base * 2**2


async def test_silent_stream_is_reported_stale_and_fresh_again():
    clock, changes = ManualClock(), []
    watchdog = StreamWatchdog(
        venue="stale_unit", clock=clock, on_change=lambda s, stale: changes.append((s, stale))
    )
    watchdog.register("book:X", stale_after_s=5.0)
    clock.advance(4.0)
    assert watchdog.check() == []
    clock.advance(2.0)
    assert watchdog.check() == ["book:X"]
    assert watchdog.is_stale("book:X")
    watchdog.touch("book:X")
    assert changes == [("book:X", True), ("book:X", False)]
    labels = {"venue": "stale_unit", "stream": "book:X"}
    assert sample_value("bot4_venue_stream_stale_total", labels) == 1


class _SilentAfterScript(ScriptedExchange):
    """A stream that goes silent: ``SILENT`` in the script blocks until cancelled."""

    SILENT = object()

    async def watch_order_book(self, symbol: str) -> object:
        outcome = self._next("watch_order_book", (symbol,))
        if outcome is self.SILENT:
            await asyncio.Event().wait()
        return outcome


async def test_silent_stream_is_resubscribed_by_the_feed_itself():
    """The wait for a message is bounded (real loop time, 10 ms here); the rest is faked."""
    exchange, clock = _SilentAfterScript(), ManualClock()
    got: list[BookLevels] = []
    silent = _SilentAfterScript.SILENT
    exchange.plan("watch_order_book", _book(10, *GOOD), silent, _book(4, *GOOD), StopFeedError())
    exchange.plan("un_watch_order_book", None)
    feed, _ = _feed(exchange, clock, got, resync_after_silent_s=0.01)
    labels = {"venue": "book_unit", "symbol": "BTC/USDT", "reason": "stale"}
    before = sample_value("bot4_venue_book_resyncs_total", labels)
    with pytest.raises(StopFeedError):
        await feed.run()
    assert [int(batch["update_id"][0]) for batch in got] == [10, 4]
    assert ("un_watch_order_book", ("BTC/USDT",)) in exchange.calls
    assert feed.resyncs == 1
    assert feed.status is BookStatus.VALID
    assert sample_value("bot4_venue_book_resyncs_total", labels) - before == 1


async def test_stream_that_stays_silent_fails_the_feed_after_bounded_resyncs():
    exchange, clock = _SilentAfterScript(), ManualClock()
    exchange.plan("watch_order_book", _SilentAfterScript.SILENT)
    exchange.plan("un_watch_order_book", None)
    feed, _ = _feed(exchange, clock, [], resync_after_silent_s=0.01, max_consecutive_failures=3)
    with pytest.raises(OperationalError, match="stale"):
        await feed.run()
    assert feed.status is BookStatus.FAILED
    assert len(clock.sleeps) == 3  # backed off between resubscriptions
    assert [name for name, _ in exchange.calls].count("un_watch_order_book") == 4


def test_resync_after_silence_must_be_positive():
    with pytest.raises(ValueError, match="resync_after_silent_s"):
        BookFeedConfig(resync_after_silent_s=0.0)
