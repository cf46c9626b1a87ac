"""The control server on the safety thread, against the real exchange simulator.

The simulator runs as a subprocess (tests/stubs/exchange_sim.py) and is reached through
ccxt; orders really rest there and the halt really cancels them. The engine itself is a
minimal test implementation of the ``EngineControl`` protocol (:class:`StubEngine`) whose
event loop runs on its own thread, so a test can block that loop with ``time.sleep``
exactly like a stuck strategy would. Builders here are reused by the kill-switch and CLI
tests.
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

import aiohttp
import pytest

from bot4.settings import ExchangeSettings
from engine.dtypes import ACTIVE, HALTED
from engine.live.control import ControlConfig
from engine.live.gate import TradingGate
from engine.live.killswitch import KillSwitchConfig
from engine.live.safety import SafetyConfig, SafetyThread
from tests.stubs.exchange_sim import ccxt_binance, start_sim_process, stop_sim_process
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)

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


@pytest.fixture(scope="module")
def exchange() -> Iterator[ExchangeSettings]:
    with simulator() as settings:
        yield settings


@pytest.fixture
def engine_loop() -> Iterator[EngineLoop]:
    with EngineLoop() as loop:
        yield loop


@pytest.fixture
def engine() -> StubEngine:
    return StubEngine()


@pytest.fixture
def safety(
    exchange: ExchangeSettings, engine: StubEngine, engine_loop: EngineLoop
) -> Iterator[SafetyThread]:
    with running_safety(exchange, engine, engine_loop, engine_call_timeout_s=0.5) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_healthz_answers_and_readyz_is_503_until_the_engine_is_ready(
    safety: SafetyThread, engine: StubEngine, http: aiohttp.ClientSession
):
    async with http.get(f"{safety.url}/healthz") as r:
        assert r.status == 200
    async with http.get(f"{safety.url}/readyz") as r:
        assert r.status == 503
    engine.is_ready = True
    async with http.get(f"{safety.url}/readyz") as r:
        assert r.status == 200
        assert await r.json() == {"ready": True}


async def test_status_reports_the_engine_and_the_gate_as_seen_by_the_safety_thread(
    safety: SafetyThread, http: aiohttp.ClientSession
):
    safety.gate.lower(HALTED, reason="test", by="test")
    async with http.get(f"{safety.url}/status") as r:
        assert r.status == 200
        status = await r.json()
    assert status["instance"] == "blue-test"
    assert status["epoch"] == 7
    assert status["trading_state"] == "HALTED"  # the gate, not the engine's stale view
    assert status["kill_switch"] == {"polled": False}


async def test_status_shows_the_engines_own_lowering_below_an_active_gate(
    safety: SafetyThread, engine: StubEngine, http: aiohttp.ClientSession
):
    engine.trading_state = "REDUCING"  # a condition (venue, journal) that clears by itself
    async with http.get(f"{safety.url}/status") as r:
        status = await r.json()
    assert status["trading_state"] == "REDUCING"
    assert safety.gate.name == "ACTIVE"


async def test_metrics_exposes_engine_and_venue_metrics(
    safety: SafetyThread, http: aiohttp.ClientSession
):
    async with http.get(f"{safety.url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    assert "bot4_engine_trading_state 0.0" in text
    assert "bot4_engine_tick_to_decision_seconds_bucket" in text
    assert "bot4_venue_requests_total" in text  # the safety client loaded markets


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}],
)
async def test_admin_without_the_right_bearer_token_is_401_and_does_nothing(
    safety: SafetyThread, engine: StubEngine, http: aiohttp.ClientSession, headers: dict[str, str]
):
    async with http.post(f"{safety.url}/admin/halt", headers=headers) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
    async with http.post(f"{safety.url}/admin/pause", headers=headers) as r:
        assert r.status == 401
    assert safety.gate.state == ACTIVE
    assert engine.calls == []


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("load_model", {}, "field 'version' is required"),
        ("load_model", {"version": "m 2; drop"}, "field 'version' must match"),
        ("pause", {"version": "m2"}, "unknown field(s) ['version']"),
        ("halt", {"reason": 5}, "field 'reason' must be a non-empty string"),
        ("halt", [1, 2], "body must be a JSON object"),
        ("halt", "{not json", "body is not valid JSON"),
    ],
)
async def test_bad_payload_is_400_naming_the_field(
    safety: SafetyThread,
    engine: StubEngine,
    http: aiohttp.ClientSession,
    action: str,
    body: Any,
    message: str,
):
    data = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body
    async with http.post(
        f"{safety.url}/admin/{action}", headers=AUTH, json=json_body, data=data
    ) as r:
        assert r.status == 400
        answer = await r.json()
    assert message in answer["error"]
    assert safety.gate.state == ACTIVE
    assert engine.calls == []


async def test_unknown_action_is_404(safety: SafetyThread, http: aiohttp.ClientSession):
    async with http.post(f"{safety.url}/admin/explode", headers=AUTH) as r:
        assert r.status == 404
        assert "unknown action 'explode'" in (await r.json())["error"]


async def test_engine_actions_run_on_the_engine_loop(
    safety: SafetyThread, engine: StubEngine, http: aiohttp.ClientSession
):
    body = {"version": "m2", "by": "alice", "reason": "rollout"}
    async with http.post(f"{safety.url}/admin/load_model", headers=AUTH, json=body) as r:
        assert r.status == 200
        assert await r.json() == {"action": "load_model", "result": {"done": "load_model"}}
    async with http.post(f"{safety.url}/admin/pause", headers=AUTH) as r:
        assert r.status == 200
    assert engine.calls[0] == ("load_model", body)
    assert engine.calls[1][0] == "pause"


async def test_engine_action_on_a_stuck_loop_is_503_with_a_clear_message(
    safety: SafetyThread, engine: StubEngine, engine_loop: EngineLoop, http: aiohttp.ClientSession
):
    engine_loop.block(2.0)
    async with http.post(f"{safety.url}/admin/drain", headers=AUTH) as r:
        assert r.status == 503
        answer = await r.json()
    assert "did not complete drain within 0.5 s" in answer["error"]
    assert "/admin/halt still works" in answer["error"]


async def test_halt_through_the_endpoint_cancels_everything_while_the_engine_loop_is_stuck(
    safety: SafetyThread, exchange: ExchangeSettings, engine_loop: EngineLoop,
    http: aiohttp.ClientSession,
):  # fmt: skip
    async with venue_client(exchange) as client:
        placed = await place_resting_orders(client)
        assert await open_order_count(client) == len(placed)
        engine_loop.block(5.0)

        started = time.monotonic()
        async with http.post(
            f"{safety.url}/admin/halt", headers=AUTH, json={"reason": "test halt", "by": "bob"}
        ) as r:
            assert r.status == 200
            report = await r.json()
        left = await open_order_count(client)
        elapsed = time.monotonic() - started

    assert engine_loop.blocked.is_set()  # the engine never ran during the halt
    assert elapsed < 1.0
    assert safety.gate.state == HALTED
    assert left == 0
    assert report["verified"] is True
    assert sum(report["cancelled"].values()) == len(placed)
    assert report["by"] == "bob"


async def test_halt_with_nothing_open_is_verified(
    safety: SafetyThread, http: aiohttp.ClientSession
):
    async with http.post(f"{safety.url}/admin/halt", headers=AUTH) as r:
        assert r.status == 200
        report = await r.json()
    assert report["verified"] is True
    assert report["open_orders"] == {"BTC/USDT": [], "ETH/USDT": []}


def test_control_config_refuses_a_short_token():
    with pytest.raises(ValueError, match="token must have at least 16 characters"):
        ControlConfig(token="short")
