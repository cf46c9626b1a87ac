"""dr_failover against a real PostgreSQL pair, a real engine trading on the simulator, and
the session's Temporal server. Nothing is mocked.

Each test owns its pair (the session's PostgreSQL is shared: never promote it), runs
``bot4 engine run`` on it with the multi-host DSN, and a worker of the workflow in this
process on its own task queue. Checks read the database, the engine's ``/status`` and the
venue's order and trade lists, never only the workflow's word.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from bot4.settings import EngineSettings
from infra.stack.launcher import Stack
from tests.engine.live.harness import open_venue
from tests.stubs.desk_checks import assert_venue_matches_journal, leader, trading, until
from tests.stubs.desk_fixtures import market, release
from tests.stubs.engine_control import TOKEN
from tests.stubs.engine_process import EngineProcess
from tests.stubs.pg_pair import OwnPair, own_pair
from tests.stubs.ports import free_ports
from tests.stubs.stack import settings_env
from workflows.dr_failover import DrFailoverInput, DrFailoverResult, DrFailoverWorkflow
from workflows.dr_failover.activities import DrFailoverActivities, DrFailoverConfig
from workflows.engines import Engine, EngineDirectory
from workflows.registry import dr_failover_activities

__all__ = ["market", "release"]  # shared fixtures

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def pair() -> AsyncIterator[OwnPair]:
    async with own_pair() as own:
        yield own


@pytest.fixture
async def engine(pair: OwnPair, market: int, release: Path, tmp_path: Path) -> AsyncIterator[Any]:
    process = await EngineProcess(tmp_path, pair.dsn, market, release, color="blue",
                                  instance="blue").start()  # fmt: skip
    try:
        await process.wait_for(leader, within=60, what="leader")
        yield process
    finally:
        await process.terminate()


@asynccontextmanager
async def failover_worker(
    stack: Stack, pair: OwnPair, engine: Any, *, reports_uri: str | None = None
) -> AsyncIterator[tuple[Client, str]]:
    """A worker of dr_failover on a unique task queue, reaching this test's pair and engine."""
    temporal = stack.settings.temporal
    client = await Client.connect(temporal.effective_address(), namespace=temporal.namespace)
    task_queue = f"dr-failover-test-{uuid.uuid4().hex}"
    config = DrFailoverConfig(
        home=pair.home, db=pair.settings, dsn=pair.dsn,
        engines=EngineDirectory(engines=(Engine(color="blue", url=engine.url),), token=TOKEN),
        reports_uri=reports_uri, storage=stack.settings.storage,
    )  # fmt: skip
    async with Worker(client, task_queue=task_queue, workflows=[DrFailoverWorkflow],
                      activities=dr_failover_activities(DrFailoverActivities(config))):  # fmt: skip
        yield client, task_queue


async def run(client: Client, task_queue: str, **fields: Any) -> DrFailoverResult:
    request = DrFailoverInput(requested_by="alice", reason="test", **fields)
    return await client.execute_workflow(
        DrFailoverWorkflow.run, request, id=f"dr-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )  # fmt: skip


def active(status: dict[str, Any]) -> bool:
    return bool(
        status.get("role") == "leader"
        and status["trading_state"] == "ACTIVE"
        and not status["conditions"]
    )


async def orders_since(pool_dsn: str, seq: int) -> int:
    connection = await asyncpg.connect(pool_dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM journal_events WHERE kind = 'order_new' AND seq > $1", seq
            )
        )
    finally:
        await connection.close()


