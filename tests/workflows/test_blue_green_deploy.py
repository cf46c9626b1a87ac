"""blue_green_deploy with real engines, PostgreSQL, the simulator and the session's Temporal.

Blue leads (a ``bot4 engine run`` process started through LocalPlatform) on a scratch
database and a simulator with agents trading; the workflow runs on an in-process worker
of the test's own task queue and starts green through the same platform. One sender at a
time is checked from the journal and from the venue's order log.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from infra.stack.launcher import Stack
from tests.engine.live.harness import open_venue
from tests.stubs.deploy import (
    Desk,
    assert_one_sender_at_a_time,
    deploy_worker,
    eventually,
    running_desk,
    write_release,
)
from tests.stubs.engine_control import TOKEN
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.worker_process import WorkerProcess
from workflows.approvals import Decision
from workflows.blue_green_deploy import (
    BlueGreenDeployWorkflow,
    RolloutAlreadyStartedError,
    RolloutInput,
    RolloutResult,
    start_rollout,
)
from workflows.blue_green_deploy.activities import DeployActivities, DeployConfig
from workflows.blue_green_deploy.models import (
    EngineEndpoint,
    HandoffInput,
    RollbackInput,
    StartStandbyInput,
    WarmInput,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def market() -> Iterator[int]:
    """A simulator with background agents, so books move and quotes get filled."""
    with ThreadedSim(sim_config(agent_orders_per_s=150.0)) as sim:
        yield sim.config.port


@pytest.fixture
def version() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def desk(
    running_stack: Stack, dsn: str, market: int, tmp_path: Path, version: str
) -> AsyncIterator[Desk]:
    blue_release = write_release(tmp_path, f"{version}-old")
    async with running_desk(
        running_stack.settings, home=tmp_path, dsn=dsn, market=market, release=blue_release
    ) as desk:
        yield desk


@pytest.fixture
async def venue(market: int) -> AsyncIterator[Any]:
    session = await open_venue(market)
    yield session
    await session.close()


def rollout(release: Path, **fields: Any) -> RolloutInput:
    """A rollout with short warm and bake periods."""
    values: dict[str, Any] = {"requested_by": "alice", "warm_s": 2, "shadow_samples": 2,
                              "bake_s": 4, "bake_interval_s": 1, "reason": "test"}  # fmt: skip
    values.update(fields)
    return RolloutInput(release_path=str(release), **values)


async def test_rollout_hands_over_to_green_one_sender_at_a_time_and_reports_the_gap(
    desk: Desk, venue: Any, tmp_path: Path, version: str
) -> None:
    _, old_epoch = await desk.lease()
    release = write_release(tmp_path, f"{version}-new")

    async with deploy_worker(desk.settings) as (client, task_queue):
        handle = await start_rollout(client, rollout(release), task_queue=task_queue)
        result = await handle.result()

    assert result.completed, result
    assert not result.rolled_back
    assert result.handoff is not None
    assert (result.handoff.old_epoch, result.handoff.new_epoch) == (old_epoch, old_epoch + 1)
    assert result.handoff.gap_ms is not None
    assert result.handoff.gap_ms > 0
    assert result.handoff.old_last_order is not None
    assert result.handoff.old_last_order.startswith(f"blue-{old_epoch}-")
    assert result.handoff.new_first_order is not None
    assert result.handoff.new_first_order.startswith(f"green-{old_epoch + 1}-")
    assert result.bake_rounds >= 2
    assert await desk.lease() == ("green", old_epoch + 1)
    assert not desk.platform.status("blue").running  # retired
    green = await desk.status("green")
    assert green is not None
    assert green["role"] == "leader"
    assert green["release"]["version"] == f"{version}-new"
    await desk.wait_trading("green")
    await assert_one_sender_at_a_time(venue, desk.pool)
    print(f"handoff gap {result.handoff.gap_ms} ms, took {result.duration_s} s")


async def test_release_failing_the_shadow_gate_is_rolled_back_and_blue_keeps_leading(
    desk: Desk, venue: Any, tmp_path: Path, version: str
) -> None:
    _, epoch = await desk.lease()
    # quotes 50-100 bps wide where the leader quotes a few: the standby never agrees
    release = write_release(
        tmp_path, f"{version}-wide", base_half_spread_ticks=30000, min_half_spread_ticks=30000
    )

    async with deploy_worker(desk.settings) as (client, task_queue):
        handle = await start_rollout(
            client, rollout(release, min_shadow_agreement=0.5), task_queue=task_queue
        )
        result = await handle.result()

    assert result.rolled_back, result
    assert result.failed_step == "health_gate"
    assert "shadow agreement" in result.reason
    assert result.handoff is None
    assert result.rollback is not None
    assert result.rollback.new_stopped
    assert not desk.platform.status("green").running
    assert await desk.lease() == ("blue", epoch)  # never handed over: the epoch did not move
    seq = await desk.last_seq()
    await eventually(lambda: _sent_since(desk, "blue", seq), within=30, what="blue trades")
    await assert_one_sender_at_a_time(venue, desk.pool)


async def test_release_degrading_during_bake_is_rolled_back_and_blue_trades_again(
    desk: Desk, venue: Any, tmp_path: Path, version: str
) -> None:
    _, epoch = await desk.lease()
    release = write_release(tmp_path, f"{version}-new")

    async with deploy_worker(desk.settings) as (client, task_queue):
        handle = await start_rollout(client, rollout(release, bake_s=60), task_queue=task_queue)
        await eventually(lambda: _step_is(handle, "bake"), within=120, what="bake")
        # the new release degrades: its own engine halts (as a drawdown switch would)
        await _post(desk.url("green"), "halt")
        result = await handle.result()

    assert result.rolled_back, result
    assert result.failed_step == "bake"
    assert "HALTED" in result.reason
    assert result.handoff is not None
    assert result.handoff.new_epoch == epoch + 1
    assert result.rollback is not None
    assert result.rollback.old_leads
    assert result.rollback.old_epoch == epoch + 2
    assert not desk.platform.status("green").running
    assert await desk.lease() == ("blue", epoch + 2)
    await desk.wait_trading("blue")
    await assert_one_sender_at_a_time(venue, desk.pool)


async def test_dry_run_changes_nothing_double_start_is_refused_and_only_a_second_operator_approves(
    desk: Desk, venue: Any, tmp_path: Path, version: str
) -> None:
    lease = await desk.lease()
    release = write_release(tmp_path, f"{version}-new")

    async with deploy_worker(desk.settings) as (client, task_queue):
        plan = await start_rollout(client, rollout(release, dry_run=True), task_queue=task_queue)
        planned: RolloutResult = await plan.result()
        assert planned.dry_run
        assert planned.plan is not None
        assert (planned.plan.old.color, planned.plan.new.color) == ("blue", "green")
        assert planned.plan.old_epoch == lease[1]
        assert not desk.platform.status("green").running
        assert await desk.lease() == lease

        handle = await start_rollout(
            client, rollout(release, require_approval=True), task_queue=task_queue
        )
        assert handle.id == f"deploy-{version}-new"
        with pytest.raises(RolloutAlreadyStartedError):
            await start_rollout(client, rollout(release), task_queue=task_queue)
        await eventually(lambda: _waiting(handle), within=120, what="handoff awaits approval")
        assert await desk.lease() == lease  # nothing handed over before the approval

        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(
                BlueGreenDeployWorkflow.approve, Decision(by="alice", step="handoff")
            )
        assert (await handle.query(BlueGreenDeployWorkflow.progress)).approved == ()
        step = await handle.execute_update(
            BlueGreenDeployWorkflow.approve, Decision(by="bob", step="handoff", note="ok")
        )
        assert step == "handoff"
        result = await handle.result()
        with pytest.raises(RolloutAlreadyStartedError):  # a version deploys once, ever
            await start_rollout(client, rollout(release), task_queue=task_queue)

    assert result.completed, result
    assert result.approved_by == "bob"
    assert await desk.lease() == ("green", lease[1] + 1)
    await assert_one_sender_at_a_time(venue, desk.pool)


async def _sent_since(desk: Desk, instance: str, seq: int) -> bool:
    return await desk.orders_since(instance, seq) > 0


async def _step_is(handle: Any, step: str) -> bool:
    return str((await handle.query(BlueGreenDeployWorkflow.progress)).step) == step


async def _waiting(handle: Any) -> bool:
    progress = await handle.query(BlueGreenDeployWorkflow.progress)
    return bool(progress.waiting_for_approval == "handoff")


async def _post(url: str, action: str) -> None:
    from engine.live.control import post_admin

    answer = await post_admin(url, action, token=TOKEN, payload={"by": "test", "reason": "bad"})
    assert answer.status == 200, answer
    await asyncio.sleep(0)


async def test_worker_killed_mid_rollout_completes_once_without_repeating_steps(
    desk: Desk, venue: Any, tmp_path: Path, version: str
) -> None:
    _, epoch = await desk.lease()
    release = write_release(tmp_path, f"{version}-new")
    client = await Client.connect(
        desk.settings.temporal.effective_address(), namespace=desk.settings.temporal.namespace
    )
    worker = WorkerProcess.of_settings(
        desk.settings, f"deploy-kill-{uuid.uuid4().hex}", tmp_path / "worker.log"
    )
    await worker.start()
    try:
        handle = await start_rollout(
            client, rollout(release, warm_s=4, bake_s=15), task_queue=worker.task_queue
        )
        await eventually(lambda: _step_is(handle, "warm_standby"), within=60, what="warming")
        await worker.kill()  # the standby runs, warm_standby is cut midway
        green = desk.platform.status("green")
        assert green.running
        await worker.start()
        await eventually(lambda: _step_is(handle, "bake"), within=120, what="bake")
        await worker.kill()  # after the handoff: its effects must not repeat
        await worker.start()
        result = await handle.result()
    finally:
        await worker.kill()

    assert result.completed, result
    assert result.handoff is not None
    assert (result.handoff.old_epoch, result.handoff.new_epoch) == (epoch, epoch + 1)
    assert desk.platform.status("green").pid == green.pid  # never a second green process
    assert await desk.lease() == ("green", epoch + 1)  # one epoch bump
    acquired = await desk.pool.fetch(
        "SELECT epoch, instance FROM journal_events"
        " WHERE kind = 'leadership' AND body->>'event' = 'acquired' ORDER BY seq"
    )
    assert [(r["instance"], r["epoch"]) for r in acquired] == [
        ("blue", epoch),
        ("green", epoch + 1),
    ]
    history = await handle.fetch_history()
    completed = [
        e for e in history.events if e.HasField("workflow_execution_completed_event_attributes")
    ]
    assert len(completed) == 1
    await assert_one_sender_at_a_time(venue, desk.pool)


async def test_retried_activities_do_not_repeat_their_effects(
    desk: Desk, tmp_path: Path, version: str
) -> None:
    _, epoch = await desk.lease()
    release = write_release(tmp_path, f"{version}-new")
    activities = DeployActivities(DeployConfig.from_settings(desk.settings))
    run = ActivityEnvironment().run
    old = EngineEndpoint(color="blue", url=desk.url("blue"), instance="blue")
    new = EngineEndpoint(color="green", url=desk.url("green"), instance="green")

    start = StartStandbyInput(color="green", release_path=str(release))
    first = await run(activities.start_standby, start)
    again = await run(activities.start_standby, start)
    assert (first.reused, again.reused) == (False, True)
    assert again.pid == first.pid
    warm = WarmInput(old=old, new=new, version=f"{version}-new", timeout_s=60, warm_s=0,
                     samples=1, tolerance_bps=25.0)  # fmt: skip
    await run(activities.warm_standby, warm)

    handoff = HandoffInput(old=old, new=new, old_epoch=epoch, reason="test",
                           first_order_timeout_s=60)  # fmt: skip
    once = await run(activities.handoff, handoff)
    twice = await run(activities.handoff, handoff)
    assert (once.new_epoch, twice.new_epoch) == (epoch + 1, epoch + 1)
    assert await desk.lease() == ("green", epoch + 1)

    back = await run(activities.rollback, RollbackInput(old=old, new=new, reason="test"))
    back_again = await run(activities.rollback, RollbackInput(old=old, new=new, reason="test"))
    assert back.old_leads
    assert back_again.old_leads
    assert back.old_epoch == back_again.old_epoch == epoch + 2
    assert back_again.actions == ()
    assert not desk.platform.status("green").running
