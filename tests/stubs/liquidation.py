"""Builders for liquidation tests: a position to unwind, a worker, the venue's view.

Everything is real: the engine (``bot4 engine run`` on LocalPlatform), PostgreSQL, the
simulator and Temporal. A position is made the way a desk gets one: a second account of
the simulator sells into the engine's resting bid until the engine is long enough.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from engine.dtypes import BUY
from engine.live.control import post_admin
from tests.engine.live.harness import SYMBOLS
from tests.stubs.deploy import RELEASE, Desk, eventually
from tests.stubs.desk_checks import venue_orders
from tests.stubs.engine_control import TOKEN
from tests.stubs.exchange_sim import OTHER_KEY, OTHER_SECRET, ThreadedSim, ccxt_binance
from workflows.liquidation import LiquidationInput, LiquidationResult, LiquidationWorkflow
from workflows.liquidation import workflow_id as liquidation_id
from workflows.liquidation.activities import LiquidationActivities, LiquidationConfig
from workflows.registry import liquidation_activities

SYMBOL = "BTC/USDT"
LOT = Decimal("0.00001")
# blue requotes within milliseconds and its fills reach the journal by polling: a sale at
# its bid often finds the bid already moved, so building takes a varying number of tries
BUILD_WITHIN_S = 120.0
# a resting quote moves only when the wanted price is this far away (the release's
# requote_ticks): a sale this far under the wanted bid reaches the one resting
REQUOTE_SLACK_TICKS = 2


async def position_lots(desk: Desk, symbol: str = SYMBOL) -> int:
    """Return the leader's journaled position in lots (0 when blue does not answer)."""
    status = await desk.status("blue")
    return 0 if status is None else int(status["positions"][symbol])


def write_liquidation_release(folder: Path) -> Path:
    """Write the test release with quotes of 100 lots and no stop-loss (a stable position)."""
    document = json.loads(json.dumps(RELEASE))
    document["version"] = f"liq{uuid.uuid4().hex[:8]}"
    document["strategy"]["quote_lots"] = 100
    document["post_trade"]["stop_loss_ticks"] = 10_000_000
    path = folder / f"release-{document['version']}.json"
    path.write_text(json.dumps(document))
    return path


async def build_long(
    desk: Desk,
    port: int,
    lots: int,
    *,
    symbol: str = SYMBOL,
    freeze: bool = True,
    sim: ThreadedSim | None = None,
) -> int:
    """Sell into blue's bid from the other account until blue is long ``lots``; return it.

    Each sale is an IOC down to blue's bid (the one its status says it wants) for
    everything bid down there, so it reaches blue (a market sale of a fixed size often
    only met the liquidity providers' better bids). Blue's own account is never asked:
    its request weight is the engine's. Blue's 100-lot ask is lifted by the agents now
    and then, so the position moves in jumps both ways: ``freeze`` takes the symbol out
    of the strategy (engine action ``reduce``) and checks the frozen position again; when
    a jump landed between the check and the freeze, the symbol is given back and
    building goes on.

    With ``sim`` (an in-process simulator) its agents are paused while building: nobody
    lifts blue's ask, so the position only grows and building takes a few sales instead
    of a varying number (5 s to 56 s were seen with the agents on). The book is stirred
    meanwhile (see :func:`stir_quiet_book`), so blue always has a message to requote on.
    """
    if sim is None:
        return await _build_long(desk, port, lots, symbol=symbol, freeze=freeze)
    stop = asyncio.Event()
    with sim.agents_paused():
        stirring = asyncio.create_task(stir_quiet_book(port, stop, symbol=symbol))
        try:
            return await _build_long(desk, port, lots, symbol=symbol, freeze=freeze)
        finally:
            stop.set()
            await stirring


