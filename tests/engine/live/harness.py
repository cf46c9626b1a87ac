"""Builders for order-manager tests: a venue session, a leader's journal, a manager.

Real PostgreSQL and the real simulator through ccxt; nothing here is a mock. Also the
body of the burst subprocess that ``test_recovery`` kills with SIGKILL (``python -m
tests.engine.live.harness DSN PORT``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg

from bot4.settings import ExchangeSettings
from engine.execution import (
    GatewayConfig,
    ResolvePolicy,
    RetryPolicy,
    VenueSession,
    open_session,
)
from engine.execution.models import Side
from engine.journal import FillRecord, GroupCommitter, Journal, JournalEvent, JournalKind
from engine.journal.writer import AppendResult, StagedBatch
from engine.leadership import Lease
from engine.live.gate import TradingGate
from engine.live.orders import OrderManager, OrderManagerConfig
from tests.stubs.exchange_sim import ADMIN_TOKEN

SYMBOLS = ("BTC/USDT", "ETH/USDT")
INSTANCE = "blue"


async def open_venue(port: int) -> VenueSession:
    """Open a session on the simulator at ``port`` with fast resolution of lost answers."""
    return await open_session(
        ExchangeSettings(port=port, symbols=SYMBOLS),
        config=GatewayConfig(retry=RetryPolicy(max_attempts=3, base_s=0.05, max_backoff_s=0.2)),
        resolve_policy=ResolvePolicy(poll_interval_s=0.05, not_found_grace_s=0.3),
        timeout_ms=3000,
    )


@dataclass(kw_only=True, slots=True)
class Rig:
    """A running manager with what it was built from."""

    manager: OrderManager
    venue: VenueSession
    pool: asyncpg.Pool
    gate: TradingGate
    committer: GroupCommitter


class HangingJournal(Journal):
    """A journal that hangs for ever on its first write of a new order after
    ``healthy_writes`` writes: the process will die inside that group commit.

    Stands in for a primary or synchronous standby that stops answering: nothing real
    can be made to hang on demand from inside the test, so this one method is replaced.
    Every write before the hang is real.
    """

    def __init__(self, pool: asyncpg.Pool, *, instance: str, healthy_writes: int) -> None:
        super().__init__(pool, instance=instance)
        self.healthy_writes = healthy_writes

    async def _count_or_hang(self, events: Sequence[JournalEvent]) -> None:
        self.healthy_writes -= 1
        if self.healthy_writes < 0 and any(e.kind is JournalKind.ORDER_NEW for e in events):
            print("journal hangs", flush=True)
            await asyncio.Event().wait()

    # the group commit writes through either (stage: overlapped with a commit; append: alone)
    async def append(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = (), *, epoch: int
    ) -> AppendResult:
        await self._count_or_hang(events)
        return await super().append(events, fills, epoch=epoch)

    async def stage(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = (), *, epoch: int
    ) -> StagedBatch:
        await self._count_or_hang(events)
        return await super().stage(events, fills, epoch=epoch)


@asynccontextmanager
async def rig(
    dsn: str,
    port: int,
    *,
    config: OrderManagerConfig | None = None,
    hang_after_writes: int | None = None,
) -> AsyncIterator[Rig]:
    """Take the lease as ``blue`` (a new epoch) and yield a manager on it.

    With ``hang_after_writes`` the journal hangs after that many writes and the manager
    sends orders before their ORDER_NEW is durable while the committer is healthy (as the
    engine does), so orders reach the venue that the journal never learns of.
    """
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as pool:
        epoch = await Lease(pool, instance=INSTANCE, ttl_s=60).try_acquire()
        assert epoch is not None
        journal = (
            Journal(pool, instance=INSTANCE)
            if hang_after_writes is None
            else HangingJournal(pool, instance=INSTANCE, healthy_writes=hang_after_writes)
        )
        committer = GroupCommitter(journal, epoch=lambda: epoch)
        committer.start()
        venue = await open_venue(port)
        gate = TradingGate()
        try:
            manager = OrderManager(
                client=venue.orders, account=venue.account, committer=committer, gate=gate,
                instruments=venue.instruments, instance=INSTANCE, epoch=epoch,
                config=config or OrderManagerConfig(poll_interval_s=0.05),
                send_before_durable=None if hang_after_writes is None else (
                    lambda: committer.healthy),
            )  # fmt: skip
            yield Rig(manager=manager, venue=venue, pool=pool, gate=gate, committer=committer)
        finally:
            await venue.close()
            await committer.stop()


async def set_fault(port: int, name: str, **params: Any) -> None:
    """Activate a simulator fault."""
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"http://127.0.0.1:{port}/admin/faults/{name}",
            json=params,
            headers={"X-Bot4-Admin-Token": ADMIN_TOKEN},
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def clear_faults(port: int) -> None:
    """Clear every simulator fault."""
    async with (
        aiohttp.ClientSession() as http,
        http.delete(
            f"http://127.0.0.1:{port}/admin/faults", headers={"X-Bot4-Admin-Token": ADMIN_TOKEN}
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def resting_price(venue: VenueSession, symbol: str, *, side: str) -> Decimal:
    """Return a limit price 10 % away from the touch, where nothing fills it."""
    book = await venue.rest.exchange.fetch_order_book(symbol, 5)
    instrument = venue.instruments[symbol]
    if side == "buy":
        ticks = instrument.price_to_ticks(repr(book["bids"][0][0]))
        return instrument.ticks_to_price(ticks - ticks // 10)
    ticks = instrument.price_to_ticks(repr(book["asks"][0][0]))
    return instrument.ticks_to_price(ticks + ticks // 10)


async def venue_client_ids(venue: VenueSession, symbol: str) -> list[str]:
    """Return the client id of every order the venue ever took on ``symbol`` (allOrders)."""
    orders = await venue.rest.exchange.fetch_orders(symbol, None, 1000)
    return [str(o["clientOrderId"]) for o in orders]


async def burst(dsn: str, port: int, *, hang_after_writes: int | None = None) -> None:
    """Keep six orders going at once for ever (market and resting, both symbols).

    Each outcome is printed as it comes, not per wave, so a kill lands among orders in
    every stage: being journaled, in flight, acked but not yet journaled as such.
    """
    config = OrderManagerConfig(poll_interval_s=0.02)
    async with rig(dsn, port, config=config, hang_after_writes=hang_after_writes) as r:
        stop = asyncio.Event()
        poller = asyncio.create_task(r.manager.run(stop))
        prices = {
            (s, side): await resting_price(r.venue, s, side=side)
            for s in SYMBOLS for side in ("buy", "sell")
        }  # fmt: skip

        async def one(n: int) -> None:
            symbol = SYMBOLS[n % 2]
            side: Side = "buy" if n % 3 else "sell"
            amount = r.venue.instruments[symbol].lots_to_qty(50 + n % 7)
            if n % 2:
                order = await r.manager.submit(
                    symbol=symbol, side=side, type="market", amount=amount
                )
            else:
                order = await r.manager.submit(
                    symbol=symbol, side=side, type="limit", amount=amount,
                    price=prices[symbol, side],
                )  # fmt: skip
            print(f"sent {order.client_order_id} {order.phase.value}", flush=True)

        running: set[asyncio.Task[None]] = set()
        n = 0
        while not poller.done():
            while len(running) < 6:
                n += 1
                running.add(asyncio.create_task(one(n)))
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        poller.result()


if __name__ == "__main__":
    hang = int(sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(burst(sys.argv[1], int(sys.argv[2]), hang_after_writes=hang))
