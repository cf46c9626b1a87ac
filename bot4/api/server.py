"""``bot4 api``: build the API's configuration from the settings and serve it with uvicorn.

The entry point is the only place that reads :class:`Settings` here: it resolves the
audit key (setting, else ``<home>/api/audit.key``, created once), the engines' control
token and addresses, and every secret the scrubber must know.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from bot4.api.config import ApiConfig
from bot4.api.keyfile import create_once, read_secret_file
from bot4.api.ratelimit import Limit
from bot4.api.roles import Role
from bot4.settings import LOOPBACK, Settings

log = logging.getLogger(__name__)

AUDIT_KEY_FILE: Final = "api/audit.key"


def audit_key_path(settings: Settings) -> Path:
    """Return where the generated audit key lives."""
    return settings.home / AUDIT_KEY_FILE


def audit_key(settings: Settings) -> bytes:
    """Return the configured audit key, else the key file's (created once, 0600)."""
    if settings.api.audit_key is not None:
        return settings.api.audit_key.get_secret_value().encode()
    from cryptography.fernet import Fernet

    return create_once(audit_key_path(settings), Fernet.generate_key().decode()).encode()


def engine_token(settings: Settings) -> str:
    """Return the engines' control token, if one is configured or written yet."""
    if settings.engine.control_token is not None:
        return settings.engine.control_token.get_secret_value()
    from engine.live.run import control_token_path

    return read_secret_file(control_token_path(settings)) or ""


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """Return every secret value in the settings (and a DSN's password)."""
    found: list[str] = []
    for group in (settings, *(getattr(settings, name) for name in type(settings).model_fields)):
        if not isinstance(group, BaseModel):
            continue
        for name in type(group).model_fields:
            value = getattr(group, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
    if settings.db.dsn is not None:  # the DSN itself is a SecretStr: add its password alone
        password = urlsplit(settings.db.dsn.get_secret_value()).password
        if password:
            found.append(password)
    return tuple(found)


def api_config(settings: Settings) -> ApiConfig:
    """Return the API's configuration from the settings."""
    api, engine = settings.api, settings.engine
    key = audit_key(settings)
    return ApiConfig(
        dsn=settings.db.effective_dsn(),
        pool_max_size=settings.db.pool_max_size,
        admin_networks=tuple(ipaddress.ip_network(n) for n in api.admin_networks),
        rate_limits={
            Role.parse(name): Limit(per_s=limit.per_s, burst=limit.burst)
            for name, limit in api.rate_limits.items()
        },
        unauthenticated_rate_limit=Limit(
            per_s=api.unauthenticated_rate_limit.per_s,
            burst=api.unauthenticated_rate_limit.burst,
        ),
        audit_key=key,
        sensitive_params=api.sensitive_params,
        key_lifetime_s=api.key_lifetime_s,
        key_overlap_s=api.key_overlap_s,
        engines={
            "blue": f"http://{engine.host}:{engine.blue_control_port}",
            "green": f"http://{engine.host}:{engine.green_control_port}",
        },
        engine_token=engine_token(settings),
        engine_timeout_s=api.engine_timeout_s,
        status_timeout_s=api.status_timeout_s,
        secrets=(*configured_secrets(settings), key.decode()),
        temporal_address=settings.temporal.effective_address(),
        temporal_namespace=settings.temporal.namespace,
        task_queue=settings.temporal.task_queue,
        prefect_api_url=settings.prefect.effective_api_url(),
        temporal_ui_url=temporal_ui_url(settings),
        prometheus_url=f"http://{LOOPBACK}:{settings.prometheus.port}",
    )


def temporal_ui_url(settings: Settings) -> str:
    """Return the local dev server's web UI, or "" for an external Temporal (UI unknown)."""
    temporal = settings.temporal
    if temporal.address is not None:
        return ""
    host = temporal.host if temporal.host not in ("0.0.0.0", "::") else LOOPBACK  # noqa: S104
    return f"http://{host}:{temporal.ui_port}"


class StartError(Exception):
    """The API cannot start; the message says what to do."""


async def _preflight(dsn: str) -> None:
    """Check that PostgreSQL answers and carries the control plane's tables.

    Raises:
        StartError: it does not.
    """
    import asyncpg

    try:
        connection = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        raise StartError(
            f"cannot reach PostgreSQL ({type(e).__name__}); start it (`bot4 stack up`) or"
            " check BOT4_DB__DSN"
        ) from None  # the chained error could carry the DSN
    try:
        head = await connection.fetchval("SELECT to_regclass('audit_chain_head') IS NOT NULL")
    finally:
        await connection.close()
    if not head:
        raise StartError("the database has no control-plane tables; run `bot4 db migrate`")


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> bool:
    """Serve the API until SIGTERM / SIGINT; return False if it stopped during start-up.

    Raises:
        StartError: PostgreSQL is unreachable or not migrated (nothing was started).
        OSError: the address cannot be bound.
    """
    import asyncio

    import uvicorn

    from bot4.api.app import create_app

    asyncio.run(_preflight(settings.db.effective_dsn()))

    def probe() -> dict[str, object]:
        from infra.stack.launcher import Stack

        return Stack(settings).status().as_json()

    app = create_app(api_config(settings), stack_probe=probe)
    config = uvicorn.Config(
        app,
        host=host or settings.api.host,
        port=settings.api.port if port is None else port,
        log_config=None,  # our structlog handlers (bot4/logs.py) take uvicorn's records
        access_log=False,  # the audit log is the access log; URLs could carry secrets
        proxy_headers=False,  # the client address decides admin access: never from headers
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when the lifespan (pool, audit writer) fails
        return False
    return bool(server.started)
