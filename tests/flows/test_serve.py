"""``bot4 flows serve`` against the real Prefect server: a scheduled run fires on time.

The runner runs as a subprocess exactly as the stack starts it, with the backup on a
15-second interval and its own deployment name (the session stack's runner serves the
cron deployments beside it).

Why 15 s and not less: the runner hands a run to a new Python process up to 10 s before
it is due (Prefect's prefetch), and that process takes 4-9 s to import Prefect and the
flows on an idle 2-core machine. At a 5-second interval three or four such processes
boot at once, each slows the others, and on a loaded machine the runs fall behind by
themselves: the test then measured its own pile-up, not the schedule (CI saw 16 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from flows.deployments import prefect_environment
from infra.stack.launcher import Stack
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)


async def _runs(api: str, deployment_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{api}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [deployment_id]}}, "sort": "START_TIME_DESC"},
        )
        answer.raise_for_status()
        return list(answer.json())


def _steady_state_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return a completed run that was due after the runner had already started one.

    The first runs may be due before the runner polls at all (it creates its deployment
    first, then starts; on a loaded machine that takes seconds), so their lag measures
    the runner's start-up. A run due after the first start measures the schedule.
    """
    starts = [datetime.fromisoformat(str(r["start_time"])) for r in runs if r.get("start_time")]
    if not starts:
        return None
    runner_up = min(starts)
    due_later = [
        r for r in runs
        if (r.get("state") or {}).get("type") == "COMPLETED"
        and datetime.fromisoformat(str(r["expected_start_time"])) > runner_up
    ]  # fmt: skip
    return due_later[0] if due_later else None


async def _deployment_id(api: str, flow: str, name: str) -> str | None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{api}/deployments/name/{flow}/{name}")
        return str(answer.json()["id"]) if answer.status_code == 200 else None


async def test_scheduled_backup_fires_within_seconds_and_completes(
    running_stack: Stack,
) -> None:
    settings = running_stack.settings
    name = f"t-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **settings.to_env(), **prefect_environment(settings),
           "BOT4_FLOWS__INTERVAL_S": "15",
           "BOT4_FLOWS__METRICS_PORT": str(free_ports(1)[0])}  # fmt: skip
    api = settings.prefect.effective_api_url()
    with (settings.home / "log" / f"flows-{name}.log").open("wb") as log:
        runner = await asyncio.create_subprocess_exec(
            # only the backup: the other flows' runs would share the 2 cores
            sys.executable, "-m", "bot4", "flows", "serve", "--name", name, "--only", "backup",
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        on_time: dict[str, Any] | None = None
        deployment = None
        while time.monotonic() < deadline and on_time is None:
            await asyncio.sleep(1)
            deployment = deployment or await _deployment_id(api, "backup", name)
            if deployment is None:
                continue
            on_time = _steady_state_run(await _runs(api, deployment))
        assert on_time is not None, "no scheduled backup run completed in steady state in 90 s"
        expected = datetime.fromisoformat(str(on_time["expected_start_time"]))
        started = datetime.fromisoformat(str(on_time["start_time"]))
        assert (started - expected).total_seconds() < 10
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(runner.wait(), 20)
        except TimeoutError:
            os.killpg(runner.pid, signal.SIGKILL)
            await runner.wait()
