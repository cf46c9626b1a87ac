"""Integration: the adapter against the real exchange simulator, started on a free port.

The simulator runs as a subprocess for this module and is stopped at its end. Faults are
set through its admin routes. Real clock: these tests wait on the simulator, never on
fixed sleeps, and assert no timings.
"""

# ruff: noqa: ASYNC110 - these loops poll an external server; no in-process event exists
from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot4.settings import ExchangeSettings
from engine.dtypes import BookLevels
from engine.execution import (
    BookFeed,
    BookFeedConfig,
    BookStatus,
    GatewayConfig,
    NotPlaced,
    OrderRequest,
    ResolvePolicy,
    RetryPolicy,
    StreamWatchdog,
    VenueSession,
    open_session,
)
from engine.execution.breaker import BreakerConfig
from tests.engine.execution.fakes import sample_value
from tests.stubs.ports import free_ports

# polling loops below wait on an external process, where an asyncio.Event cannot reach
pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def _running_sim(*, agent_orders_per_s: float) -> Iterator[ExchangeSettings]:
    (port,) = free_ports(1)
    settings = ExchangeSettings(port=port, sim_agent_orders_per_s=agent_orders_per_s)
    with tempfile.TemporaryDirectory(prefix="bot4-sim-") as home:
        env = {
            **os.environ,
            "BOT4_HOME": home,
            "BOT4_EXCHANGE__PORT": str(port),
            "BOT4_EXCHANGE__SIM_AGENT_ORDERS_PER_S": str(agent_orders_per_s),
        }
        log = Path(home) / "sim.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.exchange_sim", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_ready(settings, process, log)
                yield settings
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def sim_settings() -> Iterator[ExchangeSettings]:
    """A simulator with its background agents trading (a living market)."""
    with _running_sim(agent_orders_per_s=50.0) as settings:
        yield settings


@pytest.fixture(scope="module")
def quiet_sim_settings() -> Iterator[ExchangeSettings]:
    """A simulator whose agents send nothing: resting orders stay untouched."""
    with _running_sim(agent_orders_per_s=0.0) as settings:
        yield settings


