"""The control server on the safety thread, against the real exchange simulator.

The simulator runs as a subprocess (tests/stubs/exchange_sim.py) and is reached through
ccxt; orders really rest there and the halt really cancels them. The engine itself is a
minimal test implementation of the ``EngineControl`` protocol (``StubEngine``, in
tests/stubs/engine_control.py with the other builders) whose event loop runs on its own
thread, so a test can block that loop with ``time.sleep`` exactly like a stuck strategy
would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from bot4.settings import ExchangeSettings
from engine.dtypes import ACTIVE, HALTED
from engine.live.control import ControlConfig
from engine.live.safety import SafetyThread
from tests.stubs.api import poll
from tests.stubs.engine_control import (
    TOKEN,
    EngineLoop,
    StubEngine,
    open_order_count,
    place_resting_orders,
    running_safety,
    simulator,
    venue_client,
)

pytestmark = pytest.mark.timeout(120)


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
        # the engine's own conditions: an operator may neither take nor lift them
        ("hold", {"condition": "journal"}, "field 'condition' may not be 'journal'"),
        ("hold", {"condition": "venue"}, "field 'condition' may not be 'venue'"),
        ("unhold", {"condition": "kill_switch_unreadable"}, "may not be 'kill_switch_unreadable'"),
        ("hold", {"condition": "DR failover"}, "field 'condition' must match"),
        ("hold", {}, "field 'condition' is required"),
        ("journal_acks", {}, "field 'since' is required"),
        ("journal_acks", {"since": -1}, "field 'since' must be >= 0.0"),
        ("journal_acks", {"since": "yesterday"}, "field 'since' must be a number"),
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


async def test_failover_actions_reach_the_engine_with_their_fields(
    safety: SafetyThread, engine: StubEngine, http: aiohttp.ClientSession
):
    for action, body in (
        ("hold", {"condition": "dr_failover", "by": "dr", "reason": "switchover"}),
        ("unhold", {"condition": "dr_failover", "by": "dr", "reason": "switchover done"}),
        ("journal_acks", {"since": 1_800_000_000.5, "by": "dr", "reason": "rpo"}),
    ):
        async with http.post(f"{safety.url}/admin/{action}", headers=AUTH, json=body) as r:
            assert r.status == 200, await r.text()
    assert engine.calls == [
        ("hold", {"condition": "dr_failover", "by": "dr", "reason": "switchover"}),
        ("unhold", {"condition": "dr_failover", "by": "dr", "reason": "switchover done"}),
        ("journal_acks", {"since": "1800000000.5", "by": "dr", "reason": "rpo"}),
    ]


async def test_engine_action_on_a_stuck_loop_is_503_with_a_clear_message(
    safety: SafetyThread, engine: StubEngine, engine_loop: EngineLoop, http: aiohttp.ClientSession
):
    engine_loop.block(2.0)
    async with http.post(f"{safety.url}/admin/drain", headers=AUTH) as r:
        assert r.status == 503
        answer = await r.json()
    assert "did not complete drain within 0.5 s" in answer["error"]
    assert "/admin/halt still works" in answer["error"]


async def test_a_stalled_engine_loop_is_reported_with_the_call_holding_it(
    safety: SafetyThread, engine_loop: EngineLoop, http: aiohttp.ClientSession
):
    async def loop_status() -> dict[str, Any]:
        async with http.get(f"{safety.url}/status") as r:
            return dict((await r.json())["loop"])

    async def stalled() -> dict[str, Any] | None:
        status = await loop_status()
        return status if status["current"] is not None else None

    async def resumed() -> dict[str, Any] | None:
        status = await loop_status()
        return status if status["current"] is None and status["last"] else None

    assert (await loop_status())["stalls"] == 0  # probes answered every 100 ms
    engine_loop.block(2.5)  # the stub's ``stuck``: a time.sleep on the engine loop
    during = await poll(stalled, timeout_s=3.0)
    assert during["stalled_for_s"] >= 1.0
    assert during["current"]["where"][-1].endswith(" stuck"), during  # the innermost frame
    after = await poll(resumed, timeout_s=5.0)
    assert after["stalls"] == 1
    assert 2.0 <= after["last"]["seconds"] < 4.0, after
    assert after["last"]["where"] == during["current"]["where"]
    async with http.get(f"{safety.url}/metrics") as r:
        text = await r.text()
    (stalls,) = [s for s in text.splitlines() if s.startswith("bot4_engine_loop_stalls_total")]
    assert float(stalls.split()[-1]) >= 1.0  # the process's counter: other tests stall too
    assert 'bot4_engine_loop_lag_seconds_bucket{le="5.0"}' in text


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
