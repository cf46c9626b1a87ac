"""The control API (``python -m bot4 api``) as a stack server."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bot4.settings import Settings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer
from infra.stack.paths import StackPaths


class ApiServer(ManagedServer):
    """``bot4 api`` (uvicorn) on loopback; needs PostgreSQL migrated, so it starts last."""

    name = "api"
    start_timeout_s = 30.0

    def __init__(self, *, paths: StackPaths, settings: Settings) -> None:
        super().__init__(paths=paths)
        self.settings = settings

    def argv(self) -> list[str]:
        """Run the API with this environment's Python."""
        return [sys.executable, "-m", "bot4", "api"]

    def env(self) -> Mapping[str, str]:
        """Hand the child exactly our settings (it is an entry point and reads BOT4_*)."""
        return {**os.environ, **self.settings.to_env()}

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the API port."""
        api = self.settings.api
        return [(api.host, api.port, "BOT4_API__PORT")]

    def healthy(self) -> bool:
        """Ask the unauthenticated liveness route."""
        return http_ok(f"{self.url()}/healthz")

    def url(self) -> str:
        """Return the API's base URL."""
        return self.settings.effective_api_url()

    def details(self) -> dict[str, object]:
        """Add the OpenAPI document's address."""
        return {"openapi_url": f"{self.url()}/v1/openapi.json"}
