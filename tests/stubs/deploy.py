"""Builders for deploy tests: a desk of real engines on LocalPlatform, its checks.

The desk is what an operator runs: ``bot4 engine run`` processes started through
:class:`~infra.platform.LocalPlatform` on a scratch database and a simulator with a live
market; blue leads, green is idle. The checks read the journal and the venue's own order
log, never the engines' word for it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from bot4.settings import DatabaseSettings, EngineSettings, ExchangeSettings, Settings
from infra.platform import Color, LocalPlatform
from tests.engine.live.harness import SYMBOLS
from tests.stubs.engine_control import TOKEN
from tests.stubs.ports import free_ports
from tests.stubs.stack import settings_env
from workflows.blue_green_deploy.activities import DeployActivities, DeployConfig
from workflows.blue_green_deploy.workflow import BlueGreenDeployWorkflow
from workflows.registry import deploy_activities

RELEASE: dict[str, Any] = {
    "version": "test-1",
    "symbols": list(SYMBOLS),
    "model": {"builtin": "linear"},
    # tight quotes and a short requote, so the agents trade against us within seconds
    "strategy": {"quote_lots": 20, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_pull_ticks": 1500},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 100_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
    # ticks of 0.01 on prices in the thousands: protections sized in dollars, not cents
    "post_trade": {"stop_loss_ticks": 3000, "latency_arb_move_ticks": 100},
}  # fmt: skip


def write_release(folder: Path, version: str, **strategy: Any) -> Path:
    """Write a release manifest (the test release, ``strategy`` overridden) and return it."""
    document = json.loads(json.dumps(RELEASE))
    document["version"] = version
    document["strategy"].update(strategy)
    path = folder / f"release-{version}.json"
    path.write_text(json.dumps(document))
    return path


def desk_settings(stack: Settings, *, home: Path, dsn: str, market: int) -> Settings:
    """Return settings for engines and a worker on this test's database and simulator."""
    blue, green, metrics = free_ports(3)
    return stack.model_copy(
        update={
            "home": home,
            "db": DatabaseSettings(dsn=SecretStr(dsn)),
            "exchange": ExchangeSettings(port=market, symbols=SYMBOLS),
            "engine": EngineSettings(
                blue_control_port=blue, green_control_port=green, control_token=SecretStr(TOKEN)
            ),
            "worker": stack.worker.model_copy(update={"metrics_port": metrics}),
        }
    )


async def engine_status(url: str) -> dict[str, Any] | None:
    """Return an engine's ``/status`` (None when it does not answer)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"{url}/status") as answer,
        ):
            return dict(await answer.json())
    except (aiohttp.ClientError, TimeoutError):
        return None


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` when time runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never happened within {within} s: {what}")


@dataclass(kw_only=True)
class Desk:
    """The engines of one test, their settings and the journal's pool."""

    settings: Settings
    platform: LocalPlatform
    pool: asyncpg.Pool

    def url(self, color: Color) -> str:
        """Return the control URL of ``color``."""
        port = self.settings.engine.blue_control_port
        if color == "green":
            port = self.settings.engine.green_control_port
        return f"http://127.0.0.1:{port}"

    async def status(self, color: Color) -> dict[str, Any] | None:
        """Return ``color``'s status."""
        return await engine_status(self.url(color))

    async def orders_since(self, instance: str, seq: int) -> int:
        """Return how many ``order_new`` ``instance`` journaled after journal ``seq``."""
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM journal_events"
                " WHERE kind = 'order_new' AND instance = $1 AND seq > $2",
                instance,
                seq,
            )
        )

    async def last_seq(self) -> int:
        """Return the journal's newest seq."""
        return int(await self.pool.fetchval("SELECT coalesce(max(seq), 0) FROM journal_events"))

    async def lease(self) -> tuple[str | None, int]:
        """Return (holder, epoch) of the trading lease."""
        row = await self.pool.fetchrow("SELECT holder, epoch FROM engine_leases")
        assert row is not None
        return row["holder"], int(row["epoch"])

    async def wait_trading(self, color: Color, *, within: float = 90) -> None:
        """Wait until ``color`` leads and has journaled orders of its epoch."""

        async def trading() -> bool:
            status = await self.status(color)
            if status is None or status.get("role") != "leader":
                return False
            return await self.orders_since(color, await self._epoch_start(status["epoch"])) > 0

        await eventually(trading, within=within, what=f"{color} leading and sending orders")

    async def _epoch_start(self, epoch: int) -> int:
        seq = await self.pool.fetchval(
            "SELECT min(seq) FROM journal_events WHERE epoch = $1", epoch
        )
        return int(seq or 0)


