"""QuoteSync's self-cross guard: a new quote never meets our own order on the other side.

The manager here is a stand-in holding only the order table: the guard is a decision over
that table, taken before anything is sent (the engine tests run the whole path against
the simulator). Each test runs on an event loop because QuoteSync starts its sends as
tasks; the stand-in records the placements instead of sending them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from engine.dtypes import BUY, SELL
from engine.execution import Instrument, OrderRequest
from engine.live.decide import Quote
from engine.live.order_table import LocalOrder, OrderPhase, OrderTable
from engine.live.quoting import QuoteSync, Tick

BTC = Instrument(
    symbol="BTC/USDT",
    symbol_id=0,
    market_id="BTCUSDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
)

NO_TICK = Tick(received_ns=0)  # these tests do not look at latencies


class _Manager:
    """The order table, and a record of what would have been sent."""

    def __init__(self) -> None:
        self.table = OrderTable()
        self.request_started: dict[str, tuple[int, int]] = {}
        self.submitted: list[dict[str, Any]] = []
        self.venue_answers = asyncio.Event()  # a send waits for its answer until set
        self.venue_answers.set()

    async def submit(self, **request: Any) -> LocalOrder:
        self.submitted.append(request)
        await self.venue_answers.wait()
        cid = f"blue-1-{len(self.submitted) + 100}"
        order = LocalOrder(request=OrderRequest(client_order_id=cid, **{
            k: request[k] for k in ("symbol", "side", "type", "amount", "price", "time_in_force")
        }))  # fmt: skip
        self.table.add(order)
        return order

    async def cancel(self, client_order_id: str) -> None:
        self.submitted.append({"cancel": client_order_id})


class _Decider:
    def position_lots(self, _symbol_id: int) -> int:
        return 0

    def quote_gone(self, *_: Any, **__: Any) -> None:
        pass

    def mid_ticks(self, _symbol_id: int) -> float:
        return 10_000.5  # the arrival mid journaled with each order


async def _sync(quotes: list[Quote], *, ask_ticks: int) -> list[dict[str, Any]]:
    """Rest an ask at ``ask_ticks`` through QuoteSync; sync ``quotes``; return the sends."""
    manager = _Manager()
    sync = QuoteSync(manager, _Decider(), [BTC], on_fenced=lambda _: None)  # type: ignore[arg-type]
    sync.sync([Quote(symbol_id=0, side=SELL, price_ticks=ask_ticks, qty_lots=20)], tick=NO_TICK)
    await sync.settle()
    (ask,) = manager.table.live()
    ask.advance(OrderPhase.ACKED)  # the venue took it: it rests
    manager.submitted.clear()
    sync.sync(quotes, tick=NO_TICK)
    await sync.settle()
    return manager.submitted


def test_a_bid_at_or_above_our_resting_ask_waits() -> None:
    # the market moved up: the new bid 100.00 reaches the old ask at 100.00 still resting
    quotes = [
        Quote(symbol_id=0, side=BUY, price_ticks=10000, qty_lots=20),
        Quote(symbol_id=0, side=SELL, price_ticks=10010, qty_lots=20),
    ]
    sent = asyncio.run(_sync(quotes, ask_ticks=10000))
    assert {"cancel": "blue-1-101"} in sent  # the stale ask goes first ...
    assert not any(s.get("side") == "buy" for s in sent)  # ... the bid waits for it


def test_a_bid_below_our_resting_ask_is_placed() -> None:
    quotes = [Quote(symbol_id=0, side=BUY, price_ticks=9999, qty_lots=20)]
    sent = asyncio.run(_sync(quotes, ask_ticks=10000))
    assert [s.get("side") for s in sent] == ["buy"]
    assert sent[0]["price"] == Decimal("99.99")
    # the mid the decision saw goes to the journal with the order (execution quality)
    assert Decimal(sent[0]["context"]["arrival_mid"]) == Decimal("100.005")


async def _bid_while_the_ask_is_in_flight() -> list[dict[str, Any]]:
    manager = _Manager()
    sync = QuoteSync(manager, _Decider(), [BTC], on_fenced=lambda _: None)  # type: ignore[arg-type]
    manager.venue_answers.clear()  # the ask's send is under way: no answer, no order id yet
    sync.sync([Quote(symbol_id=0, side=SELL, price_ticks=10000, qty_lots=20)], tick=NO_TICK)
    await asyncio.sleep(0)
    sync.sync([Quote(symbol_id=0, side=BUY, price_ticks=10000, qty_lots=20)], tick=NO_TICK)
    await asyncio.sleep(0)
    manager.venue_answers.set()
    await sync.settle()
    return manager.submitted


def test_a_bid_meeting_an_ask_still_being_placed_waits() -> None:
    sent = asyncio.run(_bid_while_the_ask_is_in_flight())
    assert [s.get("side") for s in sent] == ["sell"]


async def _sent_during_sync() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    manager = _Manager()
    sync = QuoteSync(manager, _Decider(), [BTC], on_fenced=lambda _: None)  # type: ignore[arg-type]
    manager.venue_answers.clear()
    sync.sync([Quote(symbol_id=0, side=BUY, price_ticks=9999, qty_lots=20)], tick=NO_TICK)
    during = list(manager.submitted)  # nothing awaited since sync() was called
    manager.venue_answers.set()
    await sync.settle()
    return during, manager.submitted


def test_a_quote_reaches_the_order_manager_within_the_sync_call() -> None:
    # started eagerly: not one loop turn later, behind whatever else was ready to run
    during, after = asyncio.run(_sent_during_sync())
    assert [s.get("side") for s in during] == ["buy"]
    assert after == during  # and sent once
