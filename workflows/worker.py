"""The bot4 Temporal worker: every workflow and activity of the registry on one queue.

Long-running (``bot4 worker``): one process holds the clients the activities need, polls
the task queue and exports the SDK's own metrics (task latencies, slots, failures) to
Prometheus. SIGTERM or SIGINT stops polling, lets running activities finish within
``graceful_shutdown_s`` and exits, so ``bot4 stack down`` never cuts an activity midway.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from typing import Final

import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from bot4.settings import LOOPBACK, Settings
from workflows.correlation import CorrelationInterceptor
from workflows.registry import WORKFLOWS, activity_methods

log = structlog.get_logger(__name__)

GRACEFUL_SHUTDOWN_S: Final = 10  # within the launcher's 15 s between SIGTERM and SIGKILL


def metrics_address(settings: Settings) -> str:
    """Return ``host:port`` of the worker's Prometheus endpoint (loopback only)."""
    return f"{LOOPBACK}:{settings.worker.metrics_port}"


def prometheus_runtime(settings: Settings) -> Runtime:
    """Return a Temporal runtime that serves SDK metrics on the worker's metrics port.

    Raises:
        RuntimeError: the port cannot be bound (the SDK's core reports it this way).
    """
    metrics = PrometheusConfig(
        bind_address=metrics_address(settings),
        # Prometheus conventions (the SDK's defaults are not): counters end in _total,
        # units in names, durations in seconds (temporal_activity_execution_latency_seconds)
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


async def run_worker(
    settings: Settings, *, stop: asyncio.Event, task_queue: str | None = None
) -> None:
    """Connect, poll the task queue until ``stop`` is set, then shut down gracefully.

    ``task_queue`` defaults to the settings' (``BOT4_TEMPORAL__TASK_QUEUE``).
    """
    task_queue = task_queue or settings.temporal.task_queue
    runtime = prometheus_runtime(settings)
    client = await Client.connect(
        settings.temporal.effective_address(),
        namespace=settings.temporal.namespace,
        runtime=runtime,
        # correlation ids: workflows and activities of this worker carry the caller's id
        interceptors=[CorrelationInterceptor()],
    )
    await _drill_schedule_and_gauges(client, runtime, settings, task_queue)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activity_methods(settings),
        graceful_shutdown_timeout=timedelta(seconds=GRACEFUL_SHUTDOWN_S),
    )
    from workflows.dr_failover.gauges import ReplicationGauges, watch_replication

    watcher = asyncio.create_task(watch_replication(
        settings.db.effective_dsn(), ReplicationGauges(runtime.metric_meter), stop))  # fmt: skip
    log.info(
        "worker_started",
        task_queue=task_queue,
        temporal=settings.temporal.effective_address(),
        metrics=metrics_address(settings),
        workflows=[w.__name__ for w in WORKFLOWS],
    )
    async with worker:
        await stop.wait()
        log.info("worker_stopping", graceful_shutdown_s=GRACEFUL_SHUTDOWN_S)
    await watcher
    log.info("worker_stopped")


async def _drill_schedule_and_gauges(
    client: Client, runtime: Runtime, settings: Settings, task_queue: str
) -> None:
    """Keep the drill schedule in step with the settings; seed the drill gauges.

    Neither may stop the worker: a failure is logged and the worker serves anyway (the
    runbooks matter more than the schedule).
    """
    from workflows.dr_failover.gauges import DrillGauges, drill_history
    from workflows.drill_schedule import sync_drill_schedule

    try:
        outcome = await sync_drill_schedule(client, settings, task_queue)
        log.info("drill_schedule", outcome=outcome, cron=settings.worker.drill_cron or None)
    except Exception as e:
        log.error("drill_schedule_failed", error=f"{type(e).__name__}: {e}")
    history = await drill_history(settings.db.effective_dsn())
    DrillGauges(runtime.metric_meter).record(
        rto_s=history.rto_s, rpo_events=history.rpo_events, passed_at=history.passed_at
    )


async def serve(settings: Settings) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(settings, stop=stop)
