"""The simulator's aiohttp application.

REST, websockets, admin and ``/metrics`` on one port, plus the background loops: depth diffs,
dead-man's switches and the living market.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import structlog
from aiohttp import web

from infra.exchange_sim import admin, rest_private, rest_public
from infra.exchange_sim.auth import Authenticator, WeightLimiter
from infra.exchange_sim.config import SimConfig
from infra.exchange_sim.faults import CrossedBook, SequenceGap, StallStreams
from infra.exchange_sim.http import AUTH_KEY, FAULT_RNG_KEY, LIMITER_KEY, VENUE_KEY, make_middleware
from infra.exchange_sim.market import LivingMarket
from infra.exchange_sim.metrics import METRICS_KEY, SimMetrics, make_metrics_middleware
from infra.exchange_sim.streams import Hub, make_ws_handler
from infra.exchange_sim.venue import Venue

MARKET_KEY: Final = web.AppKey("market", LivingMarket)

log = structlog.get_logger(__name__)

COUNTDOWN_CHECK_S = 0.05


def wall_clock_ms() -> int:
    """Return UNIX time in milliseconds (the simulator's only clock read)."""
    return time.time_ns() // 1_000_000


def publish_depth(venue: Venue) -> int:
    """Drain every book's changed levels into one ``depthUpdate`` each; return how many.

    While streams are stalled nothing is drained, so the first diff after the stall still
    continues the update ids. Sequence-gap and crossed-book faults act here.
    """
    faults = venue.faults
    if faults.get(StallStreams) is not None:
        return 0
    sent = 0
    now = venue.clock()
    for symbol, book in venue.engine.books.items():
        gap = faults.take_for_symbol(SequenceGap, symbol)
        if gap is not None:
            book.update_id += gap.skip
            book.first_pending_id = (
                book.update_id
                if book.first_pending_id is None
                else (book.first_pending_id + gap.skip)
            )
        crossed = faults.take_for_symbol(CrossedBook, symbol)
        if crossed is not None:
            book.update_id += 1
            if book.first_pending_id is None:
                book.first_pending_id = book.update_id
        drained = book.drain_changes()
        if drained is None:
            continue
        first, last, bids, asks = drained
        market = venue.engine.markets[symbol]
        bid_rows = [[market.price_str(p), market.qty_str(q)] for p, q in bids]
        if crossed is not None:
            # A bid above the best ask that the real book never had.
            best_ask = book.asks.best() or book.bids.best() or market.min_ticks
            bid_rows.append([market.price_str(best_ask + 10), market.qty_str(market.min_lots)])
        stream = f"{symbol.lower()}@depth"
        payload = {
            "e": "depthUpdate",
            "E": now,
            "s": symbol,
            "U": first,
            "u": last,
            "b": bid_rows,
            "a": [[market.price_str(p), market.qty_str(q)] for p, q in asks],
        }
        venue.hub.publish_market(f"{stream}@100ms", payload)
        venue.hub.publish_market(stream, payload)
        sent += 1
    return sent


async def _every(period_s: float, action: Callable[[], object], name: str) -> None:
    while True:
        await asyncio.sleep(period_s)
        try:
            action()
        except Exception:
            # A background loop must outlive one bad iteration; the log tells what broke.
            log.exception("exchange_sim_loop_failed", loop=name)


def build_app(config: SimConfig, *, clock: Callable[[], int] = wall_clock_ms) -> web.Application:
    """Build the application; state is opened on startup and closed on cleanup."""
    middlewares = [make_metrics_middleware(), make_middleware()]  # metrics see fault answers
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024)
    hub_holder: list[Venue] = []

    def stalled() -> bool:
        return bool(hub_holder) and hub_holder[0].faults.get(StallStreams) is not None

    hub = Hub(stalled=stalled)
    venue = Venue(config, clock=clock, hub=hub)
    hub_holder.append(venue)
    market = LivingMarket(venue, seed=config.seed, orders_per_s=config.agent_orders_per_s)
    market.ensure_agents()
    app[VENUE_KEY] = venue
    app[MARKET_KEY] = market
    app[METRICS_KEY] = SimMetrics(venue.faults)
    app[AUTH_KEY] = Authenticator(config.accounts, max_recv_window_ms=config.max_recv_window_ms)
    app[LIMITER_KEY] = WeightLimiter(config.weight_limit_per_minute)
    app[FAULT_RNG_KEY] = random.Random(config.seed)  # noqa: S311 - simulation, not security
    rest_public.add_routes(app)
    rest_private.add_routes(app)
    admin.add_routes(app)
    app.router.add_get("/metrics", app[METRICS_KEY].serve)
    ws_handler = make_ws_handler(hub, app[AUTH_KEY], clock=clock, heartbeat_s=config.ws_heartbeat_s)
    for path in ("/ws", "/ws/{tail:.*}", "/stream", "/stream/{tail:.*}", "/ws-api/{tail:.*}"):
        app.router.add_get(path, ws_handler)

    async def background(app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(
                _every(config.depth_interval_ms / 1000, lambda: publish_depth(venue), "depth")
            ),
            asyncio.create_task(_every(COUNTDOWN_CHECK_S, venue.fire_countdowns, "countdown")),
        ]
        if config.agent_orders_per_s > 0:
            tasks.append(asyncio.create_task(market.run()))
        log.info("exchange_sim_started", host=config.host, port=config.port)
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        hub.drop_all()
        venue.close()
        log.info("exchange_sim_stopped")

    app.cleanup_ctx.append(background)
    return app


class RunningSim:
    """An in-process simulator on real TCP (tests, embedding)."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.app = build_app(config, clock=clock)
        self.config = config
        self._runner = web.AppRunner(self.app, handle_signals=False)
        self.port = config.port

    @property
    def venue(self) -> Venue:
        """The running venue."""
        return self.app[VENUE_KEY]

    @property
    def market(self) -> LivingMarket:
        """The background agents (their ``orders_per_s`` may be changed while running)."""
        return self.app[MARKET_KEY]

    async def start(self) -> None:
        """Bind and serve."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        if server is not None and self.config.port == 0:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close connections, stop loops, close the store."""
        await self._runner.cleanup()
