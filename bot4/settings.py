"""The one settings root of bot4.

Only entry points (the CLI, the servers' ``main``) build :class:`Settings`; they hand each
component the group it needs. Every field reads from the environment with the prefix
``BOT4_`` and ``__`` between group and field, e.g. ``BOT4_DB__PRIMARY_PORT=6433``.
``BOT4_HOME`` moves the state folder (data, logs, pid files).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import to_json
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK: Final = "127.0.0.1"

# A PostgreSQL identifier we may quote into SQL without escaping.
IDENTIFIER: Final = r"^[a-z_][a-z0-9_]{0,62}$"

Port = Annotated[int, Field(ge=1, le=65535)]


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(_Group):
    """PostgreSQL: a primary and a synchronous streaming standby."""

    host: str = Field(default=LOOPBACK, description="Address both local nodes listen on.")
    primary_port: Port = Field(default=5433, description="Port of node A (primary at first).")
    standby_port: Port = Field(default=5434, description="Port of node B (standby at first).")
    database: str = Field(
        default="bot4", pattern=IDENTIFIER, description="Database of bot4's journal."
    )
    user: str = Field(default="postgres", min_length=1, description="Database role to connect as.")
    dsn: SecretStr | None = Field(
        default=None,
        description=(
            "Full DSN of an external PostgreSQL; when set, the stack does not start its own."
            " List primary and standby with target_session_attrs=read-write. A secret: it"
            " may carry the password (or use PGPASSFILE)."
        ),
    )
    os_user: str | None = Field(
        default=None,
        description=(
            "Unprivileged OS user that runs the local servers when bot4 runs as root"
            " (PostgreSQL refuses root). Default: 'postgres' if it exists, else 'nobody'."
        ),
    )
    pool_max_size: int = Field(default=5, ge=1, le=100, description="Connections per pool.")

    def local_dsn(self, *, database: str | None = None) -> str:
        """Return a multi-host DSN that reaches whichever local node is primary."""
        return (
            f"postgresql://{self.user}@{self.host}:{self.primary_port},"
            f"{self.host}:{self.standby_port}/{database or self.database}"
            "?target_session_attrs=read-write"
        )

    def effective_dsn(self) -> str:
        """Return the configured external DSN, or the local stack's."""
        return self.dsn.get_secret_value() if self.dsn is not None else self.local_dsn()


class TemporalSettings(_Group):
    """Temporal dev server (or a cluster, by address)."""

    host: str = Field(default=LOOPBACK, description="Address the local dev server binds.")
    port: Port = Field(default=7233, description="Frontend gRPC port of the local dev server.")
    ui_port: Port = Field(default=8233, description="Web UI port of the local dev server.")
    address: str | None = Field(
        default=None, description="host:port of an external Temporal; the stack then starts none."
    )
    namespace: str = Field(default="default", min_length=1, description="Temporal namespace.")
    task_queue: str = Field(
        default="bot4",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Task queue of bot4's worker (two desks on one Temporal: one queue each).",
    )

    def effective_address(self) -> str:
        """Return where clients connect."""
        return self.address or f"{self.host}:{self.port}"


class PrefectSettings(_Group):
    """Prefect server, its database in our PostgreSQL."""

    host: str = Field(default=LOOPBACK, description="Address the local Prefect server binds.")
    port: Port = Field(default=4200, description="Port of the local Prefect server (API + UI).")
    database: str = Field(
        default="prefect", pattern=IDENTIFIER, description="Prefect's own database."
    )
    api_url: str | None = Field(
        default=None, description="External Prefect API URL; the stack then starts none."
    )

    def effective_api_url(self) -> str:
        """Return the Prefect API URL clients use."""
        return self.api_url or f"http://{self.host}:{self.port}/api"


