"""The control API's own configuration.

The entry point (:mod:`bot4.api.server`) builds it from :class:`bot4.settings.Settings`
and hands it to :func:`bot4.api.app.create_app`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from bot4.api.ratelimit import Limit
from bot4.api.roles import Role

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_BODY_BYTES: Final = 64 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiConfig:
    """Everything the API process needs.

    Attributes:
        dsn: bot4's PostgreSQL (keys, audit log, kill switch).
        pool_max_size: connections in the pool.
        admin_networks: client networks admin routes accept.
        rate_limits: token bucket of each role.
        unauthenticated_rate_limit: token bucket per address for requests without a key.
        audit_key: Fernet key (url-safe base64 text) for sensitive audit parameters.
        sensitive_params: parameter names stored encrypted.
        key_lifetime_s: lifetime of a new key when none is asked for (0: none).
        key_overlap_s: default overlap of a rotation.
        engines: control URL of each engine color.
        engine_token: bearer token of the engines' admin routes.
        engine_timeout_s: bound of one engine call.
        status_timeout_s: bound of the stack probe.
        secrets: values that must never leave the process (scrubbed from answers, logs).
        max_body_bytes: larger request bodies are refused (413).
        temporal_address: Temporal frontend of the runbook workflows.
        temporal_namespace: its namespace.
        task_queue: the worker's task queue.
        prefect_api_url: the Prefect API whose served deployments run the chores.
        temporal_ui_url: base URL of the Temporal web UI ("" when unknown: an external
            Temporal), for the console's links to runbook workflows.
        prometheus_url: the Prometheus whose alerts ``GET /v1/alerts`` passes on.
    """

    dsn: str = field(repr=False)
    pool_max_size: int = 5
    admin_networks: tuple[Network, ...]
    rate_limits: Mapping[Role, Limit]
    unauthenticated_rate_limit: Limit
    audit_key: bytes = field(repr=False)
    sensitive_params: tuple[str, ...] = ("reason", "note", "comment")
    key_lifetime_s: int = 90 * 86_400
    key_overlap_s: int = 3600
    engines: Mapping[str, str] = field(default_factory=dict)
    engine_token: str = field(default="", repr=False)
    engine_timeout_s: float = 5.0
    status_timeout_s: float = 5.0
    secrets: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = MAX_BODY_BYTES
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "bot4"
    prefect_api_url: str = "http://127.0.0.1:4200/api"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    prometheus_url: str = "http://127.0.0.1:9090"

    def admin_address_allowed(self, address: str) -> bool:
        """Tell whether a client at ``address`` may use admin routes."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a unix socket or an unknown peer: never an admin
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.admin_networks)
