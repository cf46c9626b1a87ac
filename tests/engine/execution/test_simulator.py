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
    BackoffPolicy,
    BookFeed,
    BookFeedConfig,
    BookStatus,
    GatewayConfig,
    NotPlaced,
    OrderRequest,
    ResolvePolicy,
    RetryPolicy,
    StreamWatchdog,
    SystemClock,
    TradeFeed,
    TradeFeedConfig,
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


class RecordingClock(SystemClock):
    """The real clock, remembering every sleep it was asked for (never asserted as time)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def _open(settings: ExchangeSettings, *, clock: SystemClock | None = None) -> VenueSession:
    config = GatewayConfig(
        retry=RetryPolicy(max_attempts=3, total_s=10.0, base_s=0.05, max_backoff_s=0.2),
        breaker=BreakerConfig(failure_threshold=3, cool_down_s=0.5),
    )
    return await open_session(
        settings,
        config=config,
        resolve_policy=ResolvePolicy(poll_interval_s=0.1, not_found_grace_s=0.5),
        clock=clock,
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


async def _wait_for(task: asyncio.Task[None], predicate, limit_s: float = 20.0) -> None:
    """Poll ``predicate`` while ``task`` runs; re-raise the task's error if it stops."""
    async with asyncio.timeout(limit_s):
        while not predicate():
            if task.done():
                task.result()
            await asyncio.sleep(0.05)


async def _run_book_until(feed: BookFeed, predicate, limit_s: float = 20.0) -> None:
    task = asyncio.create_task(feed.run())
    try:
        await _wait_for(task, predicate, limit_s)
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
    # One running feed throughout: a gap that arrives while nobody awaits the book is
    # repaired by ccxt on its own (it drops the book and resubscribes) and never reaches
    # the feed, so the fault must land while the feed is watching. The feed awaits nearly
    # all the time, but a busy machine can make it miss one: the fault is sent again
    # (at most 5 times) until the feed has seen one.
    task = asyncio.create_task(feed.run())
    try:
        await _wait_for(task, lambda: feed.status is BookStatus.VALID)
        for _ in range(5):
            await _fault(sim_settings, fault, symbol="BTCUSDT")
            with contextlib.suppress(TimeoutError):
                await _wait_for(task, lambda: feed.resyncs >= 1, limit_s=4.0)
                break
        await _wait_for(task, lambda: feed.resyncs >= 1 and feed.status is BookStatus.VALID)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await _assert_book_matches_rest_depth(session, feed, batches)


async def _assert_book_matches_rest_depth(
    session: VenueSession, feed: BookFeed, batches: list[BookLevels]
) -> None:
    """Run ``feed`` until one of its batches equals a REST snapshot at the same update id.

    The simulator's agents keep trading, so the REST depth and the last websocket batch
    are only comparable at the same update id: wait for a batch whose update id equals
    the REST snapshot's lastUpdateId (or give up after a few snapshots).
    """
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


# --- websocket drop, stall and trade backfill ------------------------------------------


def _reconnects(stream: str) -> float:
    return sample_value(
        "bot4_venue_websocket_reconnects_total", {"venue": "binance", "stream": stream}
    )


async def test_dropped_websockets_reconnect_and_the_book_matches_rest_depth_again(
    session: VenueSession, sim_settings: ExchangeSettings
):
    batches: list[BookLevels] = []
    feed = BookFeed(
        session.streams,
        instrument=session.instruments["BTC/USDT"],
        on_levels=batches.append,
        watchdog=StreamWatchdog(venue="binance", clock=session.streams.clock),
        config=BookFeedConfig(depth=5, backoff=BackoffPolicy(base_s=0.05, max_s=0.5)),
    )
    reconnects = _reconnects(feed.stream)
    # one run across the drop: a feed that is not waiting on the socket sees no drop
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(20):
            while feed.status is not BookStatus.VALID:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
            await _fault(sim_settings, "drop_websockets")
            while not (_reconnects(feed.stream) > reconnects and feed.status is BookStatus.VALID):
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _reconnects(feed.stream) - reconnects >= 1
    assert feed.resyncs >= 1
    await _assert_book_matches_rest_depth(session, feed, batches)


