"""The stack's own worker (``bot4 worker``, started by ``stack up``) serves the registry."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client

from infra.stack.launcher import Stack
from workflows.emergency_stop import EmergencyStopInput, EmergencyStopWorkflow, workflow_id
from workflows.registry import TASK_QUEUE

pytestmark = pytest.mark.timeout(120)


async def test_stack_worker_runs_an_emergency_stop_dry_run_and_exports_sdk_metrics(
    running_stack: Stack,
) -> None:
    settings = running_stack.settings
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    request = EmergencyStopInput(reason="test: plan", requested_by="pytest", dry_run=True)

    result = await client.execute_workflow(
        EmergencyStopWorkflow.run, request, id=workflow_id(request), task_queue=TASK_QUEUE
    )

    assert result.dry_run is True
    assert result.plan.symbols == settings.exchange.symbols
    assert [e.color for e in result.plan.engines] == ["blue", "green"]
    url = f"http://127.0.0.1:{settings.worker.metrics_port}/metrics"
    async with httpx.AsyncClient(timeout=5) as http:
        metrics = (await http.get(url)).text
    assert "temporal_workflow_completed" in metrics
