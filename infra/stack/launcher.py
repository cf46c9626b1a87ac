"""``bot4 stack up | down | status``: every server of the platform, on loopback.

Order matters: PostgreSQL first (Prefect keeps its database there, migrations run there),
then the object store, the exchange simulator and Temporal, then the Temporal worker, then
Prefect, then the control API (its keys and audit log live in the migrated schema).
``down`` stops the engines first (the worker starts them during rollouts), then goes in
reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot4.settings import Settings
from infra.platform import Color, LocalPlatform, PlatformError
from infra.stack.api_server import ApiServer
from infra.stack.component import Component, ComponentStatus, Outcome, Progress, SilentProgress
from infra.stack.exchange_sim_server import ExchangeSimServer
from infra.stack.flows_server import FlowsServer
from infra.stack.managed import ManagedServer
from infra.stack.object_store import ObjectStoreServer
from infra.stack.paths import StackPaths
from infra.stack.postgres import PostgresPair
from infra.stack.prefect_server import PrefectServer
from infra.stack.prometheus_server import PrometheusServer
from infra.stack.temporal_server import TemporalServer
from infra.stack.worker_server import WorkerServer

ENGINE_COLORS: Final[tuple[Color, ...]] = ("blue", "green")


@dataclass(frozen=True, kw_only=True, slots=True)
class StackStatus:
    """What ``bot4 stack status`` reports."""

    home: str
    components: tuple[ComponentStatus, ...]

    @property
    def healthy(self) -> bool:
        """Tell whether every component is healthy."""
        return all(c.healthy for c in self.components)

    @property
    def running(self) -> bool:
        """Tell whether any component of this stack runs."""
        return any(c.pid is not None for c in self.components)

    def as_json(self) -> dict[str, object]:
        """Return the JSON document of ``status --json``."""
        return {
            "home": self.home,
            "healthy": self.healthy,
            "components": [c.as_json() for c in self.components],
        }


class Stack:
    """The local stack under one ``BOT4_HOME``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = StackPaths(settings.home)
        self.postgres = PostgresPair(
            paths=self.paths,
            settings=settings.db,
            extra_databases=(settings.prefect.database,),
        )
        self.servers: list[ManagedServer] = []
        if settings.storage.endpoint_url is None and settings.storage.backup_uri.startswith(
            "s3://"
        ):
            self.servers.append(ObjectStoreServer(paths=self.paths, settings=settings.storage))
        if settings.exchange.simulator:
            self.servers.append(ExchangeSimServer(paths=self.paths, settings=settings))
        if settings.temporal.address is None:
            self.servers.append(TemporalServer(paths=self.paths, settings=settings.temporal))
        if settings.temporal.address is None:  # a cluster elsewhere runs its own workers
            self.servers.append(WorkerServer(paths=self.paths, settings=settings))
        if settings.prefect.api_url is None:
            self.servers.append(
                PrefectServer(
                    paths=self.paths,
                    settings=settings.prefect,
                    database_url=self._prefect_database_url(),
                )
            )
        # the flow runner registers its deployments with Prefect (local or BOT4_PREFECT__API_URL)
        self.servers.append(FlowsServer(paths=self.paths, settings=settings))
        if settings.api_url is None:  # BOT4_API_URL names an API elsewhere: start none here
            self.servers.append(ApiServer(paths=self.paths, settings=settings))
        # last: its first scrape finds every target up; optional (skipped when not installed)
        self.servers.append(PrometheusServer(paths=self.paths, settings=settings))

    def _prefect_database_url(self) -> str:
        db = self.settings.db
        # SQLAlchemy's asyncpg dialect takes several hosts as repeated `host` parameters and
        # follows the primary with target_session_attrs, like our own DSN.
        return (
            f"postgresql+asyncpg://{db.user}@/{self.settings.prefect.database}"
            f"?host={db.host}:{db.primary_port}&host={db.host}:{db.standby_port}"
            "&target_session_attrs=read-write"
        )

    @property
    def local_postgres(self) -> bool:
        """Tell whether the stack runs its own PostgreSQL (no external DSN)."""
        return self.settings.db.dsn is None

    def components(self) -> list[Component]:
        """Return every component in start order."""
        nodes: list[Component] = list(self.postgres.nodes) if self.local_postgres else []
        return [*nodes, *self.servers]

    def up(self, progress: Progress | None = None) -> dict[str, Outcome]:
        """Start what is not running, reuse what is, migrate the schema.

        Raises:
            StackError: a component could not be started; its message says what to do.
        """
        from infra.postgres.migrate import apply_migrations_sync

        progress = progress or SilentProgress()
        self.paths.create()
        outcomes: dict[str, Outcome] = {}
        if self.local_postgres:
            outcomes.update(self.postgres.ensure_running(progress))
        progress.begin("migrations", "applying")
        applied = apply_migrations_sync(self.settings.db.effective_dsn())
        progress.done("migrations", f"{len(applied)} applied" if applied else "up to date")
        for server in self.servers:
            outcome = server.ensure_running(progress)
            outcomes[server.name] = outcome
            skipped = server.skipped_because() if outcome == "skipped" else None
            progress.done(server.name, outcome if skipped is None else f"skipped: {skipped}")
        return outcomes

    def down(self, progress: Progress | None = None) -> list[str]:
        """Stop every component this stack started, in reverse order; return their names."""
        progress = progress or SilentProgress()
        stopped = self._stop_engines(progress)
        for server in reversed(self.servers):
            progress.begin(server.name, "stopping")
            was_running = server.stop()
            progress.done(server.name, "stopped" if was_running else "not running")
            if was_running:
                stopped.append(server.name)
        if self.local_postgres:
            progress.begin("postgres", "stopping")
            names = self.postgres.stop()
            progress.done("postgres", "stopped " + ", ".join(names) if names else "not running")
            stopped.extend(names)
        return stopped

    def _stop_engines(self, progress: Progress) -> list[str]:
        """Stop every engine color; return the names of those that ran.

        First, because the worker starts engines during rollouts, and an engine left
        running after its database and venue went away would only log errors: SIGTERM
        lets each cancel its orders and release the lease while both still exist.
        """
        platform = LocalPlatform(self.settings.home)
        stopped = []
        for color in ENGINE_COLORS:
            if platform.status(color).running:
                progress.begin(f"engine-{color}", "stopping")
                try:
                    platform.stop(color)
                except PlatformError as e:  # report it and stop the rest of the stack anyway
                    progress.done(f"engine-{color}", f"FAILED: {e}")
                    continue
                progress.done(f"engine-{color}", "stopped")
                stopped.append(f"engine-{color}")
        return stopped

    def status(self) -> StackStatus:
        """Probe every component once."""
        return StackStatus(
            home=str(self.paths.home), components=tuple(c.status() for c in self.components())
        )

    def pids(self) -> list[int]:
        """Return every pid the stack recorded for a running component."""
        return [pid for c in self.components() for pid in c.pids()]