async def test_stream_stalled_past_the_bound_is_resubscribed_and_valid_again(
    session: VenueSession, sim_settings: ExchangeSettings
):
    labels = {"venue": "binance", "symbol": "ETH/USDT", "reason": "stale"}
    transitions: list[tuple[BookStatus, str]] = []
    feed = BookFeed(
        session.streams,
        instrument=session.instruments["ETH/USDT"],
        on_levels=lambda _: None,
        watchdog=StreamWatchdog(venue="binance", clock=session.streams.clock),
        config=BookFeedConfig(
            stale_after_s=0.3,
            resync_after_silent_s=0.6,
            backoff=BackoffPolicy(base_s=0.05, max_s=0.5),
        ),
        on_status=lambda status, reason: transitions.append((status, reason)),
    )
    before = sample_value("bot4_venue_book_resyncs_total", labels)
    await _run_book_until(feed, lambda: feed.status is BookStatus.VALID)
    synced_at = len(transitions)
    await _fault(sim_settings, "stall_streams")
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(20):
            while sample_value("bot4_venue_book_resyncs_total", labels) == before:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        await _fault(sim_settings, "stall_streams", method="DELETE")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The silent stream took the book out of use before the resubscription; the fresh
    # snapshot may make it VALID again within milliseconds, so the order is what counts.
    during_stall = transitions[synced_at:]
    assert (BookStatus.INVALID, "stale") in during_stall, during_stall
    invalid_at = during_stall.index((BookStatus.INVALID, "stale"))
    assert BookStatus.VALID not in [status for status, _ in during_stall[:invalid_at]]
    await _run_book_until(feed, lambda: feed.status is BookStatus.VALID)
    assert sample_value("bot4_venue_book_resyncs_total", labels) - before >= 1


async def _market_order(venue: VenueSession, cid: str, side: str) -> None:
    instrument = venue.instruments["BTC/USDT"]
    await venue.orders.create_order(
        OrderRequest(
            client_order_id=cid,
            symbol="BTC/USDT",
            side=side,  # type: ignore[arg-type]
            type="market",
            amount=instrument.lots_to_qty(500),
        )
    )


async def _recent_trade_ids(venue: VenueSession) -> list[int]:
    params = {"fetchTradesMethod": "publicGetTrades"}
    trades = await venue.streams.exchange.fetch_trades("BTC/USDT", None, 1000, params)
    return sorted(int(t["id"]) for t in trades)


async def test_trades_missed_while_disconnected_are_backfilled_once_in_order(
    quiet_session: VenueSession, quiet_sim_settings: ExchangeSettings
):
    """Quiet market: only this test trades BTC/USDT, so its trade ids are consecutive.

    Trades made while streams are stalled never reach the websocket; the connection is
    then dropped, so they can only arrive through the feed's REST backfill.
    """
    session, settings = quiet_session, quiet_sim_settings
    await _market_order(session, "it-tf-seed", "buy")
    start_id = (await _recent_trade_ids(session))[-1]
    seen: list[int] = []
    feed = TradeFeed(
        session.streams,
        instrument=session.instruments["BTC/USDT"],
        on_trades=lambda records: seen.extend(int(i) for i in records["trade_id"]),
        watchdog=StreamWatchdog(venue="binance", clock=session.streams.clock),
        config=TradeFeedConfig(backoff=BackoffPolicy(base_s=0.05, max_s=0.5)),
        last_trade_id=start_id,
    )
    reconnects = _reconnects(feed.stream)
    task = asyncio.create_task(feed.run())
    try:
        await _fault(settings, "stall_streams")
        try:
            for n, side in enumerate(("buy", "sell", "buy")):
                await _market_order(session, f"it-tf-stalled-{n}", side)
            stalled_ids = [i for i in await _recent_trade_ids(session) if i > start_id]
            await _fault(settings, "drop_websockets")
            async with asyncio.timeout(20):
                while not seen or seen[-1] < stalled_ids[-1]:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.05)
        finally:
            await _fault(settings, "stall_streams", method="DELETE")
        assert _reconnects(feed.stream) - reconnects >= 1
        assert feed.backfilled >= len(stalled_ids)
        await _market_order(session, "it-tf-live", "sell")  # after the reconnect
        final_id = (await _recent_trade_ids(session))[-1]
        async with asyncio.timeout(20):
            while not seen or seen[-1] < final_id:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    venue_ids = [i for i in await _recent_trade_ids(session) if start_id < i <= final_id]
    assert seen == venue_ids  # each trade once, in id order, none missing
    assert seen == list(range(start_id + 1, final_id + 1))


# --- rate limits -------------------------------------------------------------------------


