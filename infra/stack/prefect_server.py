"""The Prefect server, its database in the stack's PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot4.settings import PrefectSettings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer, venv_binary
from infra.stack.paths import StackPaths


def prefect_client_env(*, api_url: str, home: str) -> dict[str, str]:
    """Return the environment a Prefect client or server process needs here.

    Telemetry off (no internet), and its own PREFECT_HOME so two processes never share a
    SQLite file ("database is locked").
    """
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


class PrefectServer(ManagedServer):
    """``prefect server start`` on loopback; API and UI on one port."""

    name = "prefect"
    # First start runs Prefect's own migrations on an empty database.
    start_timeout_s = 180.0

    def __init__(self, *, paths: StackPaths, settings: PrefectSettings, database_url: str) -> None:
        super().__init__(paths=paths)
        self.settings = settings
        self.database_url = database_url

    def argv(self) -> list[str]:
        """Return the server command line."""
        binary = venv_binary("prefect") or "prefect"
        return [
            binary,
            "server",
            "start",
            "--host",
            self.settings.host,
            "--port",
            str(self.settings.port),
            "--analytics-off",
            "--no-background",
        ]

    def env(self) -> Mapping[str, str]:
        """Point the server at its PostgreSQL database."""
        return {
            **os.environ,
            **prefect_client_env(api_url=self.url(), home=str(self.paths.prefect_home)),
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        }

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the API/UI port."""
        return [(self.settings.host, self.settings.port, "BOT4_PREFECT__PORT")]

    def healthy(self) -> bool:
        """Ask the API's health route."""
        return http_ok(f"{self.url()}/health")

    def url(self) -> str:
        """Return the API URL."""
        return self.settings.effective_api_url()

    def details(self) -> dict[str, object]:
        """Add the UI address."""
        return {"ui_url": f"http://{self.settings.host}:{self.settings.port}"}
