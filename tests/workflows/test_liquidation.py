"""liquidation with a real engine (LocalPlatform), PostgreSQL, the simulator and Temporal.

Blue leads on a scratch database; the second simulator account sells into blue's bid so
blue is long BTC/USDT; the workflow unwinds it through blue's ``child_order``. Checks read
the venue's order log and the journal, never the workflow's word for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError

from infra.stack.launcher import Stack
from tests.engine.live.harness import open_venue
from tests.stubs.deploy import Desk, eventually, running_desk
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.liquidation import (
    LOT,
    SYMBOL,
    admin,
    assert_children_once_and_never_oversold,
    build_long,
    liquidation_worker,
    market_buys,
    position_lots,
    request,
    start,
    stir_quiet_book,
    venue_children,
    wait_children,
    write_liquidation_release,
)
from tests.stubs.worker_process import WorkerProcess
from workflows.approvals import Decision
from workflows.liquidation import LiquidationWorkflow

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def agents() -> float:
    return 60.0


@pytest.fixture
def sim(agents: float) -> Iterator[ThreadedSim]:
    with ThreadedSim(sim_config(agent_orders_per_s=agents)) as running:
        yield running


@pytest.fixture
def market(sim: ThreadedSim) -> int:
    return sim.config.port


@pytest.fixture
async def desk(
    running_stack: Stack, dsn: str, market: int, agents: float, tmp_path: Path
) -> AsyncIterator[Desk]:
    release = write_liquidation_release(tmp_path)
    stop = asyncio.Event()
    # without agents the book is static: stir it until blue quotes (see stir_quiet_book)
    stirring = asyncio.create_task(stir_quiet_book(market, stop)) if agents == 0 else None
    try:
        async with running_desk(
            running_stack.settings, home=tmp_path, dsn=dsn, market=market, release=release
        ) as desk:
            stop.set()
            if stirring is not None:
                await stirring
            yield desk
    finally:
        stop.set()
        if stirring is not None and not stirring.done():
            stirring.cancel()


@pytest.fixture
async def venue(market: int) -> AsyncIterator[Any]:
    session = await open_venue(market)
    yield session
    await session.close()


async def test_liquidation_unwinds_to_flat_in_children_of_the_leader(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any
) -> None:
    async with liquidation_worker(desk) as (client, task_queue):
        # blue trades on until the workflow's reduce step freezes the symbol: the agents
        # stay paused until then, or they may lift blue's 100-lot ask meanwhile and leave
        # nothing to unwind; they are back for the unwind itself
        with sim.agents_paused():
            await build_long(desk, market, 300, freeze=False, sim=sim)
            handle = await start(client, request(), task_queue)
            await eventually(lambda: _reduced(desk), within=30, what=f"{SYMBOL} reduced")
        result = await handle.result()

    assert result.flat, result
    assert result.unwind is not None
    assert result.unwind.stopped == "done"
    (leg,) = result.unwind.symbols
    start_lots = int(Decimal(leg.start_qty) / LOT)
    assert start_lots > 0
    assert leg.children >= 2  # sliced, not one block
    assert await position_lots(desk) == 0
    status = await desk.status("blue")
    assert status is not None
    assert SYMBOL in status["reduced"]  # out of the strategy until restored
    assert result.verify is not None
    assert result.verify.balances_checked
    assert result.verify.balance_mismatches == ()
    assert result.shortfall_bps is not None
    children = await venue_children(venue)
    assert {o["side"] for o in children} == {"sell"}
    assert all(o["type"] == "limit" for o in children)
    await assert_children_once_and_never_oversold(desk, venue, start_lots)
    assert not [o for o in await venue.orders.fetch_open_orders(SYMBOL)
                if o.client_order_id.startswith("blue-")]  # fmt: skip


async def test_worker_killed_mid_unwind_resumes_and_ends_flat_without_repeating_a_child(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any, tmp_path: Path
) -> None:
    start_lots = await build_long(desk, market, 300, sim=sim)
    client = await Client.connect(
        desk.settings.temporal.effective_address(), namespace=desk.settings.temporal.namespace
    )
    worker = WorkerProcess.of_settings(
        desk.settings, f"liq-kill-{uuid.uuid4().hex}", tmp_path / "worker.log"
    )
    await worker.start()
    try:
        # 400 ms slices of ~10 lots (the venue minimum: TWAP shares are smaller)
        handle = await start(client, request(deadline_s=60, slice_interval_ms=400),
                             worker.task_queue)  # fmt: skip
        await wait_children(desk, 3)
        await worker.kill()  # the unwind activity dies between (or inside) slices
        sent_before = len(await venue_children(venue))
        await worker.start()
        result = await handle.result()
    finally:
        await worker.kill()

    assert result.flat, result
    assert len(await venue_children(venue)) > sent_before  # the restarted worker went on
    assert await unwind_attempts(handle) == 2  # killed mid-unwind, resumed once
    assert await position_lots(desk) == 0
    await assert_children_once_and_never_oversold(desk, venue, start_lots)


async def unwind_attempts(handle: Any) -> int:
    """Return the attempt that completed the unwind activity (from the run's history)."""
    history = await handle.fetch_history()
    return int(
        max(
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        )
    )


async def test_engine_killed_mid_unwind_recovers_the_children_and_ends_flat(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any, tmp_path: Path
) -> None:
    start_lots = await build_long(desk, market, 300, sim=sim)
    (release,) = await asyncio.to_thread(lambda: list(tmp_path.glob("release-*.json")))

    async with liquidation_worker(desk) as (client, task_queue):
        handle = await start(client, request(deadline_s=90, slice_interval_ms=400), task_queue)
        await wait_children(desk, 3)
        pid = desk.platform.status("blue").pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # mid-unwind: a child may be in flight
        await eventually(lambda: _dead(pid), within=10, what="blue gone")
        desk.platform.start("blue", release)
        result = await handle.result()

    assert result.flat, result
    status = await desk.status("blue")
    assert status is not None
    assert status["role"] == "leader"
    assert status["recovery_ok"] is True
    assert SYMBOL in status["reduced"]  # the new leader kept it out of the strategy
    assert await position_lots(desk) == 0
    await assert_children_once_and_never_oversold(desk, venue, start_lots)


async def _dead(pid: int) -> bool:
    return await asyncio.to_thread(_reaped, pid)


def _reaped(pid: int) -> bool:
    # our child (LocalPlatform started it here): reap it, or it lingers as a zombie
    with contextlib.suppress(ChildProcessError):
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("agents", [0.0])
async def test_thin_book_participation_cap_and_band_hold_and_deadline_reports_the_rest(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any
) -> None:
    start_lots = await build_long(desk, market, 200, sim=sim)  # reduced: only the LPs' quotes rest
    book = await venue.rest.exchange.fetch_order_book(SYMBOL, 5)
    mid0 = (Decimal(repr(book["bids"][0][0])) + Decimal(repr(book["asks"][0][0]))) / 2
    stop = asyncio.Event()
    # the only market volume: 20 lots bought every 0.5 s (a quiet, thin market)
    buys = asyncio.create_task(market_buys(market, lots=20, every_s=0.5, stop=stop))
    cap, band_bps = 0.25, 10.0

    async with liquidation_worker(desk) as (client, task_queue):
        handle = await start(
            client,
            request(mode="participation", max_participation=cap, band_bps=band_bps,
                    deadline_s=6, slice_interval_ms=500),
            task_queue,
        )  # fmt: skip
        result = await handle.result()
    stop.set()
    bought = await buys

    children = await venue_children(venue)
    sold = sum(Decimal(str(o["filled"])) for o in children)
    assert children, "the cap allowed some children"
    assert sold <= LOT * int(cap * bought), (sold, bought)  # never above the cap overall
    assert result.unwind is not None
    assert result.unwind.stopped == "deadline"
    (leg,) = result.unwind.symbols
    assert leg.max_child_participation is not None
    assert leg.max_child_participation <= cap
    floor = mid0 * (1 - Decimal(band_bps) / 10_000) * (1 - Decimal("0.0002"))  # book drift
    assert all(Decimal(str(o["price"])) >= floor for o in children), (floor, children)
    assert not result.flat
    ((symbol, left),) = ((r.symbol, Decimal(r.qty)) for r in result.remaining)
    assert symbol == SYMBOL
    assert left == LOT * start_lots - sold == LOT * await position_lots(desk)


@pytest.mark.parametrize("agents", [0.0])
async def test_band_tighter_than_the_book_sends_nothing_and_reports_everything_remaining(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any
) -> None:
    start_lots = await build_long(desk, market, 100, sim=sim)

    async with liquidation_worker(desk) as (client, task_queue):
        # the LPs' best bid sits ~2 bps under mid (ours left with reduce): 1 bps allows nothing
        handle = await start(client, request(band_bps=1.0, deadline_s=3), task_queue)
        result = await handle.result()

    assert await venue_children(venue) == []
    assert result.unwind is not None
    assert result.unwind.stopped == "deadline"
    assert [(r.symbol, Decimal(r.qty)) for r in result.remaining] == [(SYMBOL, LOT * start_lots)]
    assert not result.flat
    assert await position_lots(desk) == start_lots


async def test_all_symbols_waits_for_a_second_operator_and_refuses_the_requester(
    desk: Desk,
) -> None:
    async with liquidation_worker(desk) as (client, task_queue):
        handle = await start(client, request(symbols=(), all_symbols=True), task_queue)
        await eventually(lambda: _waiting(handle), within=30, what="waiting for approval")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(LiquidationWorkflow.approve, Decision(by="alice"))
        assert "second operator" in str(refused.value.cause)
        status = await desk.status("blue")
        assert status is not None
        assert status["reduced"] == []  # nothing changed before the approval
        await handle.execute_update(LiquidationWorkflow.abort, Decision(by="bob", note="test"))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert "aborted by bob" in str(failed.value.cause)


async def _waiting(handle: Any) -> bool:
    progress = await handle.query(LiquidationWorkflow.progress)
    return bool(progress.waiting_for_approval == "approve")


async def test_child_order_is_idempotent_by_client_id_and_never_grows_the_position(
    desk: Desk, sim: ThreadedSim, market: int, venue: Any
) -> None:
    held = await build_long(desk, market, 60, sim=sim)
    book = await venue.rest.exchange.fetch_order_book(SYMBOL, 5)
    floor = str(Decimal(repr(book["bids"][0][0])) - Decimal(50))
    child = {"client_order_id": "liq-test-1", "symbol": SYMBOL, "side": "sell",
             "qty": str(LOT * 10), "limit_price": floor}  # fmt: skip

    first = await admin(desk, "child_order", **child)
    again = await admin(desk, "child_order", **child)
    grow = await admin(desk, "child_order", **{**child, "client_order_id": "liq-test-2",
                                                "side": "buy"})  # fmt: skip
    oversell = await admin(desk, "child_order", **{**child, "client_order_id": "liq-test-3",
                                                    "qty": str(LOT * (held + 1))})  # fmt: skip
    bad = await admin(desk, "child_order", **{**child, "client_order_id": "blue-1-1"})

    assert first["status"] == 200, first
    assert first["result"]["sent"] is True, first
    assert Decimal(first["result"]["filled"]) == LOT * 10
    assert again["result"]["sent"] is False  # known id: the recorded outcome, not a resend
    assert again["result"]["filled"] == first["result"]["filled"]
    assert grow["result"]["status"] == "refused"
    assert oversell["result"]["status"] == "refused"
    assert bad["status"] == 400
    assert "client_order_id" in bad["error"]
    assert [o["clientOrderId"] for o in await venue_children(venue)] == ["liq-test-1"]


async def _reduced(desk: Desk) -> bool:
    status = await desk.status("blue")
    return status is not None and SYMBOL in status["reduced"]