async def test_429_storm_honours_retry_after_and_bounds_retries(sim_settings: ExchangeSettings):
    from engine.execution import BreakerState, EndpointGroup, RateLimitedError

    clock = RecordingClock()
    venue = await _open(sim_settings, clock=clock)
    labels = {"venue": "binance", "endpoint_group": "account"}

    def retries(outcome: str) -> float:
        return sample_value("bot4_venue_retries_total", {**labels, "outcome": outcome})

    def requests(outcome: str) -> float:
        return sample_value("bot4_venue_requests_total", {**labels, "outcome": outcome})

    try:
        retried, exhausted, limited = (
            retries("retried"),
            retries("exhausted"),
            requests("rate_limited"),
        )
        await _fault(sim_settings, "rate_limit_storm", retry_after_s=1)
        try:
            with pytest.raises(RateLimitedError):
                await venue.account.fetch_balances()
        finally:
            await _fault(sim_settings, "rate_limit_storm", method="DELETE")
        assert retries("retried") - retried == 2  # max_attempts=3
        assert retries("exhausted") - exhausted == 1
        assert requests("rate_limited") - limited == 3
        # each retry waited for the venue's Retry-After (1 s, less the time already
        # spent), not the policy's backoff (at most 0.2 s)
        assert sum(1 for s in clock.sleeps if s > 0.5) >= 2
        # being throttled says nothing about the venue's health
        assert venue.rest.breaker(EndpointGroup.ACCOUNT).state is BreakerState.CLOSED
        clock.sleeps.clear()
        assert await venue.account.fetch_balances()
        assert venue.rest.weights.retry_after_s() == 0.0
    finally:
        await venue.close()


async def test_used_weight_header_feeds_the_weight_tracker(session: VenueSession):
    await session.account.fetch_balances()  # /api/v3/account weighs 20
    assert sample_value("bot4_venue_used_weight", {"venue": "binance"}) >= 20
    assert session.rest.weights.used_weight in (0, *range(20, 1_000_000))  # 0: minute rolled


# --- orders: unknown outcomes, duplicates ------------------------------------------------


async def _orders_with_client_id(venue: VenueSession, cid: str) -> int:
    orders = await venue.rest.exchange.fetch_orders("BTC/USDT")
    return sum(1 for o in orders if o.get("clientOrderId") == cid)


async def test_send_refused_before_matching_resolves_to_not_placed_after_the_grace(
    quiet_sim_settings: ExchangeSettings,
):
    """The error_rate fault answers 503 before the order handler runs, so nothing exists."""
    from engine.execution import OrderNotFoundError, UnknownOutcomeError

    clock = RecordingClock()
    venue = await _open(quiet_sim_settings, clock=clock)
    try:
        request = await _limit_below_market(venue, "it-np-1")
        not_placed = sample_value(
            "bot4_venue_unknown_outcomes_total", {"venue": "binance", "resolution": "not_placed"}
        )
        sent_at = clock.monotonic()
        await _fault(quiet_sim_settings, "error_rate", share=1.0)
        try:
            with pytest.raises(UnknownOutcomeError):
                await venue.orders.create_order(request)
        finally:
            await _fault(quiet_sim_settings, "error_rate", method="DELETE")
        result = await venue.orders.resolve("it-np-1", "BTC/USDT", sent_at=sent_at)
        assert result == NotPlaced(client_order_id="it-np-1")
        assert clock.monotonic() - sent_at >= 0.5  # not before the grace period
        assert clock.sleeps  # "not found" was polled again, not believed at once
        assert (
            sample_value(
                "bot4_venue_unknown_outcomes_total",
                {"venue": "binance", "resolution": "not_placed"},
            )
            - not_placed
            == 1
        )
        with pytest.raises(OrderNotFoundError):
            await venue.orders.fetch_order("it-np-1", "BTC/USDT")
        assert await _orders_with_client_id(venue, "it-np-1") == 0
    finally:
        await venue.close()


async def test_resent_create_with_the_same_client_id_never_makes_two_orders(
    quiet_session: VenueSession, quiet_sim_settings: ExchangeSettings
):
    from engine.execution import OrderRejectedError, UnknownOutcomeError

    session = quiet_session
    request = await _limit_below_market(session, "it-dup-1")
    await _fault(quiet_sim_settings, "lost_answer", count=1)
    with pytest.raises(UnknownOutcomeError):
        await session.orders.create_order(request)  # placed, answer lost
    with pytest.raises(OrderRejectedError):
        await session.orders.create_order(request)  # a blind resend: refused as duplicate
    assert await _orders_with_client_id(session, "it-dup-1") == 1
    assert [
        o.client_order_id
        for o in await session.orders.fetch_open_orders("BTC/USDT")
        if o.client_order_id == "it-dup-1"
    ] == ["it-dup-1"]
    await session.orders.cancel_all("BTC/USDT")