async def _build_long(desk: Desk, port: int, lots: int, *, symbol: str, freeze: bool) -> int:
    other = ccxt_binance(port, key=OTHER_KEY, secret=OTHER_SECRET)
    try:
        await other.load_markets()
        tick = Decimal(str(other.markets[symbol]["precision"]["price"]))
        deadline = asyncio.get_running_loop().time() + BUILD_WITHIN_S
        while asyncio.get_running_loop().time() < deadline:
            status = await desk.status("blue")
            held = 0 if status is None else int(status["positions"][symbol])
            if held >= lots:
                if not freeze:
                    return held
                answer = await admin(desk, "reduce", symbols=symbol)
                frozen = int(answer["result"]["positions"][symbol]["lots"])
                if frozen >= lots:
                    return frozen
                await admin(desk, "restore", symbols=symbol)
            wanted = [] if status is None else [
                q["price"] for q in status["desired_quotes"]
                if q["symbol_id"] == SYMBOLS.index(symbol) and q["side"] == BUY
            ]  # fmt: skip
            if wanted:  # none between two quotes, or pulled after a fill: wait for the next
                await _sell_down_to(other, symbol, (max(wanted) - REQUOTE_SLACK_TICKS) * tick)
            await asyncio.sleep(0.2)  # the engine records the fill and quotes again
    finally:
        await other.close()
    raise AssertionError(f"blue never got long {lots} lots of {symbol} in {BUILD_WITHIN_S} s")


async def _sell_down_to(other: Any, symbol: str, price: Decimal) -> None:
    book = await other.fetch_order_book(symbol, 50)
    bid_down_there = sum(
        (Decimal(str(q)) for p, q, *_ in book["bids"] if Decimal(str(p)) >= price), Decimal(0)
    )
    amount = min(max(bid_down_there, LOT * 100), Decimal("0.05"))  # 5,000 lots at most
    await other.create_order(symbol, "limit", "sell", float(amount), float(price),
                             {"timeInForce": "IOC"})  # fmt: skip


async def market_buys(port: int, *, lots: int, every_s: float, stop: asyncio.Event,
                      symbol: str = SYMBOL) -> int:  # fmt: skip
    """Buy ``lots`` at market from the other account every ``every_s``; return lots bought.

    The only volume of a quiet market: what a participation cap may take a share of.
    """
    other = ccxt_binance(port, key=OTHER_KEY, secret=OTHER_SECRET)
    bought = 0
    try:
        await other.load_markets()
        while not stop.is_set():
            await other.create_order(symbol, "market", "buy", float(LOT * lots))
            bought += lots
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await other.close()
    return bought


async def stir_quiet_book(port: int, stop: asyncio.Event, *, symbol: str = SYMBOL) -> None:
    """Add and cancel a lot on the third bid level from the other account until ``stop``.

    A book no agent trades in never changes, so the venue's depth stream stays silent, and
    an engine that just took the lead has no new message to decide on: it waits for its
    stale-stream resubscribe (15 s) before it quotes. Each add and cancel is one depth
    update; nothing trades, and the best bid and ask stay where they were.
    """
    other = ccxt_binance(port, key=OTHER_KEY, secret=OTHER_SECRET)
    try:
        await other.load_markets()
        least = Decimal(str(other.markets[symbol]["limits"]["cost"]["min"] or 0)) * 2
        while not stop.is_set():
            book = await other.fetch_order_book(symbol, 5)
            price = book["bids"][2][0]
            lots = max(1, math.ceil(least / Decimal(str(price)) / LOT))  # over min notional
            order = await other.create_order(symbol, "limit", "buy", float(LOT * lots), price)
            await other.cancel_order(order["id"], symbol)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await other.close()


async def admin(desk: Desk, action: str, **fields: Any) -> dict[str, Any]:
    """Call an admin action of blue; return the whole answer (status and body)."""
    answer = await post_admin(desk.url("blue"), action, token=TOKEN,
                              payload={"by": "test", "reason": "test", **fields})  # fmt: skip
    return {"status": answer.status, **answer.body}


def request(**fields: Any) -> LiquidationInput:
    """A liquidation of BTC/USDT with short periods (tests override what they probe)."""
    values: dict[str, Any] = {
        "symbols": (SYMBOL,), "deadline_s": 60, "slice_interval_ms": 300, "band_bps": 50.0,
        "requested_by": "alice", "reason": "test",
    }  # fmt: skip
    values.update(fields)
    return LiquidationInput(**values)


