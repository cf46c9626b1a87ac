"""Builders of the engine's control-plane tests: a stub engine, its stuck-able loop, a
safety thread, the simulator as a subprocess, and resting orders placed through ccxt.

Nothing here is a mock of a real part: :class:`StubEngine` is a minimal implementation of
the ``EngineControl`` protocol (the real engine needs a venue session and a journal), and
its event loop runs on its own thread so a test can block it with ``time.sleep`` exactly
like a stuck strategy would. Used by the control, kill-switch, CLI, API and workflow tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot4.settings import ExchangeSettings
from engine.dtypes import ACTIVE
from engine.live.control import ControlConfig
from engine.live.gate import TradingGate
from engine.live.killswitch import KillSwitchConfig
from engine.live.safety import SafetyConfig, SafetyThread
from tests.stubs.exchange_sim import ccxt_binance, start_sim_process, stop_sim_process
from tests.stubs.ports import free_ports

TOKEN = "test-control-token-0123456789"
SYMBOLS = ("BTC/USDT", "ETH/USDT")


class StubEngine:
    """A minimal ``EngineControl``: records the admin calls it receives."""

    def __init__(self) -> None:
        self.is_ready = False
        self.trading_state = "ACTIVE"
        self.calls: list[tuple[str, dict[str, str]]] = []

    def status(self) -> dict[str, object]:
        return {
            "instance": "blue-test",
            "color": "blue",
            "release": "r1",
            "role": "leader",
            "epoch": 7,
            "trading_state": self.trading_state,
            "model_version": "m1",
            "positions": {"BTC/USDT": "0"},
            "pnl": {"realized": "0", "unrealized": "0"},
            "market_data_lag_s": 0.01,
            "journal_lag_s": 0.0,
        }

    def ready(self) -> bool:
        return self.is_ready

    async def _record(self, action: str, **fields: str) -> dict[str, object]:
        self.calls.append((action, fields))
        return {"done": action}

    async def pause(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("pause", by=by, reason=reason)

    async def resume(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("resume", by=by, reason=reason)

    async def drain(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("drain", by=by, reason=reason)

    async def release_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("release_leadership", by=by, reason=reason)

    async def acquire_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("acquire_leadership", by=by, reason=reason)

    async def load_model(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("load_model", version=version, by=by, reason=reason)

    async def flatten(self, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("flatten", by=by, reason=reason)

    async def model_shadow(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("model_shadow", version=version, by=by, reason=reason)

    async def model_canary(
        self, version: str, fraction: float, *, by: str, reason: str
    ) -> dict[str, object]:
        return await self._record(
            "model_canary", version=version, fraction=str(fraction), by=by, reason=reason
        )

    async def model_promote(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("model_promote", version=version, by=by, reason=reason)

    async def model_abort(self, version: str = "", *, by: str, reason: str) -> dict[str, object]:
        return await self._record("model_abort", version=version, by=by, reason=reason)

    async def reduce(
        self, symbols: str, *, lift_halt: int = 0, by: str, reason: str
    ) -> dict[str, object]:
        return await self._record(
            "reduce", symbols=symbols, lift_halt=str(lift_halt), by=by, reason=reason
        )

    async def restore(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("restore", symbols=symbols, by=by, reason=reason)

    async def child_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: str,
        limit_price: str,
        *,
        by: str,
        reason: str,
    ) -> dict[str, object]:
        return await self._record(
            "child_order", client_order_id=client_order_id, symbol=symbol, side=side, qty=qty,
            limit_price=limit_price, by=by, reason=reason,
        )  # fmt: skip

    async def liquidation_check(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("liquidation_check", symbols=symbols, by=by, reason=reason)

    async def hold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("hold", condition=condition, by=by, reason=reason)

    async def unhold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("unhold", condition=condition, by=by, reason=reason)

    async def journal_acks(self, since: float, *, by: str, reason: str) -> dict[str, object]:
        return await self._record("journal_acks", since=str(since), by=by, reason=reason)


class EngineLoop:
    """The "engine" event loop on its own thread; :meth:`block` makes it stuck."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.blocked = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> EngineLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        # admin calls cancelled while the loop was stuck are still queued: finish them
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending))
        self.loop.close()

    def block(self, seconds: float) -> None:
        """Make the loop run one synchronous call of ``seconds`` (a stuck strategy)."""

        def stuck() -> None:
            self.blocked.set()
            time.sleep(seconds)
            self.blocked.clear()

        self.loop.call_soon_threadsafe(stuck)
        assert self.blocked.wait(5)


@contextlib.contextmanager
def simulator() -> Iterator[ExchangeSettings]:
    """Run the exchange simulator as a subprocess; yield settings that reach it."""
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="bot4-sim-") as home:
        process = start_sim_process(Path(home), port)
        try:
            yield ExchangeSettings(port=port, symbols=SYMBOLS, sim_agent_orders_per_s=0.0)
        finally:
            stop_sim_process(process)


@contextlib.contextmanager
def running_safety(
    exchange: ExchangeSettings,
    engine: StubEngine,
    engine_loop: EngineLoop,
    *,
    dsn: str | None = None,
    engine_call_timeout_s: float = 5.0,
) -> Iterator[SafetyThread]:
    """Start a safety thread on a free port; stop it afterwards."""
    config = SafetyConfig(
        control=ControlConfig(
            port=free_ports(1)[0], token=TOKEN, engine_call_timeout_s=engine_call_timeout_s
        ),
        kill_switch=KillSwitchConfig(poll_interval_s=0.2, stale_after_s=1.0),
    )
    safety = SafetyThread(
        gate=TradingGate(ACTIVE),
        control=engine,
        engine_loop=engine_loop.loop,
        exchange=exchange,
        config=config,
        dsn=dsn,
    )
    safety.start()
    try:
        yield safety
    finally:
        safety.stop()


@contextlib.asynccontextmanager
async def venue_client(exchange: ExchangeSettings) -> AsyncIterator[Any]:
    """A plain ccxt client of the test (not the engine's, not the safety thread's)."""
    client = ccxt_binance(exchange.port)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def place_resting_orders(client: Any, per_symbol: int = 2) -> list[str]:
    """Place buy orders 10 % below the best bid (they rest); return their client ids."""
    ids = []
    for symbol in SYMBOLS:
        book = await client.fetch_order_book(symbol, 5)
        for _ in range(50):  # the simulated book can be one-sided for a moment
            if book["bids"]:
                break
            await asyncio.sleep(0.1)
            book = await client.fetch_order_book(symbol, 5)
        price = Decimal(repr(book["bids"][0][0])) * Decimal("0.9")
        price = Decimal(client.price_to_precision(symbol, price))
        limits = client.markets[symbol]["limits"]
        min_cost = Decimal(repr(limits["cost"]["min"] or 10))
        # twice the venue's minimum notional, rounded up to the lot size
        amount = client.amount_to_precision(symbol, str(min_cost * 2 / price * Decimal("1.1")))
        for n in range(per_symbol):
            cid = f"resting-{symbol.split('/')[0]}-{n}-{time.monotonic_ns() % 10**9}"
            await client.create_order(
                symbol, "limit", "buy", amount, str(price), {"newClientOrderId": cid}
            )
            ids.append(cid)
    return ids


async def open_order_count(client: Any) -> int:
    """Return how many orders are open at the venue over every test symbol."""
    counts = [len(await client.fetch_open_orders(symbol)) for symbol in SYMBOLS]
    return sum(counts)
