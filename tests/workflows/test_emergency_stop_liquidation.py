"""emergency_stop chained into liquidation, with a real engine, PostgreSQL and Temporal.

The stop halts blue (kill switch engaged), then starts ``liquidate-all``; the liquidation
waits for a second operator, lifts the halt to REDUCING (kill switch disengaged, every
symbol out of the strategy) and unwinds blue's BTC/USDT position to flat.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from engine.live.killswitch import read_kill_switch
from infra.stack.launcher import Stack
from tests.stubs.deploy import Desk, eventually, running_desk
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.liquidation import SYMBOL, build_long, position_lots, write_liquidation_release
from workflows.approvals import Decision
from workflows.emergency_stop import EmergencyStopInput, EmergencyStopWorkflow
from workflows.emergency_stop.activities import EmergencyStopActivities, EmergencyStopConfig
from workflows.liquidation import LiquidationResult, LiquidationWorkflow
from workflows.liquidation.activities import LiquidationActivities, LiquidationConfig
from workflows.registry import liquidation_activities

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(sim_config(agent_orders_per_s=60.0)) as running:
        yield running


@pytest.fixture
def market(sim: ThreadedSim) -> int:
    return sim.config.port


@pytest.fixture
async def desk(running_stack: Stack, dsn: str, market: int, tmp_path: Path) -> AsyncIterator[Desk]:
    release = write_liquidation_release(tmp_path)
    async with running_desk(
        running_stack.settings, home=tmp_path, dsn=dsn, market=market, release=release
    ) as desk:
        yield desk


async def test_a_stop_with_liquidate_halts_then_unwinds_after_a_second_operator_approves(
    desk: Desk, sim: ThreadedSim, market: int, dsn: str
) -> None:
    settings = desk.settings
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    stop = EmergencyStopActivities(EmergencyStopConfig.from_settings(settings))
    liquidation = LiquidationActivities(LiquidationConfig.from_settings(settings))
    task_queue = f"stop-liquidate-{uuid.uuid4().hex}"
    async with Worker(
        client, task_queue=task_queue, workflows=[EmergencyStopWorkflow, LiquidationWorkflow],
        activities=[stop.plan, stop.halt_engines, stop.cancel_venue_orders, stop.verify,
                    *liquidation_activities(liquidation)],
    ):  # fmt: skip
        # blue trades on until the halt: the agents stay paused from the build until blue
        # is halted and its quotes cancelled, or they lift its 100-lot ask meanwhile (a
        # 150-lot long was seen back at 0 by the time the stop came, nothing to unwind)
        with sim.agents_paused():
            await build_long(desk, market, 150, freeze=False, sim=sim)
            result = await client.execute_workflow(
                EmergencyStopWorkflow.run,
                EmergencyStopInput(reason="test", requested_by="alice", liquidate=True,
                                   liquidation_deadline_s=30),
                id=f"emergency-stop-{uuid.uuid4().hex[:8]}", task_queue=task_queue,
            )  # fmt: skip
        assert result.liquidation_workflow_id == "liquidate-all"
        halted = await desk.status("blue")
        assert halted is not None
        assert halted["trading_state"] == "HALTED"
        handle: WorkflowHandle[LiquidationWorkflow, LiquidationResult] = (
            client.get_workflow_handle_for(LiquidationWorkflow.run, "liquidate-all")
        )
        await eventually(lambda: _waiting(handle), within=30, what="waiting for approval")
        assert (await desk.status("blue") or {}).get("trading_state") == "HALTED"  # until approved
        await handle.execute_update(LiquidationWorkflow.approve, Decision(by="bob"))
        liquidated = await handle.result()

    assert liquidated.approved_by == "bob"
    assert liquidated.unwind is not None
    btc = next(leg for leg in liquidated.unwind.symbols if leg.symbol == SYMBOL)
    assert btc.remaining == "0", liquidated.unwind
    assert btc.children >= 1
    assert await position_lots(desk) == 0
    status = await desk.status("blue")
    assert status is not None
    assert status["trading_state"] == "REDUCING"  # lifted for the unwind, never to ACTIVE
    assert sorted(status["reduced"]) == sorted(status["positions"])  # every symbol out
    connection = await asyncpg.connect(dsn)
    try:
        assert not (await read_kill_switch(connection)).engaged
    finally:
        await connection.close()


async def _waiting(handle: Any) -> bool:
    progress = await handle.query(LiquidationWorkflow.progress)
    return bool(progress.waiting_for_approval == "approve")
