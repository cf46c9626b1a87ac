"""The drill schedule against the session's real Temporal server; the drill gauges.

The schedule's action goes to a task queue no worker polls, so a triggered drill starts
(visible, with its input) but never touches a database; the test terminates it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from pydantic import ValidationError
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleRange, ScheduleSpec

from bot4.settings import Settings, WorkerSettings
from infra.stack.launcher import Stack
from tests.stubs.desk_checks import until
from workflows.dr_failover import DrFailoverInput
from workflows.drill_schedule import SCHEDULE_ID, sync_drill_schedule


@pytest.fixture
async def client(running_stack: Stack) -> AsyncIterator[Client]:
    temporal = running_stack.settings.temporal
    connected = await Client.connect(temporal.effective_address(), namespace=temporal.namespace)
    yield connected
    await sync_drill_schedule(connected, running_stack.settings, "unused")  # drill_cron "": off


def with_drill(stack: Stack, cron: str, **fields: object) -> Settings:
    worker = stack.settings.worker.model_copy(update={"drill_cron": cron, **fields})
    return stack.settings.model_copy(update={"worker": worker})


async def test_the_schedule_follows_the_settings_and_starts_a_drill(
    running_stack: Stack, client: Client
) -> None:
    queue = f"no-worker-{uuid.uuid4().hex}"
    weekly = with_drill(running_stack, "0 3 * * 0", drill_mode="failover", drill_max_rto_s=5.0)
    assert await sync_drill_schedule(client, weekly, queue) == "created"
    handle = client.get_schedule_handle(SCHEDULE_ID)
    described = await handle.describe()
    # the server keeps a cron as a calendar
    assert _calendar(described.schedule.spec) == ([0], [3], [0])  # minute, hour, weekday
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "dr_failover"
    assert action.task_queue == queue

    daily = with_drill(running_stack, "30 2 * * *")
    assert await sync_drill_schedule(client, daily, queue) == "updated"
    assert _calendar((await handle.describe()).schedule.spec) == ([30], [2], [0, 1, 2, 3, 4, 5, 6])

    await handle.trigger()  # a drill now: it starts, with the drill's input
    started: list[str] = []

    async def drill_started() -> bool:
        async for execution in client.list_workflows(f"TaskQueue = '{queue}'"):
            started.append(execution.id)
        return bool(started)

    await until(drill_started, within=20)
    assert started, "the triggered schedule started no workflow"
    run = client.get_workflow_handle(started[0])
    history = await run.fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    assert first.workflow_type.name == "dr_failover"
    (payload,) = await client.data_converter.decode(first.input.payloads, [DrFailoverInput])
    assert payload.drill is True
    assert payload.mode == "switchover"  # the updated settings' default mode
    await run.terminate("test: no worker runs drills here")

    off = with_drill(running_stack, "")
    assert await sync_drill_schedule(client, off, queue) == "deleted"
    assert await sync_drill_schedule(client, off, queue) == "absent"


def _calendar(spec: ScheduleSpec) -> tuple[list[int], list[int], list[int]]:
    (calendar,) = spec.calendars

    def values(ranges: Sequence[ScheduleRange]) -> list[int]:
        return sorted(
            v for r in ranges for v in range(r.start, (r.end or r.start) + 1, r.step or 1)
        )

    return values(calendar.minute), values(calendar.hour), values(calendar.day_of_week)


def test_a_malformed_drill_cron_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        WorkerSettings(drill_cron="every sunday")
    assert "drill_cron" in str(refused.value)


async def test_drill_gauges_reach_the_worker_metrics_endpoint() -> None:
    """The SDK's Prometheus exporter serves the gauges set through its metric meter."""
    import aiohttp
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    from tests.stubs.ports import free_ports
    from workflows.dr_failover.gauges import DrillGauges

    port = free_ports(1)[0]
    runtime = Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))  # fmt: skip
    DrillGauges(runtime.metric_meter).record(rto_s=1.25, rpo_events=0, passed_at=1_790_000_000.0)
    text = ""
    for _ in range(20):
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as answer,
            ):
                text = await answer.text()
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
            continue
        if "bot4_dr_last_drill_rto_seconds" in text:
            break
        await asyncio.sleep(0.1)
    lines = {line.split(" ")[0].split("{")[0]: line for line in text.splitlines()
             if line.startswith("bot4_dr_")}  # fmt: skip
    assert lines["bot4_dr_last_drill_rto_seconds"].endswith(" 1.25"), text
    assert lines["bot4_dr_last_drill_rpo_events"].endswith(" 0"), text
    assert "1790000000" in lines["bot4_dr_last_passed_drill_timestamp_seconds"], text
