"""Outages and acknowledgements of the journal, on clocks the tests drive."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.journal import AckLog, FillRecord, JournalEvent, JournalKind, OutageLog


class Clocks:
    """A wall clock (epoch seconds) and a monotonic one, moved together by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.mono = 50.0

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float, *, wall_step: float = 0.0) -> None:
        self.mono += seconds
        self.now += seconds + wall_step


def events(count: int) -> list[JournalEvent]:
    return [JournalEvent(kind=JournalKind.ORDER_NEW, body={}) for _ in range(count)]


def fill(trade_id: str) -> FillRecord:
    return FillRecord(
        venue="binance",
        trade_id=trade_id,
        client_order_id="blue-1-1",
        symbol="BTC/USDT",
        side="sell",
        price=Decimal(1),
        qty=Decimal(1),
        fee=Decimal(0),
        fee_asset=None,
        traded_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_an_outage_runs_from_the_first_failure_to_the_next_success() -> None:
    clocks = Clocks()
    log = OutageLog(wall=clocks.wall, monotonic=clocks.monotonic)
    started = clocks.now
    log.failed("JournalUnavailableError: connection refused")
    clocks.advance(1.0)
    log.failed("JournalUnavailableError: the database system is starting up")
    assert log.failing_since == started
    # the wall clock is stepped back by NTP meanwhile: the duration does not care
    clocks.advance(1.5, wall_step=-10.0)

    outage = log.succeeded()

    assert outage is not None
    assert outage.seconds == 2.5
    assert outage.started_at == started
    assert outage.ended_at == clocks.now
    assert outage.failed_attempts == 2
    assert outage.last_error == "JournalUnavailableError: the database system is starting up"
    assert log.failing_since is None
    assert log.succeeded() is None  # a success with nothing failing opens nothing


def test_the_outage_in_progress_is_reported_last_with_its_duration_so_far() -> None:
    clocks = Clocks()
    log = OutageLog(keep=2, wall=clocks.wall, monotonic=clocks.monotonic)
    for seconds in (1.0, 2.0, 3.0):
        log.failed(f"outage of {seconds}")
        clocks.advance(seconds)
        log.succeeded()
    log.failed("x" * 1000)
    clocks.advance(0.25)

    outages = log.recent()

    assert [o.seconds for o in outages] == [2.0, 3.0, 0.25]  # the oldest was let go
    assert outages[-1].ended_at is None
    assert len(outages[-1].last_error) == 300
    assert [o.seconds for o in log.recent(1)] == [0.25]
    assert outages[0].as_json() == {
        "started_at": outages[0].started_at, "ended_at": outages[0].ended_at, "seconds": 2.0,
        "failed_attempts": 1, "last_error": "outage of 2.0",
    }  # fmt: skip


def test_acks_since_returns_exactly_what_was_acknowledged_at_or_after_it() -> None:
    clocks = Clocks()
    acks = AckLog(wall=clocks.wall)
    before = events(3)
    acks.acknowledged(before, [fill("1")])
    clocks.advance(1.0)
    since = clocks.now
    after = events(2)
    acks.acknowledged(after, [fill("2"), fill("3")])
    clocks.advance(1.0)
    later = events(1)
    acks.acknowledged(later, [])

    answer = acks.since(since)

    assert answer.event_ids == [e.event_id for e in after + later]
    assert answer.fills == [
        ("binance", "BTC/USDT", "2", "sell"),
        ("binance", "BTC/USDT", "3", "sell"),
    ]
    assert answer.truncated is False
    assert acks.total == 9
    assert acks.since(clocks.now + 0.001).event_ids == []


@pytest.mark.parametrize(
    ("since_offset", "truncated", "answered"),
    [(-0.5, True, 4), (0.0, True, 4), (1.0, False, 3)],
    ids=["dropped_after_since", "dropped_at_since", "dropped_only_before_since"],
)
def test_acks_say_truncated_only_when_the_ring_let_go_of_something_at_or_after_since(
    since_offset: float, truncated: bool, answered: int
) -> None:
    clocks = Clocks()
    acks = AckLog(maxlen=4, wall=clocks.wall)
    dropped_at = clocks.now
    acks.acknowledged(events(3), [])
    clocks.advance(2.0)
    acks.acknowledged(events(3), [])  # two of the first three are let go

    answer = acks.since(dropped_at + since_offset)

    assert answer.truncated is truncated
    assert len(answer.event_ids) == answered


def test_a_batch_larger_than_the_ring_is_truncated_at_its_own_time() -> None:
    clocks = Clocks()
    acks = AckLog(maxlen=2, wall=clocks.wall)
    batch = events(5)
    acks.acknowledged(batch, [])

    answer = acks.since(clocks.now)

    assert answer.event_ids == [e.event_id for e in batch[-2:]]
    assert answer.truncated is True
