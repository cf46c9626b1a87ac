"""The chores through the control API: an operator runs a served flow now (the session
stack's ``bot4 flows serve`` executes it), a viewer lists backups, breaks and reports."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from infra.stack.launcher import Stack
from tests.bot4.api.conftest import Keys
from tests.stubs.api import Recorder, ServerSecrets, api_settings, running_api

pytestmark = pytest.mark.timeout(120)


async def _state(prefect_api: str, run_id: str) -> str | None:
    async with httpx.AsyncClient(timeout=10) as http:
        run: dict[str, Any] = (await http.get(f"{prefect_api}/flow_runs/{run_id}")).json()
    return (run.get("state") or {}).get("type")


async def test_operator_runs_a_served_flow_now_and_viewer_lists_results(
    new_home: Any, api_dsn: str, server_secrets: ServerSecrets, running_stack: Stack,
    recorder: Recorder, keys: Keys,
) -> None:  # fmt: skip
    settings = api_settings(new_home(), api_dsn, server_secrets)
    settings = settings.model_copy(update={"prefect": running_stack.settings.prefect})
    operator = (await keys.create("operator", name="flows-operator"))["key"]
    viewer = (await keys.create("viewer", name="flows-viewer"))["key"]
    with running_api(settings) as api:
        async with recorder.client(api, viewer) as http:
            refused = await http.post("/v1/flows/report/runs", json={"dry_run": True})
            listed = [await http.get(p) for p in
                      ("/v1/backups", "/v1/reconciliation/breaks", "/v1/reports")]  # fmt: skip
        async with recorder.client(api, operator) as http:
            started = await http.post("/v1/flows/report/runs", json={"dry_run": True})
            twice = await http.post("/v1/flows/report/runs", json={"dry_run": True})
            wrong = await http.post("/v1/flows/report/runs", json={"repair": True})
            unknown = await http.post("/v1/flows/nope/runs", json={})

    assert refused.status_code == 403
    assert [r.status_code for r in listed] == [200, 200, 200]
    assert wrong.status_code == 422
    assert unknown.status_code in (404, 422)
    assert started.status_code == 201, started.text
    assert twice.status_code == 409  # one run per flow at a time: a double click starts one
    run = started.json()
    assert run["deployment"] == "report/scheduled"
    prefect_api = running_stack.settings.prefect.effective_api_url()
    deadline = time.monotonic() + 90
    state = None
    while time.monotonic() < deadline and state not in ("COMPLETED", "FAILED", "CRASHED"):
        await asyncio.sleep(1)
        state = await _state(prefect_api, run["flow_run_id"])
    assert state == "COMPLETED"  # executed by the stack's runner, recorded by Prefect