async def start(
    client: Client, liquidation: LiquidationInput, task_queue: str
) -> WorkflowHandle[LiquidationWorkflow, LiquidationResult]:
    """Start a liquidation on ``task_queue`` under its business id."""
    return await client.start_workflow(
        LiquidationWorkflow.run, liquidation, id=liquidation_id(liquidation),
        task_queue=task_queue,
    )  # fmt: skip


@asynccontextmanager
async def liquidation_worker(desk: Desk) -> AsyncIterator[tuple[Client, str]]:
    """Run a worker of the liquidation workflow in-process on a unique task queue."""
    settings = desk.settings
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    task_queue = f"liquidation-test-{uuid.uuid4().hex}"
    activities = LiquidationActivities(LiquidationConfig.from_settings(settings))
    async with Worker(client, task_queue=task_queue, workflows=[LiquidationWorkflow],
                      activities=liquidation_activities(activities)):  # fmt: skip
        yield client, task_queue


async def venue_children(venue: Any, symbol: str = SYMBOL) -> list[dict[str, Any]]:
    """Return every liq- order the venue took on ``symbol`` (ccxt's order documents)."""
    return [o for o in await venue_orders(venue, symbol)
            if str(o["clientOrderId"]).startswith("liq-")]  # fmt: skip


async def children_sent(desk: Desk) -> int:
    """Return how many liq- children the journal has."""
    return int(await desk.pool.fetchval(
        "SELECT count(*) FROM journal_events WHERE kind = 'order_new'"
        " AND client_order_id LIKE 'liq-%'"))  # fmt: skip


async def assert_children_once_and_never_oversold(
    desk: Desk, venue: Any, start_lots: int, *, symbol: str = SYMBOL
) -> None:
    """No child id twice at the venue or in the journal; sold at most the position.

    Every child at the venue is journaled; a journaled child missing at the venue must be
    journaled as never placed.
    """
    children = await venue_children(venue, symbol)
    ids = [str(o["clientOrderId"]) for o in children]
    assert ids, "no child reached the venue"
    assert [c for c, n in Counter(ids).items() if n > 1] == []
    journaled = await desk.pool.fetch(
        "SELECT client_order_id, count(*) AS n FROM journal_events WHERE kind = 'order_new'"
        " AND client_order_id LIKE 'liq-%' GROUP BY client_order_id"
    )
    assert all(r["n"] == 1 for r in journaled), journaled
    journaled_ids = {r["client_order_id"] for r in journaled}
    assert set(ids) <= journaled_ids, f"at the venue, not journaled: {set(ids) - journaled_ids}"
    # a child journaled but never at the venue: the engine died between its durable
    # ORDER_NEW and the send, and recovery confirmed with the venue it was never placed
    never_sent = sorted(journaled_ids - set(ids))
    not_placed = await desk.pool.fetch(
        "SELECT DISTINCT client_order_id FROM journal_events WHERE kind = 'order_rejected'"
        " AND body->>'reason' = 'not placed' AND client_order_id = ANY($1::text[])",
        never_sent,
    )
    assert sorted(r["client_order_id"] for r in not_placed) == never_sent, never_sent
    sold = sum(Decimal(str(o["filled"])) for o in children if o["side"] == "sell")
    assert sold <= LOT * start_lots, f"sold {sold} of a {LOT * start_lots} position"
    unattributed = await desk.pool.fetchval(
        "SELECT count(*) FROM fills WHERE symbol = $1 AND coalesce(client_order_id, '') = ''",
        symbol,
    )
    assert unattributed == 0  # every fill of ours kept its client id (adopted if need be)


async def wait_children(desk: Desk, at_least: int, *, within: float = 60) -> None:
    """Wait until the journal has ``at_least`` children."""

    async def enough() -> bool:
        return await children_sent(desk) >= at_least

    await eventually(enough, within=within, what=f"{at_least} liquidation children sent")
