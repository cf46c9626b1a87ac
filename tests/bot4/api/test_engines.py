"""Engine admin actions through the API, proxied to a real engine control server.

The control server is the engine's own (:class:`engine.live.control.ControlServer`) with a
minimal test engine behind it (``StubEngine`` of tests/stubs/engine_control.py); the
API reaches it over HTTP with the engines' token, like it reaches a running engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from engine.dtypes import ACTIVE, HALTED
from engine.live.control import ControlConfig, ControlServer
from engine.live.gate import TradingGate
from engine.live.killswitch import read_kill_switch
from tests.bot4.api.conftest import Keys, audit_row
from tests.stubs.api import Recorder, RunningApi, ServerSecrets, cli_env, run_bot4
from tests.stubs.engine_control import StubEngine
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)


@dataclass
class _Halt:
    verified: bool = True

    def as_json(self) -> dict[str, object]:
        return {"verified": self.verified, "cancelled": 0}


@dataclass
class BlueEngine:
    engine: StubEngine
    gate: TradingGate
    halts: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
async def blue(api: RunningApi, server_secrets: ServerSecrets) -> AsyncIterator[BlueEngine]:
    """An engine control server on the port the API knows as blue's."""
    running = BlueEngine(engine=StubEngine(), gate=TradingGate(ACTIVE))

    async def halt(reason: str, by: str) -> _Halt:
        running.halts.append((reason, by))
        running.gate.lower(HALTED, reason=reason, by=by)
        return _Halt()

    server = ControlServer(
        ControlConfig(
            port=api.settings.engine.blue_control_port, token=server_secrets.engine_token
        ),
        control=running.engine,
        engine_loop=asyncio.get_running_loop(),
        gate=running.gate,
        halt=halt,
    )
    await server.start()
    try:
        yield running
    finally:
        await server.stop()


async def _flag(api: RunningApi) -> bool:
    connection = await asyncpg.connect(api.settings.db.effective_dsn())
    try:
        return (await read_kill_switch(connection)).engaged
    finally:
        await connection.close()


async def test_trader_pauses_an_engine_through_the_api_named_as_its_key(
    api: RunningApi, recorder: Recorder, keys: Keys, blue: BlueEngine
):
    trader = await keys.create("trader", name="desk-trader")
    async with recorder.client(api, trader["key"]) as http:
        answer = await http.post("/v1/engines/blue/pause", json={"reason": "news in 5 min"})
        resume = await http.post("/v1/engines/blue/resume", json={"reason": "news over"})
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["engines"]
    assert (row["color"], row["reached"], row["ok"]) == ("blue", True, True)
    action, fields = blue.engine.calls[0]
    assert action == "pause"
    assert fields["by"] == f"desk-trader ({trader['id']})"
    cid = answer.headers["x-correlation-id"]
    assert fields["reason"] == f"news in 5 min [correlation id {cid}]"  # leads to the audit row
    assert resume.status_code == 403  # raising risk needs an operator
    assert len(blue.engine.calls) == 1


async def test_symbols_leave_the_strategy_by_a_trader_and_come_back_by_an_operator(
    api: RunningApi, keys: Keys, blue: BlueEngine
):
    trader = await keys.create("trader", name="cli-trader")
    operator = await keys.create("operator", name="cli-operator")
    as_trader = cli_env(api.settings, BOT4_API_KEY=trader["key"])
    as_operator = cli_env(api.settings, BOT4_API_KEY=operator["key"])
    reduce = await run_bot4(as_trader, "engine", "reduce", "--symbol", "BTC/USDT", "--symbol",
                            "ETH/USDT", "--reason", "incident", "--color", "blue")  # fmt: skip
    assert reduce.returncode == 0, reduce.stderr
    action, fields = blue.engine.calls[-1]
    assert (action, fields["symbols"]) == ("reduce", "BTC/USDT,ETH/USDT")
    refused = await run_bot4(as_trader, "engine", "restore", "--symbol", "BTC/USDT",
                             "--reason", "over", "--color", "blue")  # fmt: skip
    assert refused.returncode != 0  # giving symbols back raises risk: an operator's call
    assert len(blue.engine.calls) == 1
    restore = await run_bot4(as_operator, "engine", "restore", "--symbol", "BTC/USDT",
                             "--reason", "incident over", "--color", "blue")  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    assert blue.engine.calls[-1][0] == "restore"
    bad = await run_bot4(as_operator, "engine", "restore", "--symbol", "btc-usdt",
                         "--reason", "x", "--color", "blue")  # fmt: skip
    assert bad.returncode != 0
    assert "symbols" in bad.stderr
    assert len(blue.engine.calls) == 2


async def test_action_on_an_engine_that_does_not_run_answers_503_and_is_audited(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    operator = await keys.create("operator", name="desk-operator")
    async with recorder.client(api, operator["key"]) as http:
        answer = await http.post("/v1/engines/green/drain", json={"reason": "maintenance"})
    assert answer.status_code == 503
    assert answer.json()["engines"][0]["reached"] is False
    row = await audit_row(api.settings.db.effective_dsn(), answer.headers["x-correlation-id"])
    assert row is not None
    assert (row["status"], row["outcome"]) == (503, "failed")


async def test_cli_halt_goes_through_the_api_and_falls_back_to_the_direct_path(
    api: RunningApi, keys: Keys, blue: BlueEngine
):
    trader = await keys.create("trader", name="cli-trader")
    env = cli_env(api.settings, BOT4_API_KEY=trader["key"])
    done = await run_bot4(env, "engine", "halt", "--json", "--reason", "drill", "--color", "blue")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["path"] == "api"
    assert document["kill_switch"]["engaged"] is True
    assert document["kill_switch"]["changed_by"] == f"cli-trader ({trader['id']})"
    assert document["engines"][0]["ok"] is True
    assert blue.gate.state == HALTED
    assert await _flag(api)
    row = await audit_row(api.settings.db.effective_dsn(), document["correlation_id"])
    assert row is not None
    assert (row["route"], row["key_id"]) == ("/v1/halt", trader["id"])

    # the API is down: a halt must still work, on the direct path, and say so
    (dead,) = free_ports(1)
    down = {**env, "BOT4_API_URL": f"http://127.0.0.1:{dead}"}
    fallback = await run_bot4(down, "engine", "halt", "--reason", "api down", "--color", "blue")
    assert fallback.returncode == 0, fallback.stderr
    assert "path: direct" in fallback.stderr
    assert "no answer from the control API" in fallback.stderr
    assert len(blue.halts) == 2

    # raising risk is never done behind the API's back unless asked for
    resume = await run_bot4(down, "engine", "resume", "--reason", "drill over")
    assert resume.returncode == 1
    assert "--direct" in resume.stderr
    assert await _flag(api)
    direct = await run_bot4(
        down, "engine", "resume", "--direct", "--json", "--reason", "drill over"
    )
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["path"] == "direct"
    assert not await _flag(api)
