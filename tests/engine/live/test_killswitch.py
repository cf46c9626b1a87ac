"""The PostgreSQL kill switch: the flag, the poller, and the halt it triggers.

Real servers only: PostgreSQL of the session's stack (a scratch database per test) and
the exchange simulator as a subprocess, reached through ccxt. The engine is the minimal
``StubEngine`` of test_control.py, its loop on its own thread so it can be made stuck.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from bot4.settings import ExchangeSettings
from engine.dtypes import ACTIVE, HALTED, REDUCING
from engine.live.gate import TradingGate
from engine.live.killswitch import (
    KillSwitchConfig,
    KillSwitchPoller,
    KillSwitchState,
    read_kill_switch,
    set_kill_switch,
)
from engine.live.safety import SafetyThread
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
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def exchange() -> Iterator[ExchangeSettings]:
    with simulator() as settings:
        yield settings


@pytest.fixture
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def engine_loop() -> Iterator[EngineLoop]:
    with EngineLoop() as loop:
        yield loop


@pytest.fixture
def safety(exchange: ExchangeSettings, dsn: str, engine_loop: EngineLoop) -> Iterator[SafetyThread]:
    with running_safety(exchange, StubEngine(), engine_loop, dsn=dsn) as running:
        yield running


async def _wait_for(predicate, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_flag_is_engaged_and_disengaged_with_who_and_why(connection: asyncpg.Connection):
    assert (await read_kill_switch(connection)).engaged is False
    engaged = await set_kill_switch(connection, engaged=True, reason="venue incident", by="alice")
    assert engaged.engaged is True
    assert await read_kill_switch(connection) == engaged
    released = await set_kill_switch(connection, engaged=False, reason="resolved", by="bob")
    assert (released.engaged, released.changed_by, released.reason) == (False, "bob", "resolved")


async def test_changing_the_flag_without_a_reason_is_refused(connection: asyncpg.Connection):
    with pytest.raises(ValueError, match="reason must not be empty"):
        await set_kill_switch(connection, engaged=True, reason=" ", by="alice")
    assert (await read_kill_switch(connection)).engaged is False


async def test_engaged_flag_halts_and_cancels_within_a_second_while_the_engine_loop_is_stuck(
    safety: SafetyThread, exchange: ExchangeSettings, engine_loop: EngineLoop,
    connection: asyncpg.Connection,
):  # fmt: skip
    async with venue_client(exchange) as client:
        placed = await place_resting_orders(client)
        assert await open_order_count(client) == len(placed)
        engine_loop.block(5.0)

        started = time.monotonic()
        await set_kill_switch(connection, engaged=True, reason="drill", by="carol")
        await _wait_for(
            lambda: (
                safety.halter is not None
                and safety.halter.last is not None
                and safety.halter.last.path == "kill_switch"
            )
        )
        left = await open_order_count(client)
        elapsed = time.monotonic() - started

    assert engine_loop.blocked.is_set()  # the engine never ran during the halt
    assert elapsed < 1.0
    assert safety.gate.state == HALTED
    assert left == 0
    assert safety.halter is not None
    assert safety.halter.last is not None
    report = safety.halter.last
    assert report.verified
    assert sum(report.cancelled.values()) == len(placed)
    assert report.by == "carol"


async def test_resume_is_refused_while_the_flag_is_engaged(
    safety: SafetyThread, connection: asyncpg.Connection
):
    await set_kill_switch(connection, engaged=True, reason="drill", by="carol")
    await _wait_for(lambda: safety.poller is not None and safety.poller.engaged)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{safety.url}/admin/resume", headers=headers) as r,
    ):
        assert r.status == 409
        assert "bot4 engine resume" in (await r.json())["error"]


async def test_disengaging_the_flag_does_not_raise_the_gate(
    safety: SafetyThread, connection: asyncpg.Connection
):
    await set_kill_switch(connection, engaged=True, reason="drill", by="carol")
    await _wait_for(lambda: safety.gate.state == HALTED)
    await set_kill_switch(connection, engaged=False, reason="drill over", by="carol")
    await _wait_for(lambda: safety.poller is not None and not safety.poller.engaged)
    assert safety.gate.state == HALTED  # only an operator raises the state


async def test_poller_reconnects_after_its_connection_is_killed(
    connection: asyncpg.Connection, dsn: str
):
    gate = TradingGate(ACTIVE)
    halts: list[KillSwitchState] = []

    async def on_engaged(state: KillSwitchState) -> bool:
        halts.append(state)
        return True

    config = KillSwitchConfig(poll_interval_s=0.05, stale_after_s=5.0)
    poller = KillSwitchPoller(dsn, gate=gate, on_engaged=on_engaged, config=config)
    task = asyncio.create_task(poller.run())
    try:
        await _wait_for(lambda: poller.last_state is not None)
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await set_kill_switch(connection, engaged=True, reason="after reconnect", by="dave")
        await _wait_for(lambda: bool(halts))
    finally:
        poller.stop()
        await task
    assert gate.state == HALTED
    assert [h.reason for h in halts] == ["after reconnect"]  # halted once, verified


async def test_unreadable_flag_lowers_the_gate_to_reducing_not_halted():
    (port,) = free_ports(1)  # nothing listens there
    gate = TradingGate(ACTIVE)

    async def on_engaged(state: KillSwitchState) -> bool:
        raise AssertionError("must not halt when the flag cannot be read")

    config = KillSwitchConfig(poll_interval_s=0.05, stale_after_s=0.3, connect_timeout_s=0.2)
    poller = KillSwitchPoller(
        f"postgresql://postgres@127.0.0.1:{port}/bot4",
        gate=gate,
        on_engaged=on_engaged,
        config=config,
    )
    task = asyncio.create_task(poller.run())
    try:
        await _wait_for(lambda: gate.effective != ACTIVE)
    finally:
        poller.stop()
        await task
    assert gate.effective == REDUCING  # held, not lowered: it clears once readable again
    assert gate.state == ACTIVE
    assert gate.holds == {"kill_switch_unreadable": REDUCING}
