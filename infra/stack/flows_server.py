"""The Prefect flow runner (``python -m bot4 flows serve``) as a stack server."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bot4.settings import LOOPBACK, Settings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer
from infra.stack.paths import StackPaths
from infra.stack.prefect_server import prefect_client_env


class FlowsServer(ManagedServer):
    """``bot4 flows serve``: needs Prefect (started before it) and the migrated schema.

    Healthy means its Prometheus endpoint answers: it serves only once the runner's
    process is up, right before the deployments are registered with Prefect.
    """

    name = "flows"
    start_timeout_s = 60.0

    def __init__(self, *, paths: StackPaths, settings: Settings) -> None:
        super().__init__(paths=paths)
        self.settings = settings

    def argv(self) -> list[str]:
        """Run the flow runner with this environment's Python."""
        return [sys.executable, "-m", "bot4", "flows", "serve"]

    def env(self) -> Mapping[str, str]:
        """Our settings (it is an entry point) and the Prefect client environment."""
        home = self.paths.home / "prefect-runner"
        home.mkdir(parents=True, exist_ok=True)
        prefect = prefect_client_env(
            api_url=self.settings.prefect.effective_api_url(), home=str(home)
        )
        return {**os.environ, **self.settings.to_env(), **prefect}

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the metrics port."""
        return [(LOOPBACK, self.settings.flows.metrics_port, "BOT4_FLOWS__METRICS_PORT")]

    def healthy(self) -> bool:
        """Ask the metrics endpoint."""
        return http_ok(self.url())

    def url(self) -> str:
        """Return the runner's metrics URL."""
        return f"http://{LOOPBACK}:{self.settings.flows.metrics_port}/metrics"

    def details(self) -> dict[str, object]:
        """Add the Prefect API the runner registers its deployments with."""
        return {"prefect": self.settings.prefect.effective_api_url()}