@asynccontextmanager
async def running_desk(
    stack: Settings, *, home: Path, dsn: str, market: int, release: Path
) -> AsyncIterator[Desk]:
    """Start blue leading with ``release``; stop every color of the desk afterwards."""
    settings = desk_settings(stack, home=home, dsn=dsn, market=market)
    platform = LocalPlatform(home, env=settings_env(settings), stop_timeout_s=30.0)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    desk = Desk(settings=settings, platform=platform, pool=pool)
    try:
        platform.start("blue", release)
        await desk.wait_trading("blue")
        yield desk
    finally:
        colors: tuple[Color, ...] = ("blue", "green")
        for color in colors:
            await asyncio.to_thread(platform.stop, color)
        await pool.close()


@asynccontextmanager
async def deploy_worker(settings: Settings) -> AsyncIterator[tuple[Client, str]]:
    """Run a worker of blue_green_deploy in-process on a unique task queue."""
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    task_queue = f"deploy-test-{uuid.uuid4().hex}"
    activities = DeployActivities(DeployConfig.from_settings(settings))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BlueGreenDeployWorkflow],
        activities=deploy_activities(activities),
    ):
        yield client, task_queue


async def venue_orders(venue: Any) -> list[tuple[int, str]]:
    """Return (timestamp ms, client id) of every order the venue took, over the symbols."""
    orders = []
    for symbol in SYMBOLS:
        for order in await venue.rest.exchange.fetch_orders(symbol, None, 1000):
            orders.append((int(order["timestamp"]), str(order["clientOrderId"])))
    return sorted(orders)


async def assert_one_sender_at_a_time(venue: Any, pool: asyncpg.Pool) -> None:
    """Fail unless leadership epochs rose one holder at a time and orders never overlapped.

    From the journal: every ``acquired`` epoch is above the previous one, every epoch's
    orders come from one instance. From the venue's order log: all orders of an epoch were
    taken before the first order of the next epoch.
    """
    acquired = [
        int(r["epoch"])
        for r in await pool.fetch(
            "SELECT epoch FROM journal_events"
            " WHERE kind = 'leadership' AND body->>'event' = 'acquired' ORDER BY seq"
        )
    ]
    assert acquired == sorted(set(acquired)), f"epochs acquired out of order: {acquired}"
    shared = await pool.fetch(
        "SELECT epoch, array_agg(DISTINCT instance) AS instances FROM journal_events"
        " WHERE kind = 'order_new' GROUP BY epoch HAVING count(DISTINCT instance) > 1"
    )
    assert not shared, f"epochs with orders of two instances: {shared}"
    spans: dict[int, tuple[int, int, str]] = {}
    for ts, client_id in await venue_orders(venue):
        instance, epoch_text, _ = client_id.split("-")
        first, last, _ = spans.get(int(epoch_text), (ts, ts, instance))
        spans[int(epoch_text)] = (min(first, ts), max(last, ts), instance)
    ordered = sorted(spans.items())
    for (epoch, (_, last, who)), (next_epoch, (first, _, next_who)) in pairwise(ordered):
        assert last <= first, (
            f"{who} (epoch {epoch}) sent at {last} ms after {next_who} (epoch {next_epoch})"
            f" started at {first} ms"
        )
