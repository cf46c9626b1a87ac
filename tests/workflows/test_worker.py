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
    assert "temporal_workflow_completed_total" in metrics  # Prometheus names: _total


def test_the_worker_registers_every_activity_each_workflow_package_defines() -> None:
    """A defined activity the worker lacks fails only when a run reaches it (NotFoundError)."""
    import importlib
    import inspect
    from pathlib import Path

    from bot4.settings import Settings
    from workflows.registry import activity_methods

    registered = {
        getattr(m, "__temporal_activity_definition").name for m in activity_methods(Settings())
    }
    defined: set[str] = set()
    for package in sorted(Path("workflows").glob("*/activities.py")):
        module = importlib.import_module(f"workflows.{package.parent.name}.activities")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for _, method in inspect.getmembers(cls, inspect.isfunction):
                definition = getattr(method, "__temporal_activity_definition", None)
                if definition is not None:
                    defined.add(definition.name)
    assert "dr_failover.store_report" in defined  # the scan sees the packages
    assert defined - registered == set()