class StorageSettings(_Group):
    """Object store for backups and reports: S3 API (moto locally) or file://."""

    host: str = Field(default=LOOPBACK, description="Address the local S3 server binds.")
    port: Port = Field(default=9000, description="Port of the local S3 API server (moto).")
    endpoint_url: str | None = Field(
        default=None, description="External S3 endpoint; unset with an s3:// URI means AWS."
    )
    backup_uri: str = Field(
        default="s3://bot4-backups/backups",
        description="Where backups go: s3://bucket/prefix or file:///path.",
    )
    models_uri: str = Field(
        default="s3://bot4-models/models",
        description="Where model artifacts go: s3://bucket/prefix or file:///path.",
    )
    region: str = Field(default="us-east-1", description="S3 region.")

    @field_validator("backup_uri", "models_uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (value.startswith("s3://") or value.startswith("file://")):
            raise ValueError("must start with s3:// or file://")
        if value.startswith("s3://") and not value.removeprefix("s3://").split("/")[0]:
            raise ValueError("s3:// URI needs a bucket name")
        return value

    def effective_endpoint_url(self) -> str:
        """Return the S3 endpoint clients use."""
        return self.endpoint_url or f"http://{self.host}:{self.port}"

    def backup_bucket(self) -> str | None:
        """Return the bucket of an s3:// backup URI, else None."""
        if not self.backup_uri.startswith("s3://"):
            return None
        return self.backup_uri.removeprefix("s3://").split("/")[0]


class ExchangeSettings(_Group):
    """The venue: the local simulator by default, any ccxt venue by configuration."""

    venue: str = Field(
        default="binance", pattern=r"^[a-z0-9]+$", description="ccxt exchange id of the venue."
    )
    simulator: bool = Field(
        default=True,
        description=(
            "Trade against the local exchange simulator: `stack up` starts it and ccxt's URLs"
            " point at it. False means the venue's real URLs."
        ),
    )
    host: str = Field(default=LOOPBACK, description="Address the exchange simulator binds.")
    port: Port = Field(default=8900, description="REST + websocket port of the simulator.")
    api_key: SecretStr = Field(
        default=SecretStr("bot4-demo-key"), description="Venue API key (simulator: demo account)."
    )
    api_secret: SecretStr = Field(
        default=SecretStr("bot4-demo-secret"), description="Venue API secret for signing."
    )
    symbols: tuple[str, ...] = Field(
        default=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
        min_length=1,
        description="Unified ccxt symbols the desk trades (and the simulator lists).",
    )
    sim_seed: int = Field(default=42, ge=0, description="Seed of the simulator's market.")
    sim_agent_orders_per_s: float = Field(
        default=50.0, ge=0.0, le=100_000.0, description="Simulator background agents' order rate."
    )
    sim_admin_token: SecretStr = Field(
        default=SecretStr("bot4-sim-admin"), description="Token of the simulator's admin routes."
    )

    def base_url(self) -> str:
        """Return the simulator's HTTP base URL."""
        return f"http://{self.host}:{self.port}"

    def ws_url(self) -> str:
        """Return the simulator's websocket base URL."""
        return f"ws://{self.host}:{self.port}"


class EngineSettings(_Group):
    """Engine control endpoints, one per color."""

    host: str = Field(default=LOOPBACK, description="Address engine control servers bind.")
    blue_control_port: Port = Field(default=9101, description="Control port of engine blue.")
    green_control_port: Port = Field(default=9102, description="Control port of engine green.")
    control_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token of the engines' admin routes (>= 16 characters). Default: a random"
            " token created once in <home>/engine/control.token (mode 0600)."
        ),
    )
    ended_order_retention_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description=(
            "How long an engine keeps an ended order in memory after it ended (its late"
            " fills still find it); the journal keeps every order for good."
        ),
    )
    admin_call_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "How long an admin call waits for the engine loop before answering 503 (the"
            " action itself goes on: a step-down always runs to its end)."
        ),
    )

    @field_validator("control_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("control_token must have at least 16 characters")
        return value


CRON: Final = r"^\S+( \S+){4}$"


class WorkerSettings(_Group):
    """Temporal worker, and the drill schedule it keeps in Temporal."""

    metrics_port: Port = Field(default=9200, description="Prometheus port of the worker.")
    drill_cron: str = Field(
        default="",
        pattern=r"^(|\S+( \S+){4})$",
        description="UTC cron of the scheduled disaster-recovery drill (a Temporal schedule"
        " the worker creates or updates at start); empty: no schedule (the default).",
    )
    drill_mode: Literal["switchover", "failover"] = Field(
        default="switchover", description="What the scheduled drill does to the primary."
    )
    drill_max_rto_s: float = Field(
        default=10.0, gt=0, le=3600, description="A scheduled drill fails above this RTO."
    )


class FlowsSettings(_Group):
    """Prefect flows (``bot4 flows serve``): schedules, backup retention, tolerances."""

    metrics_port: Port = Field(default=9300, description="Prometheus port of the flow runner.")
    backup_cron: str = Field(
        default="0 2 * * *", pattern=CRON, description="Backup (then restore test), UTC cron."
    )
    reconcile_cron: str = Field(
        default="15 0 * * *", pattern=CRON, description="Nightly reconciliation, UTC cron."
    )
    report_cron: str = Field(
        default="0 6 * * *", pattern=CRON, description="Daily report (of yesterday), UTC cron."
    )
    interval_s: int | None = Field(
        default=None,
        ge=5,
        le=86_400,
        description="Run every flow every N seconds instead of its cron (tests, drills).",
    )
    keep_daily: int = Field(default=7, ge=1, le=366, description="Daily backups kept.")
    keep_weekly: int = Field(default=4, ge=0, le=520, description="Weekly backups kept.")
    reports_uri: str = Field(
        default="s3://bot4-backups/reports",
        description="Where reports go: s3://bucket/prefix or file:///path.",
    )
    quantity_tolerance: Decimal = Field(
        default=Decimal("0.00000001"),
        ge=0,
        description="Largest quantity difference (fill, order, balance) still taken as equal.",
    )
    price_tolerance: Decimal = Field(
        default=Decimal("0.00000001"),
        ge=0,
        description="Largest fill price difference still taken as equal.",
    )
    escalate_after_runs: int = Field(
        default=2, ge=1, le=100, description="A break seen on this many runs in a row escalates."
    )
    settle_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Fills younger than this are not compared yet (an engine may be journaling).",
    )

    @field_validator("reports_uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (value.startswith("s3://") or value.startswith("file://")):
            raise ValueError("must start with s3:// or file://")
        return value


class PrometheusSettings(_Group):
    """The stack's Prometheus: scrapes every component, evaluates the alert rules.

    ``bot4 stack up`` starts it when the ``prometheus`` binary is installed (Debian's
    package) and skips it, saying so, when not. The intervals are short because the
    local stack is for development and tests; a production Prometheus uses the
    template's own (``infra/prometheus/prometheus.yml``).
    """

    port: Port = Field(default=9090, description="Port of the stack's Prometheus (loopback).")
    scrape_interval_s: int = Field(
        default=2, ge=1, le=300, description="How often every target is scraped."
    )
    evaluation_interval_s: int = Field(
        default=2, ge=1, le=300, description="How often the alert rules are evaluated."
    )
    retention_hours: int = Field(
        default=48, ge=1, le=24 * 365, description="How long samples are kept (local TSDB)."
    )


RoleName = Literal["viewer", "trader", "operator", "admin"]
ROLE_NAMES: Final[tuple[RoleName, ...]] = ("viewer", "trader", "operator", "admin")


class RateLimit(_Group):
    """A token bucket: ``burst`` requests at once, refilled at ``per_s`` requests a second."""

    per_s: float = Field(gt=0, le=1_000_000, description="Sustained requests per second.")
    burst: int = Field(ge=1, le=1_000_000, description="Requests allowed at once (bucket size).")


def _default_rate_limits() -> dict[RoleName, RateLimit]:
    # Automations (operators' workflows, admin tooling) poll more than a person at a terminal.
    return {
        "viewer": RateLimit(per_s=5, burst=20),
        "trader": RateLimit(per_s=10, burst=40),
        "operator": RateLimit(per_s=20, burst=80),
        "admin": RateLimit(per_s=20, burst=80),
    }


class ApiSettings(_Group):
    """Control API (server side): the one door for people and automation."""

    host: str = Field(default=LOOPBACK, description="Address the control API binds.")
    port: Port = Field(default=8080, description="Port of the control API.")
    admin_networks: tuple[str, ...] = Field(
        default=("127.0.0.1/32", "::1/128"),
        max_length=256,
        description=(
            "Client networks (CIDR) admin routes (key management) accept; JSON list."
            " Other routes accept any address with a valid key."
        ),
    )
    rate_limits: dict[RoleName, RateLimit] = Field(
        default_factory=_default_rate_limits,
        description=(
            'Token bucket per key, by role; JSON, e.g. {"viewer": {"per_s": 2, "burst": 5}}.'
            " Roles not given keep their defaults."
        ),
    )
    unauthenticated_rate_limit: RateLimit = Field(
        default=RateLimit(per_s=5, burst=20),
        description="Token bucket per client address for requests without a valid key.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description=(
            "Fernet key (32 url-safe base64 bytes) that encrypts sensitive audit parameters"
            " at rest. Default: a random key created once in <home>/api/audit.key (0600)."
            " Every API process of one database needs the same key."
        ),
    )
    sensitive_params: tuple[str, ...] = Field(
        default=("reason", "note", "comment"),
        max_length=64,
        description="Request parameters stored encrypted in the audit log (free text).",
    )
    key_lifetime_s: int = Field(
        default=90 * 86_400,
        ge=0,
        le=5 * 365 * 86_400,
        description="Lifetime of a new API key when none is asked for; 0 = no expiry.",
    )
    key_overlap_s: int = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="After a rotation, how long the old key stays valid beside the new one.",
    )
    key_file: Path | None = Field(
        default=None,
        description=(
            "Where `bot4 keys bootstrap` writes the first admin key (0600) and where the CLI"
            " looks for a key when BOT4_API_KEY is unset. Default: <home>/api/admin.key."
        ),
    )
    engine_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Bound of one call to an engine control endpoint."
    )
    status_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Bound of the stack probe behind GET /v1/status."
    )

    @field_validator("admin_networks")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError as e:
                raise ValueError(
                    f"{network!r} is not a network in CIDR notation ({e});"
                    " write e.g. 10.20.0.0/16 or 127.0.0.1/32"
                ) from None
        return value

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _keep_default_roles(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**_default_rate_limits(), **value}
        return value

    @field_validator("audit_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        try:
            raw = base64.urlsafe_b64decode(value.get_secret_value().encode())
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 32:
            # never echo the value: it is a secret, even when malformed
            raise ValueError(
                "audit_key must be 32 url-safe base64-encoded bytes (a Fernet key); make one"
                " with: python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'"
            )
        return value

    @field_validator("sensitive_params")
    @classmethod
    def _param_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
                raise ValueError(f"{name!r} is not a parameter name ([A-Za-z_][A-Za-z0-9_]*)")
        return value

    def effective_key_file(self, home: Path) -> Path:
        """Return where the bootstrap admin key lives."""
        return self.key_file or home / "api" / "admin.key"


GRAFANA_UID: Final = r"^[A-Za-z0-9_-]{1,40}$"  # Grafana's uid rule (folders, datasources)


class GrafanaSettings(_Group):
    """A Grafana that ``bot4 dashboards push`` provisions (none runs in the local stack)."""

    url: str = Field(
        default="",
        pattern=r"^(|https?://[^\s/]+(/[^\s]*)?)$",
        description="Base URL of Grafana, e.g. https://grafana.internal (a sub-path is"
        " kept); empty: not configured, `bot4 dashboards push` refuses.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="Service account token (Editor or Admin role), sent as a Bearer token."
        " Or user and password.",
    )
    user: str = Field(default="", max_length=256, description="Basic auth user (no token).")
    password: SecretStr | None = Field(
        default=None, validate_default=True, description="Basic auth password (with user)."
    )
    folder_title: str = Field(
        default="bot4", min_length=1, max_length=189, description="Folder of the dashboards."
    )
    folder_uid: str = Field(
        default="bot4", pattern=GRAFANA_UID, description="uid of that folder (created if missing)."
    )
    datasource_uid: str = Field(
        default="",
        pattern=r"^(|[A-Za-z0-9_-]{1,40})$",
        description="uid of the Prometheus datasource every panel is pinned to; empty: the"
        " dashboards keep a datasource picker.",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Bound of one request.")

    @field_validator("password")
    @classmethod
    def _one_way_to_sign_in(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # a check across fields, on the last of them: a model-level error would echo every
        # field's input, the token among them (the CLI hides only inputs of secret fields)
        token, user = info.data.get("token"), info.data.get("user", "")
        if token is not None and (user or value is not None):
            raise ValueError(
                "set either BOT4_GRAFANA__TOKEN or BOT4_GRAFANA__USER with"
                " BOT4_GRAFANA__PASSWORD, not both"
            )
        if bool(user) != (value is not None):
            raise ValueError("BOT4_GRAFANA__USER and BOT4_GRAFANA__PASSWORD go together")
        return value


class Settings(BaseSettings):
    """Root of all bot4 configuration."""

    model_config = SettingsConfigDict(
        env_prefix="BOT4_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    home: Path = Field(default=Path("var"), description="State folder: data, logs, pid files.")
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    flows: FlowsSettings = Field(default_factory=FlowsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    api_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description=(
            "Where the CLI reaches the control API (BOT4_API_URL). Default:"
            " http://<api.host>:<api.port>. When set, `stack up` starts no local API."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "The CLI's API key (BOT4_API_KEY). Default: the key file of `bot4 keys"
            " bootstrap` (api.key_file)."
        ),
    )

    def effective_api_url(self) -> str:
        """Return the control API's base URL as clients see it."""
        if self.api_url is not None:
            return self.api_url.rstrip("/")
        host = self.api.host if self.api.host not in ("0.0.0.0", "::") else LOOPBACK  # noqa: S104
        return f"http://{host}:{self.api.port}"

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    def to_env(self) -> dict[str, str]:
        """Return the ``BOT4_*`` variables that rebuild these settings in a child process.

        The launcher starts bot4's own servers with them, so a child sees exactly the
        settings of its parent, however those were built. Contains secrets: only for a
        child's environment, never for logs.
        """
        env = {"BOT4_HOME": str(self.home)}
        for group_name in type(self).model_fields:
            group = getattr(self, group_name)
            if not isinstance(group, BaseModel):
                continue
            for field_name in type(group).model_fields:
                value = getattr(group, field_name)
                if value is None:
                    continue
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                elif isinstance(value, tuple):
                    value = json.dumps(list(value))
                elif isinstance(value, dict | BaseModel):
                    value = to_json(value).decode()
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                env[f"BOT4_{group_name.upper()}__{field_name.upper()}"] = str(value)
        return env
