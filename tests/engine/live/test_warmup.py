"""The engine's kernel warm-up, in-process (the engine-level check is in test_engine.py).

In-process, other tests of the same worker may have compiled the kernels already, so
"nothing new after the warm-up" is only a strict check when this file runs on its own;
the engine's own ``/status`` check (``kernels.compiled_late``) runs in a fresh process.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from engine.dtypes import ACTIVE, REDUCING, SELL
from engine.execution.book import checked_levels
from engine.execution.trade_feed import trades_to_records
from engine.kernels.features_nb import microprice
from engine.kernels.risk_nb import DENY_REASON_NAMES
from engine.live.decide import LiveDecider
from engine.live.release import Release
from engine.live.warmup import KernelWatch, made_up_instruments, warm_kernels

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _release() -> Release:
    return Release.from_mapping(
        {"version": "t1", "symbols": list(SYMBOLS), "model": {"builtin": "linear"},
         "strategy": {"taker_enabled": False}},
        source="test",
    )  # fmt: skip


def _denials() -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("bot4_engine_denials_total", {"reason": reason}) or 0.0
        for reason in DENY_REASON_NAMES[1:]
    }


def test_after_the_warm_up_a_live_decision_compiles_nothing_and_no_counter_moved() -> None:
    release, instruments = _release(), made_up_instruments(SYMBOLS)
    before = _denials()
    seconds = warm_kernels(release, instruments)
    assert seconds > 0
    assert _denials() == before  # the throwaway decider's made-up denials stay its own

    watch = KernelWatch()
    live = LiveDecider(release, tick_size=(0.01, 0.01), lot_size=(0.00001, 0.00001))
    for instrument in instruments:  # a deeper view than the warm-up's, as ccxt gives it
        bids = [[65000.0 - i * 0.5, 0.004, 3.0] for i in range(20)]
        asks = [[65001.0 + i * 0.5, 0.002, 1.0] for i in range(20)]
        levels, problem = checked_levels(bids, asks, instrument=instrument, depth=16,
                                         update_id=7, ts_ns=1, previous_update_id=None)  # fmt: skip
        assert problem is None
        live.add_book_view(levels)
        trade = {"id": "99", "timestamp": 1, "price": "65000.50", "amount": "0.001", "side": "sell"}
        live.add_trades(trades_to_records([trade], instrument))
    live.decide(ACTIVE)
    live.decide(REDUCING)
    live.apply_fill(symbol_id=1, side=SELL, price_ticks=6_500_100, qty_lots=2, maker=False,
                    ts_ns=2)  # fmt: skip
    live.decide(ACTIVE)
    assert live.desired_quotes()
    assert watch.new() == []


def test_the_watch_names_a_kernel_compiled_after_it_once() -> None:
    watch = KernelWatch()
    with_floats: Any = microprice  # the engine calls it with ints: floats compile anew
    assert with_floats(1.5, 2.0, 2.5, 2.0) == 2.0
    assert watch.new() == ["features_nb.microprice"]
    assert watch.new() == []