# --- account ---------------------------------------------------------------------------


async def test_fetch_fills_pages_through_more_than_one_page(quiet_session: VenueSession):
    session = quiet_session
    for n, side in enumerate(("buy", "sell", "buy", "sell")):
        await _market_order(session, f"it-fills-{n}", side)
    everything = await session.account.fetch_fills("BTC/USDT", after_trade_id=0)
    assert len(everything) >= 4
    labels = {"venue": "binance", "endpoint_group": "account", "outcome": "ok"}
    requests = sample_value("bot4_venue_requests_total", labels)
    paged = await session.account.fetch_fills("BTC/USDT", after_trade_id=0, page_size=2)
    assert sample_value("bot4_venue_requests_total", labels) - requests >= 3
    assert [f.trade_id for f in paged] == [f.trade_id for f in everything]
    ids = [f.trade_id for f in paged]
    assert ids == sorted(set(ids))
    later = await session.account.fetch_fills("BTC/USDT", after_trade_id=ids[1], page_size=2)
    assert [f.trade_id for f in later] == ids[2:]


async def test_fetch_fills_keeps_both_sides_of_a_self_trade_across_a_page_end(
    quiet_session: VenueSession,
):
    session = quiet_session
    await _market_order(session, "it-self-0", "buy")
    before = await session.account.fetch_fills("BTC/USDT", after_trade_id=0)
    book = await session.rest.exchange.fetch_order_book("BTC/USDT", 5)
    instrument = session.instruments["BTC/USDT"]
    bid = instrument.price_to_ticks(repr(book["bids"][0][0]))
    ask = instrument.price_to_ticks(repr(book["asks"][0][0]))
    assert ask - bid >= 2, "the quiet book needs a price inside the spread"
    inside = instrument.ticks_to_price((bid + ask) // 2)
    for cid, side in (("it-self-sell", "sell"), ("it-self-buy", "buy")):  # buy meets our sell
        await session.orders.create_order(OrderRequest(
            client_order_id=cid, symbol="BTC/USDT", side=side, type="limit",  # type: ignore[arg-type]
            amount=instrument.lots_to_qty(100), price=inside, time_in_force="GTC",
        ))  # fmt: skip
    # pages of 2 end between the self-trade's two entries (same id, buyer then seller)
    paged = await session.account.fetch_fills("BTC/USDT", after_trade_id=0, page_size=2)
    mine = paged[len(before) :]
    assert [f.side for f in mine] == ["buy", "sell"]
    assert mine[0].trade_id == mine[1].trade_id
    assert [(f.trade_id, f.side) for f in paged] == [
        (f.trade_id, f.side)
        for f in await session.account.fetch_fills("BTC/USDT", after_trade_id=0)
    ]


async def test_cancel_all_on_a_symbol_without_open_orders_returns_nothing(
    quiet_session: VenueSession,
):
    assert await quiet_session.orders.fetch_open_orders("ETH/USDT") == []
    assert await quiet_session.orders.cancel_all("ETH/USDT") == []


async def test_halted_symbol_refuses_orders_without_retries_and_recovers(
    session: VenueSession, sim_settings: ExchangeSettings
):
    """The venue's halt is a refusal (do not retry); the order never exists; others trade."""
    from engine.execution import BreakerState, EndpointGroup, OrderRejectedError, OrderStatus

    labels = {"venue": "binance", "endpoint_group": "orders", "outcome": "retried"}
    retried = sample_value("bot4_venue_retries_total", labels)
    request = await _limit_below_market(session, "it-halt-1")
    await _fault(sim_settings, "halt_symbol", symbol="BTCUSDT")
    try:
        with pytest.raises(OrderRejectedError):
            await session.orders.create_order(request)
        assert sample_value("bot4_venue_retries_total", labels) == retried
        assert session.rest.breaker(EndpointGroup.ORDERS).state is BreakerState.CLOSED
        open_ids = [o.client_order_id for o in await session.orders.fetch_open_orders("BTC/USDT")]
        assert "it-halt-1" not in open_ids
    finally:
        await _fault(sim_settings, "halt_symbol", method="DELETE")
    placed = await session.orders.create_order(
        await _limit_below_market(session, "it-halt-2")
    )  # trading again once the halt is lifted
    assert placed.status is OrderStatus.OPEN
    await session.orders.cancel_order("it-halt-2", "BTC/USDT")
