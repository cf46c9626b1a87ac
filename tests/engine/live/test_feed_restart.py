"""A market-data feed that gives up is started again, and trading resumes without anyone.

The feed here is a stand-in coroutine that fails on cue: the venue outage that makes a real
feed give up (too many failed reconnects) is what the chaos suite and the soak inject; this
test pins the engine's supervision rule itself (``LiveEngine._keep_feeding``) on a real
trading gate, with the pauses shortened.
"""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace

import pytest

from engine.live import engine as engine_module
from engine.live.engine import LiveEngine
from engine.live.gate import ACTIVE, MARKET_DATA_CONDITION, REDUCING, TradingGate


async def test_a_feed_that_gave_up_is_restarted_and_the_hold_clears_once_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "FEED_RESTART_FIRST_S", 0.05)
    monkeypatch.setattr(engine_module, "FEED_HEALTHY_AFTER_S", 0.3)
    fake = SimpleNamespace(gate=TradingGate(), _failed_feeds=set())
    fake._feed_recovered = functools.partial(LiveEngine._feed_recovered, fake)  # type: ignore[arg-type]
    runs = 0
    forever = asyncio.Event()

    async def feed() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError("book:BTC/USDT: too many failed reconnects")  # gave up
        await forever.wait()  # the third run streams on

    task = asyncio.create_task(LiveEngine._keep_feeding(fake, feed, "book:BTC/USDT"))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.2)
        assert runs == 3  # restarted twice, after 0.05 s then 0.1 s
        assert fake.gate.effective == REDUCING  # no new risk until the feed proves itself
        assert MARKET_DATA_CONDITION in fake.gate.holds
        await asyncio.sleep(0.4)  # the third run has lasted FEED_HEALTHY_AFTER_S
        assert fake.gate.effective == ACTIVE
        assert fake.gate.holds == {}
        assert not task.done()
    finally:
        task.cancel()
