"""Live decisions: book views and trades through the real kernels, fills from the venue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from engine.dtypes import (
    ACTIVE,
    BUY,
    HALTED,
    REDUCING,
    SELL,
    empty_book_levels,
    empty_trades,
)
from engine.kernels.layout import G_DENY_BASE
from engine.kernels.risk_nb import DENY_REASON_NAMES
from engine.live.decide import LiveDecider
from engine.live.release import Release

TICK = (0.01, 0.01)
LOT = (0.001, 0.001)


def release(**strategy: object) -> Release:
    return Release.from_mapping(
        {
            "version": "t1",
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "model": {"builtin": "linear"},
            "strategy": {"taker_enabled": False, **strategy},
        },
        source="test",
    )


def view(
    symbol: int, bid: int, ask: int, *, levels: int = 5, qty: int = 400, ts: int = 1
) -> np.ndarray:
    out = empty_book_levels(2 * levels)
    for k in range(levels):
        out[k] = (ts, symbol, BUY, bid - k, qty, 1)
        out[levels + k] = (ts, symbol, SELL, ask + k, qty, 1)
    return out


def decider(**strategy: object) -> LiveDecider:
    return LiveDecider(release(**strategy), tick_size=TICK, lot_size=LOT)


def test_a_book_view_yields_risk_checked_quotes_inside_the_band() -> None:
    d = decider()
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    decision = d.decide(ACTIVE)
    assert decision.events == 5 + 5 + 2
    assert d.book_valid(0)
    assert not d.book_valid(1)
    quotes = {(q.symbol_id, q.side): q for q in d.desired_quotes()}
    bid, ask = quotes[(0, BUY)], quotes[(0, SELL)]
    assert bid.qty_lots == ask.qty_lots == 5
    assert bid.price_ticks < ask.price_ticks
    assert 6_000_000 - 50 <= bid.price_ticks <= 6_000_009  # never crosses the best ask
    assert 6_000_001 <= ask.price_ticks <= 6_000_010 + 50
    assert quotes[(1, BUY)].qty_lots == 0  # no book, no quote


def test_halted_gate_withdraws_every_quote_and_reducing_blocks_new_risk() -> None:
    d = decider()
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    d.decide(ACTIVE)
    d.add_book_view(view(0, 6_000_000, 6_000_010, ts=2))
    d.decide(HALTED)
    assert all(q.qty_lots == 0 for q in d.desired_quotes())
    fresh = decider()
    fresh.add_book_view(view(0, 6_000_000, 6_000_010))
    fresh.decide(REDUCING)  # flat: every quote would add risk
    assert all(q.qty_lots == 0 for q in fresh.desired_quotes())


def test_venue_fill_moves_the_position_and_consumes_the_quote() -> None:
    d = decider()
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    d.decide(ACTIVE)
    bid = next(q for q in d.desired_quotes() if q.symbol_id == 0 and q.side == BUY)
    d.apply_fill(symbol_id=0, side=BUY, price_ticks=bid.price_ticks, qty_lots=2, maker=True,
                 ts_ns=5)  # fmt: skip
    assert d.positions_lots() == {"BTC/USDT": 2, "ETH/USDT": 0}
    left = next(q for q in d.desired_quotes() if q.symbol_id == 0 and q.side == BUY)
    assert left.qty_lots == bid.qty_lots - 2
    d.apply_fill(symbol_id=0, side=BUY, price_ticks=bid.price_ticks, qty_lots=3, maker=True,
                 ts_ns=6)  # fmt: skip
    gone = next(q for q in d.desired_quotes() if q.symbol_id == 0 and q.side == BUY)
    assert gone.qty_lots == 0


def test_live_mode_never_simulates_a_fill_from_public_trades() -> None:
    d = decider()
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    d.decide(ACTIVE)
    trades = empty_trades(3)
    for k in range(3):  # sellers sweep far through our bid: replay would fill us
        trades[k] = (10 + k, 0, SELL, 5_990_000, 1_000, 100 + k)
    d.add_trades(trades)
    d.decide(ACTIVE)
    assert d.positions_lots()["BTC/USDT"] == 0


def test_full_buffer_is_refused_not_overwritten() -> None:
    d = LiveDecider(release(), tick_size=TICK, lot_size=LOT, buffer_events=20)
    d.add_book_view(view(0, 6_000_000, 6_000_010))  # 12 events
    with pytest.raises(BufferError, match="event buffer full"):
        d.add_book_view(view(1, 300_000, 300_010))
    assert d.pending == 12
    assert d.decide(ACTIVE).events == 12
    assert d.room() == 20


def test_recorded_live_events_replay_to_the_same_book(tmp_path: Path) -> None:
    from engine.data.format import EventFile
    from engine.replay.state import EngineState

    d = decider()
    path = tmp_path / "live.npy"
    d.record_to(path)
    d.add_book_view(view(0, 6_000_000, 6_000_010, ts=100))
    trades = empty_trades(1)
    trades[0] = (50, 0, BUY, 6_000_010, 3, 7)  # stamped earlier than the book: raised to 100
    d.add_trades(trades)
    d.decide(ACTIVE)
    d.add_book_view(view(0, 6_000_001, 6_000_011, ts=200))
    d.decide(ACTIVE)
    d.close_recording()
    file = EventFile.open(path)  # validates: dtype, sizes, sorted timestamps
    events = file.read_all()
    assert events.shape[0] == 12 + 1 + 12
    assert events["ts_ns"][12] == 100
    replayed = EngineState.create(symbols=file.header.symbols, tick_size=file.header.tick_size,
                                  lot_size=file.header.lot_size, config=d.release.config,
                                  weights=d.release.model)  # fmt: skip
    replayed.run(events)
    assert np.array_equal(replayed.book[0], d.state.book[0])


def test_a_state_imposed_for_one_batch_does_not_stick_as_the_kernels_own() -> None:
    d = decider()
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    assert d.decide(REDUCING).kernel_state == ACTIVE  # a passing condition, not a drawdown
    d.add_book_view(view(0, 6_000_000, 6_000_010, ts=60 * 10**9))  # past the retry wait
    assert d.decide(ACTIVE).kernel_state == ACTIVE
    assert any(q.qty_lots > 0 for q in d.desired_quotes())  # quoting again once it cleared


def test_a_position_past_its_stop_loss_yields_one_ioc_taker_to_close_it() -> None:
    d = LiveDecider(
        Release.from_mapping(
            {"version": "t1", "symbols": ["BTC/USDT", "ETH/USDT"], "model": {"builtin": "linear"},
             "strategy": {"taker_enabled": False}, "post_trade": {"stop_loss_ticks": 20}},
            source="test",
        ),
        tick_size=TICK,
        lot_size=LOT,
    )  # fmt: skip
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    assert d.decide(ACTIVE).takers == ()  # flat: quotes only, no taker
    d.set_position(0, qty_lots=30, avg_price_ticks=6_000_500.0)  # 500 ticks under water
    d.add_book_view(view(0, 6_000_000, 6_000_010, ts=2))
    (stop,) = d.decide(ACTIVE).takers
    assert (stop.symbol_id, stop.side, stop.qty_lots) == (0, SELL, 30)
    assert stop.price_ticks <= 6_000_000  # sells into the bid, however far it must go


def _denials(reason: str) -> float:
    value = REGISTRY.get_sample_value("bot4_engine_denials_total", {"reason": reason})
    return value or 0.0


def test_risk_denials_are_counted_by_reason_once_each() -> None:
    d = decider()
    before = {reason: _denials(reason) for reason in DENY_REASON_NAMES[1:]}
    d.add_book_view(view(0, 6_000_000, 6_000_010))
    d.decide(REDUCING)  # flat: neither quote reduces a position
    d.decide(REDUCING)  # nothing new: nothing more counted
    added = {reason: _denials(reason) - before[reason] for reason in before}
    kernel = d.state.g[G_DENY_BASE + 1 : G_DENY_BASE + len(DENY_REASON_NAMES)].tolist()
    assert added["not_reducing"] >= 2
    assert list(added.values()) == kernel  # the metric follows the kernel's counters exactly
