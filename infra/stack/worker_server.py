"""The Temporal worker (``python -m bot4 worker``) as a stack server."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bot4.settings import LOOPBACK, Settings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer
from infra.stack.paths import StackPaths


class WorkerServer(ManagedServer):
    """``bot4 worker``: needs Temporal (started before it) and the migrated schema.

    Healthy means its Prometheus endpoint answers: the SDK's runtime serves it only once
    the worker's process has built its runtime, and the worker connects right after.
    """

    name = "worker"
    start_timeout_s = 30.0

    def __init__(self, *, paths: StackPaths, settings: Settings) -> None:
        super().__init__(paths=paths)
        self.settings = settings

    def argv(self) -> list[str]:
        """Run the worker with this environment's Python."""
        return [sys.executable, "-m", "bot4", "worker"]

    def env(self) -> Mapping[str, str]:
        """Hand the child exactly our settings (it is an entry point and reads BOT4_*)."""
        return {**os.environ, **self.settings.to_env()}

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the metrics port."""
        return [(LOOPBACK, self.settings.worker.metrics_port, "BOT4_WORKER__METRICS_PORT")]

    def healthy(self) -> bool:
        """Ask the metrics endpoint."""
        return http_ok(self.url())

    def url(self) -> str:
        """Return the worker's metrics URL."""
        return f"http://{LOOPBACK}:{self.settings.worker.metrics_port}/metrics"

    def details(self) -> dict[str, object]:
        """Add the Temporal address and the task queue it polls."""
        temporal = self.settings.temporal
        return {"temporal": temporal.effective_address(), "task_queue": temporal.task_queue}
