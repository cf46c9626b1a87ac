"""The S3 API on loopback: moto in server mode, with the backup bucket created."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot4.settings import StorageSettings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer, venv_binary
from infra.stack.paths import StackPaths


class ObjectStoreServer(ManagedServer):
    """``moto_server`` speaking the S3 API (in memory: objects vanish on stop)."""

    name = "s3"
    start_timeout_s = 30.0

    def __init__(self, *, paths: StackPaths, settings: StorageSettings) -> None:
        super().__init__(paths=paths)
        self.settings = settings

    def argv(self) -> list[str]:
        """Return the moto server command line."""
        binary = venv_binary("moto_server") or "moto_server"
        return [binary, "-H", self.settings.host, "-p", str(self.settings.port)]

    def env(self) -> Mapping[str, str]:
        """Keep moto from looking for real AWS credentials or endpoints."""
        return {**os.environ, "AWS_ACCESS_KEY_ID": "bot4", "AWS_SECRET_ACCESS_KEY": "bot4"}

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the S3 API port."""
        return [(self.settings.host, self.settings.port, "BOT4_STORAGE__PORT")]

    def healthy(self) -> bool:
        """Ask moto's own API, which answers once the server serves requests."""
        return http_ok(f"{self.url()}/moto-api/data.json")

    def url(self) -> str:
        """Return the S3 endpoint URL."""
        return self.settings.effective_endpoint_url()

    def after_start(self) -> None:
        """Create the backup bucket (idempotent)."""
        from infra.storage import ensure_bucket, s3_client

        bucket = self.settings.backup_bucket()
        if bucket is not None:
            ensure_bucket(s3_client(self.settings), bucket)

    def details(self) -> dict[str, object]:
        """Add the backup URI."""
        return {"backup_uri": self.settings.backup_uri}
