"""emergency_stop on the session's real Temporal dev server, PostgreSQL and simulator.

A worker of the test's own runs in-process on a unique task queue; orders rest at the
simulator through ccxt (the demo account), the kill-switch flag lives in a scratch
database. One engine is a real control server on a safety thread (tests/engine/live
builders); the other color's port has nothing listening, as when an engine is down.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from bot4.settings import ExchangeSettings
from engine.live.killswitch import read_kill_switch
from engine.live.safety import SafetyThread
from infra.stack.launcher import Stack
from tests.stubs.engine_control import (
    SYMBOLS,
    TOKEN,
    EngineLoop,
    StubEngine,
    open_order_count,
    place_resting_orders,
    running_safety,
    venue_client,
)
from tests.stubs.ports import free_ports
from workflows.emergency_stop import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    EmergencyStopInput,
    EmergencyStopResult,
    EmergencyStopWorkflow,
)
from workflows.emergency_stop.activities import EmergencyStopActivities, EmergencyStopConfig
from workflows.emergency_stop.models import EngineEndpoint

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def exchange(running_stack: Stack) -> ExchangeSettings:
    return running_stack.settings.exchange.model_copy(update={"symbols": SYMBOLS})


@pytest.fixture
def engine_loop() -> Iterator[EngineLoop]:
    with EngineLoop() as loop:
        yield loop


@pytest.fixture
def blue(exchange: ExchangeSettings, engine_loop: EngineLoop, dsn: str) -> Iterator[SafetyThread]:
    """A real control server (safety thread) polling the scratch database's flag."""
    with running_safety(exchange, StubEngine(), engine_loop, dsn=dsn) as safety:
        yield safety


async def run_stop(
    running_stack: Stack,
    *,
    dsn: str,
    exchange: ExchangeSettings,
    engines: tuple[EngineEndpoint, ...],
    request: EmergencyStopInput,
) -> EmergencyStopResult:
    """Run the workflow on a worker of this test; return its result."""
    client = await Client.connect(
        running_stack.settings.temporal.effective_address(),
        namespace=running_stack.settings.temporal.namespace,
    )
    config = EmergencyStopConfig(
        dsn=dsn, exchange=exchange, engines=engines, control_token=TOKEN, timeout_s=2.0
    )
    activities = EmergencyStopActivities(config)
    task_queue = f"emergency-stop-test-{uuid.uuid4().hex}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[EmergencyStopWorkflow],
        activities=[
            activities.plan,
            activities.halt_engines,
            activities.cancel_venue_orders,
            activities.verify,
        ],
    ):
        return await client.execute_workflow(
            EmergencyStopWorkflow.run,
            request,
            id=f"emergency-stop-test-{uuid.uuid4().hex}",
            task_queue=task_queue,
            id_reuse_policy=ID_REUSE_POLICY,
            id_conflict_policy=ID_CONFLICT_POLICY,
        )


async def flag_engaged(dsn: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        return (await read_kill_switch(connection)).engaged
    finally:
        await connection.close()


def nobody_listens() -> EngineEndpoint:
    return EngineEndpoint(color="green", url=f"http://127.0.0.1:{free_ports(1)[0]}")


@pytest.fixture
async def venue(exchange: ExchangeSettings) -> AsyncIterator[Any]:
    async with venue_client(exchange) as client:
        yield client


async def test_stop_halts_engines_cancels_every_order_sets_the_flag_and_reports(
    running_stack: Stack, dsn: str, exchange: ExchangeSettings, blue: SafetyThread, venue: Any
) -> None:
    placed = await place_resting_orders(venue)
    assert await open_order_count(venue) >= len(placed)
    engines = (EngineEndpoint(color="blue", url=blue.url), nobody_listens())

    result = await run_stop(
        running_stack,
        dsn=dsn,
        exchange=exchange,
        engines=engines,
        request=EmergencyStopInput(reason="test: venue misbehaves", requested_by="pytest"),
    )

    assert await open_order_count(venue) == 0
    assert await flag_engaged(dsn)
    assert result.dry_run is False
    assert result.kill_switch_engaged is True
    assert result.engines_halted == ("blue",)
    assert result.engines_unreachable == ("green",)
    assert result.open_orders_left == 0
    # blue's own halt cancels the same account's orders first; the workflow's cancel then
    # finds what is left (none or some), and verify proves nothing is open
    assert 0 <= result.orders_canceled <= len(placed)
    assert result.verify_rounds >= 1
    assert result.duration_ms > 0


async def test_stop_with_every_engine_unreachable_still_cancels_and_completes(
    running_stack: Stack, dsn: str, exchange: ExchangeSettings, venue: Any
) -> None:
    placed = await place_resting_orders(venue, per_symbol=1)

    result = await run_stop(
        running_stack,
        dsn=dsn,
        exchange=exchange,
        engines=(nobody_listens(),),
        request=EmergencyStopInput(reason="test: engines down", requested_by="pytest"),
    )

    assert await open_order_count(venue) == 0
    assert await flag_engaged(dsn)
    assert result.engines_halted == ()
    assert result.engines_unreachable == ("green",)
    assert result.orders_canceled >= len(placed)


async def test_dry_run_returns_the_plan_and_changes_nothing(
    running_stack: Stack, dsn: str, exchange: ExchangeSettings, venue: Any
) -> None:
    placed = await place_resting_orders(venue, per_symbol=1)
    engines = (nobody_listens(),)
    try:
        result = await run_stop(
            running_stack,
            dsn=dsn,
            exchange=exchange,
            engines=engines,
            request=EmergencyStopInput(reason="test: plan", requested_by="pytest", dry_run=True),
        )

        assert result.dry_run is True
        assert result.plan.engines == engines
        assert result.plan.symbols == SYMBOLS
        assert result.orders_canceled == 0
        assert await open_order_count(venue) >= len(placed)
        assert not await flag_engaged(dsn)
    finally:
        for symbol in SYMBOLS:
            await venue.cancel_all_orders(symbol)