async def last_seq(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT coalesce(max(seq), 0) FROM journal_events"))
    finally:
        await connection.close()


async def test_switchover_while_trading_loses_nothing_rejoins_and_switches_back(
    running_stack: Stack, pair: OwnPair, engine: Any, market: int
) -> None:
    pool = await asyncpg.create_pool(pair.dsn, min_size=1, max_size=2)
    venue = await open_venue(market)
    try:
        await until(lambda: trading(pool), within=30)
        before = await asyncio.to_thread(pair.cluster.replication)
        async with failover_worker(running_stack, pair, engine) as (client, queue):
            there = await run(client, queue, mode="switchover")
            await engine.wait_for(active, within=20, what="ACTIVE after the switchover")
            seq = await last_seq(pair.dsn)
            await until(lambda: _more_orders(pair.dsn, seq), within=20)  # trading again
            after = await asyncio.to_thread(pair.cluster.replication)
            back = await run(client, queue, mode="switchover")
            await engine.wait_for(active, within=20, what="ACTIVE after switching back")

        assert (there.old_primary, there.new_primary) == (before.primary, before.standby)
        assert there.rpo_events == 0, there.verify
        assert there.verify is not None
        assert there.verify.events_checked > 0  # the engine acknowledged facts in the window
        assert there.rto_s is not None
        assert there.rto_source in ("engine", "database")
        assert there.db_unwritable_s is not None  # stop → first write on the new primary
        assert there.rejoin is not None
        assert there.rejoin.method in ("rewind", "basebackup")
        assert (after.primary, after.standby, after.sync_state) == (
            before.standby, before.primary, "sync")  # fmt: skip
        assert (back.old_primary, back.new_primary) == (before.standby, before.primary)
        assert back.rpo_events == 0, back.verify
        final = await asyncio.to_thread(pair.cluster.replication)
        assert (final.primary, final.sync_state) == (before.primary, "sync")
        assert await engine.terminate() == 0, engine.tail()
        await assert_venue_matches_journal(venue, pool)
    finally:
        await pool.close()
        await venue.close()


async def _more_orders(dsn: str, seq: int) -> bool:
    return await orders_since(dsn, seq) >= 3


async def test_primary_killed_during_a_burst_fails_over_with_every_acknowledged_fact(
    running_stack: Stack, pair: OwnPair, engine: Any, market: int
) -> None:
    pool = await asyncpg.create_pool(pair.dsn, min_size=1, max_size=2)
    venue = await open_venue(market)
    try:
        await until(lambda: trading(pool), within=30)
        before = await asyncio.to_thread(pair.cluster.replication)
        assert before.primary is not None
        async with failover_worker(running_stack, pair, engine) as (client, queue):
            await asyncio.to_thread(pair.cluster.kill_primary, before.primary)  # mid-burst
            result = await run(client, queue, mode="failover", detect_interval_ms=100)
        await engine.wait_for(active, within=30, what="ACTIVE after the failover")
        seq = await last_seq(pair.dsn)
        await until(lambda: _more_orders(pair.dsn, seq), within=20)

        assert result.new_primary == before.standby
        assert result.detect is not None
        assert result.rpo_events == 0, result.verify
        assert result.verify is not None
        assert result.verify.events_checked > 0
        assert result.rto_s is not None
        assert result.rto_s < 30
        final = await asyncio.to_thread(pair.cluster.replication)
        assert (final.primary, final.standby, final.sync_state) == (
            before.standby, before.primary, "sync")  # fmt: skip
        assert await engine.terminate() == 0, engine.tail()
        await pool.close()
        pool = await asyncpg.create_pool(pair.dsn, min_size=1, max_size=2)
        await assert_venue_matches_journal(venue, pool)  # nothing lost, nothing twice
    finally:
        await pool.close()
        await venue.close()


async def test_refusals_change_nothing_a_live_primary_and_a_standby_down(
    running_stack: Stack, pair: OwnPair, engine: Any
) -> None:
    before = await asyncio.to_thread(pair.cluster.replication)
    assert before.primary is not None
    assert before.standby is not None
    async with failover_worker(running_stack, pair, engine) as (client, queue):
        # an unplanned failover of a primary that still answers: two primaries, refused
        with pytest.raises(WorkflowFailureError) as alive:
            await run(client, queue, mode="failover", detect_within_s=2)
        assert _refusal(alive.value).type == "PrimaryAlive"
        now = await asyncio.to_thread(pair.cluster.replication)
        assert (now.primary, now.standby, now.sync_state) == (before.primary, before.standby,
                                                              "sync")  # fmt: skip

        await asyncio.to_thread(pair.cluster.node(before.standby).stop)
        with pytest.raises(WorkflowFailureError) as refused:
            await run(client, queue, mode="switchover")
    refusal = _refusal(refused.value)
    assert refusal.type == "PreconditionFailed"
    assert f"{before.standby} is down" in str(refusal)  # names what is wrong
    roles = await asyncio.to_thread(pair.cluster.roles)
    assert roles[before.primary] == "primary"
    status = await engine.status()
    assert status is not None
    assert status["role"] == "leader"
    assert "dr_failover" not in status["conditions"]  # never held
    # without its synchronous standby the primary's commits wait: start it again, and
    # the engine's queued journal writes complete (nothing was lost meanwhile)
    await asyncio.to_thread(pair.cluster.start_node, before.standby)
    await engine.wait_for(active, within=30, what="ACTIVE once the standby is back")


def _refusal(failure: WorkflowFailureError) -> ApplicationError:
    """The refusal an activity raised (the workflow's failure's cause's cause)."""
    assert isinstance(failure.cause, ActivityError), failure.cause
    assert isinstance(failure.cause.cause, ApplicationError), failure.cause.cause
    return failure.cause.cause


async def test_worker_killed_mid_switchover_completes_once_on_the_restarted_worker(
    running_stack: Stack, pair: OwnPair, engine: Any, market: int, tmp_path: Path
) -> None:
    """The whole bot4 worker in its own process (SIGKILL), on this test's pair and engine."""
    settings = running_stack.settings.model_copy(update={
        "home": pair.home, "db": pair.settings,
        "engine": EngineSettings(blue_control_port=engine.port,
                                 green_control_port=free_ports(1)[0],
                                 control_token=SecretStr(TOKEN)),
        "worker": running_stack.settings.worker.model_copy(
            update={"metrics_port": free_ports(1)[0]}),
    })  # fmt: skip
    env = settings_env(settings)
    queue = f"dr-kill-{uuid.uuid4().hex}"
    log = tmp_path / "worker.log"

    async def start_worker() -> asyncio.subprocess.Process:
        with log.open("ab") as out:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.stubs.deploy_worker", queue, env=env,
                stdout=out, stderr=out)  # fmt: skip

    temporal = running_stack.settings.temporal
    client = await Client.connect(temporal.effective_address(), namespace=temporal.namespace)
    before = await asyncio.to_thread(pair.cluster.replication)
    worker = await start_worker()
    try:
        handle = await client.start_workflow(
            DrFailoverWorkflow.run, DrFailoverInput(mode="switchover", requested_by="alice",
                                                    reason="test"),
            id=f"dr-kill-{uuid.uuid4().hex[:8]}", task_queue=queue,
        )  # fmt: skip
        await until(lambda: _reached(handle, MID_MOVE), within=60)
        assert await _reached(handle, MID_MOVE)  # still mid-move: the primary is changing
        worker.kill()  # SIGKILL between the clean stop and the promotion
        await worker.wait()
        worker = await start_worker()
        result = await asyncio.wait_for(handle.result(), 180)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    await engine.wait_for(active, within=30, what="ACTIVE after the switchover")
    assert (result.old_primary, result.new_primary) == (before.primary, before.standby)
    assert result.rpo_events == 0, result.verify
    final = await asyncio.to_thread(pair.cluster.replication)
    assert (final.primary, final.standby, final.sync_state) == (
        before.standby, before.primary, "sync")  # fmt: skip
    history = await handle.fetch_history()
    promotes = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                and e.activity_task_scheduled_event_attributes.activity_type.name
                == "dr_failover.promote"]  # fmt: skip
    assert len(promotes) == 1  # one promotion, whatever the retries inside it