def _wait_ready(settings: ExchangeSettings, process: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{settings.base_url()}/api/v3/ping", timeout=1):
                return
        except OSError:
            import time

            time.sleep(0.1)
    raise RuntimeError("simulator did not answer /api/v3/ping")


async def _fault(settings: ExchangeSettings, name: str, method: str = "PUT", **params) -> None:
    headers = {"X-Bot4-Admin-Token": settings.sim_admin_token.get_secret_value()}
    async with aiohttp.ClientSession() as http:
        url = f"{settings.base_url()}/admin/faults/{name}"
        async with http.request(method, url, json=params, headers=headers) as response:
            assert response.status == 200, await response.text()


async def _open(settings: ExchangeSettings) -> VenueSession:
    config = GatewayConfig(
        retry=RetryPolicy(max_attempts=3, total_s=10.0, base_s=0.05, max_backoff_s=0.2),
        breaker=BreakerConfig(failure_threshold=3, cool_down_s=0.5),
    )
    return await open_session(
        settings,
        config=config,
        resolve_policy=ResolvePolicy(poll_interval_s=0.1, not_found_grace_s=0.5),
        timeout_ms=3000,
    )


@pytest.fixture
async def session(sim_settings: ExchangeSettings) -> AsyncIterator[VenueSession]:
    venue = await _open(sim_settings)
    try:
        yield venue
    finally:
        await venue.close()


@pytest.fixture
async def quiet_session(quiet_sim_settings: ExchangeSettings) -> AsyncIterator[VenueSession]:
    venue = await _open(quiet_sim_settings)
    try:
        yield venue
    finally:
        await venue.close()


async def _limit_below_market(venue: VenueSession, cid: str) -> OrderRequest:
    book = await venue.rest.exchange.fetch_order_book("BTC/USDT", 5)
    for _ in range(50):  # the simulated book can be one-sided for a moment
        if book["bids"]:
            break
        await asyncio.sleep(0.1)
        book = await venue.rest.exchange.fetch_order_book("BTC/USDT", 5)
    instrument = venue.instruments["BTC/USDT"]
    best_bid = instrument.price_to_ticks(repr(book["bids"][0][0]))
    # 10 % below the best bid: far enough that the simulator's agents do not fill it
    price = instrument.ticks_to_price(best_bid - best_bid * 10 // 100)
    return OrderRequest(
        client_order_id=cid,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=instrument.lots_to_qty(1000),
        price=price,
    )


async def test_order_placement_and_cancel(session: VenueSession):
    request = await _limit_below_market(session, "it-place-1")
    placed = await session.orders.create_order(request)
    assert placed.client_order_id == "it-place-1"
    open_ids = [o.client_order_id for o in await session.orders.fetch_open_orders("BTC/USDT")]
    assert "it-place-1" in open_ids
    cancelled = await session.orders.cancel_order("it-place-1", "BTC/USDT")
    assert cancelled.status.value == "canceled"
    assert await session.orders.cancel_all("BTC/USDT") == []


async def test_lost_answer_is_resolved_by_client_id_neither_lost_nor_duplicated(
    session: VenueSession, sim_settings: ExchangeSettings
):
    request = await _limit_below_market(session, "it-lost-1")
    await _fault(sim_settings, "lost_answer", count=1)
    result = await session.orders.submit(request)
    assert not isinstance(result, NotPlaced)
    assert result.client_order_id == "it-lost-1"
    matching = [
        o
        for o in await session.orders.fetch_open_orders("BTC/USDT")
        if o.client_order_id == "it-lost-1"
    ]
    assert len(matching) == 1
    await session.orders.cancel_all("BTC/USDT")


async def test_injected_5xx_retries_are_counted_and_bounded_then_circuit_opens_and_closes(
    session: VenueSession, sim_settings: ExchangeSettings
):
    from engine.errors import TemporaryError
    from engine.execution import BreakerState, EndpointGroup

    labels = {"venue": "binance", "endpoint_group": "account"}
    retried = sample_value("bot4_venue_retries_total", {**labels, "outcome": "retried"})
    await _fault(sim_settings, "error_rate", share=1.0)
    try:
        with pytest.raises(TemporaryError):
            await session.account.fetch_balances()
        assert (
            sample_value("bot4_venue_retries_total", {**labels, "outcome": "retried"}) - retried
            == 2
        )
        assert session.rest.breaker(EndpointGroup.ACCOUNT).state is BreakerState.OPEN
    finally:
        await _fault(sim_settings, "error_rate", method="DELETE")
    await asyncio.sleep(0.6)  # the breaker's cool-down (0.5 s) must pass for the probe
    balances = await session.account.fetch_balances()
    assert balances
    assert session.rest.breaker(EndpointGroup.ACCOUNT).state is BreakerState.CLOSED


async def _run_book_until(feed: BookFeed, predicate, limit_s: float = 20.0) -> None:
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(limit_s):
            while not predicate():
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("fault", ["sequence_gap", "crossed_book"])
async def test_book_resyncs_after_a_fault_and_matches_rest_depth(
    session: VenueSession, sim_settings: ExchangeSettings, fault: str
):
    batches: list[BookLevels] = []
    watchdog = StreamWatchdog(venue="binance", clock=session.streams.clock)
    feed = BookFeed(
        session.streams,
        instrument=session.instruments["BTC/USDT"],
        on_levels=batches.append,
        watchdog=watchdog,
        config=BookFeedConfig(depth=5),
    )
    await _run_book_until(feed, lambda: feed.status is BookStatus.VALID)
    await _fault(sim_settings, fault, symbol="BTCUSDT")
    await _run_book_until(feed, lambda: feed.resyncs >= 1 and feed.status is BookStatus.VALID)
    assert feed.resyncs >= 1
    # The simulator's agents keep trading, so the REST depth and the last websocket
    # batch are only comparable at the same update id: wait for a batch whose update id
    # equals the REST snapshot's lastUpdateId (or give up after a few snapshots).
    instrument = session.instruments["BTC/USDT"]
    task = asyncio.create_task(feed.run())
    try:
        matched = False
        for _ in range(20):
            rest = await session.rest.exchange.fetch_order_book("BTC/USDT", 5)
            nonce = rest["nonce"]
            await asyncio.sleep(0.3)
            same = [b for b in batches if int(b["update_id"][0]) == nonce]
            if same:
                bids = [instrument.price_to_ticks(repr(p)) for p, _ in rest["bids"][:5]]
                asks = [instrument.price_to_ticks(repr(p)) for p, _ in rest["asks"][:5]]
                batch = same[-1]
                assert batch["price_ticks"][batch["side"] == 1].tolist() == bids
                assert batch["price_ticks"][batch["side"] == -1].tolist() == asks
                matched = True
                break
        assert matched, "no websocket batch carried a REST snapshot's update id"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_stalled_stream_is_reported_stale(
    session: VenueSession, sim_settings: ExchangeSettings
):
    watchdog = StreamWatchdog(venue="binance", clock=session.streams.clock)
    feed = BookFeed(
        session.streams,
        instrument=session.instruments["ETH/USDT"],
        on_levels=lambda _: None,
        watchdog=watchdog,
        config=BookFeedConfig(stale_after_s=0.5),
    )
    await _run_book_until(feed, lambda: feed.status is BookStatus.VALID)
    await _fault(sim_settings, "stall_streams")
    try:
        async with asyncio.timeout(10):
            while not watchdog.check():
                await asyncio.sleep(0.1)
        assert watchdog.is_stale(feed.stream)
    finally:
        await _fault(sim_settings, "stall_streams", method="DELETE")


async def test_dead_mans_switch_refreshed_keeps_orders_and_lapsed_cancels_them(
    quiet_session: VenueSession,
):
    """A quiet market (no agents), so only the switch can remove the resting order."""
    session = quiet_session
    from engine.execution import DeadMansSwitch, DeadMansSwitchConfig

    instrument = session.instruments["BTC/USDT"]
    switch = DeadMansSwitch(
        session.rest,
        instruments=[instrument],
        config=DeadMansSwitchConfig(countdown_ms=1500, refresh_every_s=0.3),
    )
    request = await _limit_below_market(session, "it-dms-1")
    await session.orders.create_order(request)
    task = asyncio.create_task(switch.run())
    try:
        async with asyncio.timeout(10):
            while switch.refreshes < 8:  # ~2.4 s of refreshes: longer than one countdown
                await asyncio.sleep(0.1)
        state = await session.orders.fetch_order("it-dms-1", "BTC/USDT")
        assert state.status.value == "open", state
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with asyncio.timeout(10):
        while "it-dms-1" in [
            o.client_order_id for o in await session.orders.fetch_open_orders("BTC/USDT")
        ]:
            await asyncio.sleep(0.2)
