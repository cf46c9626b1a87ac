"""``bot4 flows serve``: the Prefect runner of the scheduled chores, and its metrics.

Serves one deployment per flow (``backup/scheduled``, ``reconcile/scheduled``,
``report/scheduled``) with the cron schedules of ``Settings.flows`` (UTC), or all every
``flows.interval_s`` seconds. Each run appears in the Prefect UI; the runner executes it
in a subprocess. The runner's Prometheus endpoint (``flows.metrics_port``) is also its
health check.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from prometheus_client import start_http_server

from bot4.settings import LOOPBACK, Settings
from flows.deployments import DEPLOYMENT, FLOWS, schedules
from flows.metrics import FlowMetrics

log = structlog.get_logger(__name__)


async def build_deployments(
    settings: Settings, *, name: str = DEPLOYMENT, only: tuple[str, ...] = ()
) -> list[Any]:
    """Return the runner deployments, one per flow (``only`` these when given)."""
    plans = schedules(settings)
    deployments = []
    for flow_name, flow_ in FLOWS.items():
        if only and flow_name not in only:
            continue
        deployments.append(
            await flow_.ato_deployment(
                name=name,
                description=f"bot4 {flow_name}, served by `bot4 flows serve`",
                tags=["bot4"],
                schedules=[plans[flow_name]],
            )
        )
    return deployments


async def serve_flows(
    settings: Settings, *, name: str = DEPLOYMENT, only: tuple[str, ...] = ()
) -> None:
    """Serve the deployments (``only`` these when given) and the metrics until cancelled."""
    from prefect import aserve

    metrics = FlowMetrics()
    server, thread = start_http_server(
        settings.flows.metrics_port, addr=LOOPBACK, registry=metrics.registry
    )
    refresher = asyncio.create_task(metrics.refresh_forever(settings.db.effective_dsn()))
    try:
        deployments = await build_deployments(settings, name=name, only=only)
        plans = {k: str(v.cron or v.interval) for k, v in schedules(settings).items()}
        log.info("flows_serving", deployments=[d.name for d in deployments], schedules=plans)
        await aserve(*deployments, print_starting_message=False)
    finally:
        refresher.cancel()
        server.shutdown()
        thread.join(timeout=5)
