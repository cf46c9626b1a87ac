"""Prometheus (Debian's ``prometheus`` binary) as an optional stack server.

It scrapes every component (``infra/prometheus/prometheus.yml``, rendered with this
stack's ports into ``BOT4_HOME/prometheus/prometheus.yml``) and evaluates the alert rules
of ``infra/prometheus/rules/``. Optional: without the binary the stack runs without it
and ``stack up`` / ``stack status`` say how to install it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from typing import Final

from bot4.settings import LOOPBACK, Settings
from infra.prometheus.config import stack_config
from infra.stack.component import Outcome, Progress, http_ok
from infra.stack.managed import ManagedServer
from infra.stack.paths import StackPaths
from infra.stack.process import is_alive

NOT_INSTALLED: Final = (
    "the prometheus binary is not installed (not on PATH); install Debian's package with"
    " `apt-get install -y --no-install-recommends prometheus` (make test and make demo do it"
    " when run as root), then run `bot4 stack up` again"
)


class PrometheusServer(ManagedServer):
    """``prometheus`` on loopback, its TSDB under ``BOT4_HOME/prometheus/data``."""

    name = "prometheus"
    start_timeout_s = 30.0

    def __init__(self, *, paths: StackPaths, settings: Settings) -> None:
        super().__init__(paths=paths)
        self.settings = settings
        self.folder = paths.home / "prometheus"
        self.config_file = self.folder / "prometheus.yml"
        self.data_dir = self.folder / "data"

    @staticmethod
    def binary() -> str | None:
        """Return the prometheus binary on PATH, if any."""
        return shutil.which("prometheus")

    def skipped_because(self) -> str | None:
        """Skip, saying how to install it, when the binary is missing."""
        return NOT_INSTALLED if self.binary() is None else None

    def argv(self) -> list[str]:
        """Return the command line: our config, our TSDB, loopback only."""
        prometheus = self.settings.prometheus
        return [
            self.binary() or "prometheus",
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={prometheus.retention_hours}h",
            f"--web.listen-address={LOOPBACK}:{prometheus.port}",
            "--log.level=warn",
        ]

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the web (API + UI) port."""
        return [(LOOPBACK, self.settings.prometheus.port, "BOT4_PROMETHEUS__PORT")]

    def healthy(self) -> bool:
        """Ask the readiness route (ready once the TSDB is open and the rules loaded)."""
        return http_ok(f"{self.url()}/-/ready")

    def url(self) -> str:
        """Return the web address (UI, HTTP API)."""
        return f"http://{LOOPBACK}:{self.settings.prometheus.port}"

    def details(self) -> dict[str, object]:
        """Add the rendered configuration and the alerts page."""
        return {"config": str(self.config_file), "alerts_url": f"{self.url()}/alerts"}

    def ensure_running(self, progress: Progress) -> Outcome:
        """Write the configuration of this stack's ports, then start or reuse the server.

        Raises:
            PortTakenError: the port is taken by another process.
            ComponentStartError: Prometheus exited (a bad config says why in its log) or
                did not become ready in time.
        """
        if self.skipped_because() is None:
            self.write_config()
        return super().ensure_running(progress)

    def write_config(self) -> bool:
        """Write the rendered configuration; return whether it changed.

        A running Prometheus reloads a changed file on SIGHUP, so a reused server scrapes
        the ports of the settings ``stack up`` runs with now.
        """
        text = stack_config(self.settings)
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if self.config_file.read_text() == text:
                return False
        scratch = self.config_file.with_suffix(".yml.new")
        scratch.write_text(text)
        scratch.replace(self.config_file)  # never a half-written file for a reload to read
        record = self._record()
        if record is not None and is_alive(record):
            os.kill(record.pid, signal.SIGHUP)
        return True