MID_MOVE = frozenset({"stop_primary", "wait_replayed", "promote"})


async def _reached(handle: Any, steps: frozenset[str]) -> bool:
    try:
        progress = await handle.query(DrFailoverWorkflow.progress)
    except Exception:  # no worker to answer between the kill and the restart
        return False
    return progress.step in steps


async def test_failover_drill_kills_the_primary_itself_and_stores_its_report(
    running_stack: Stack, pair: OwnPair, engine: Any, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(pair.dsn, min_size=1, max_size=2)
    try:
        await until(lambda: trading(pool), within=30)
        await engine.wait_for(active, within=20, what="ACTIVE before the drill")
        before = await asyncio.to_thread(pair.cluster.replication)
        reports = tmp_path / "reports"
        async with failover_worker(running_stack, pair, engine,
                                   reports_uri=f"file://{reports}") as (client, queue):  # fmt: skip
            result = await run(client, queue, mode="failover", drill=True, max_rto_s=10.0)
    finally:
        await pool.close()

    assert result.passed, result.failures
    assert result.hypothesis_before is not None
    assert result.hypothesis_before.holds
    assert result.hypothesis_after is not None
    assert result.hypothesis_after.holds
    assert [s.step for s in result.steps][:3] == ["plan", "steady_state_before", "inject_fault"]
    assert (result.old_primary, result.new_primary) == (before.primary, before.standby)
    assert result.rpo_events == 0
    stored = json.loads((reports / "drills" / f"{result.report_id}.json").read_text())
    assert stored["passed"] is True
    connection = await asyncpg.connect(pair.dsn)
    try:
        row = await connection.fetchrow("SELECT * FROM dr_drills WHERE drill_id = $1",
                                        result.report_id)  # fmt: skip
    finally:
        await connection.close()
    assert row is not None
    assert (row["mode"], row["passed"], row["rpo_events"]) == ("failover", True, 0)
    assert row["rto_s"] == result.rto_s
