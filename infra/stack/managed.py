"""A server process that the launcher spawns itself and tracks with a pid file."""

from __future__ import annotations

import os
import shutil
import sys
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path

from infra.stack.component import Component, ComponentStatus, Outcome, Progress, wait_for_health
from infra.stack.errors import ComponentStartError, MissingBinaryError
from infra.stack.paths import StackPaths
from infra.stack.process import (
    PidRecord,
    is_alive,
    read_pid_file,
    require_free_port,
    spawn,
    stop_process_group,
)


def venv_binary(name: str) -> str | None:
    """Find a console script of this environment first, then on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    return shutil.which(name)


class ManagedServer(Component):
    """Spawned in its own session, found again through its pid file, stopped by group."""

    start_timeout_s: float = 60.0

    def __init__(self, *, paths: StackPaths) -> None:
        self.paths = paths
        self.pid_file = paths.pid_file(self.name)
        self.log_file = paths.log_file(self.name)

    @abstractmethod
    def argv(self) -> list[str]:
        """Return the command line that starts the server."""

    @abstractmethod
    def ports(self) -> list[tuple[str, int, str]]:
        """Return (host, port, setting name) for each port the server binds."""

    @abstractmethod
    def healthy(self) -> bool:
        """Probe the server once."""

    @abstractmethod
    def url(self) -> str:
        """Return the address operators and clients use."""

    def env(self) -> Mapping[str, str]:
        """Return the environment of the server process."""
        return os.environ

    def after_start(self) -> None:
        """Finish setting up a healthy server (create buckets, namespaces...)."""

    def details(self) -> dict[str, object]:
        """Return extra status fields."""
        return {}

    def skipped_because(self) -> str | None:
        """Return why an optional server is not run here (and what to do), else None.

        A skipped server is not a failure: ``up`` reports it and goes on, ``status``
        shows it as skipped, and the stack counts as healthy without it.
        """
        return None

    def _record(self) -> PidRecord | None:
        return read_pid_file(self.pid_file, component=self.name)

    def ensure_running(self, progress: Progress) -> Outcome:
        """Reuse a healthy running server, else start a new one and wait for health.

        Raises:
            MissingBinaryError: the server binary is not installed.
            PortTakenError: a port the server needs is taken by another process.
            ComponentStartError: the server exited or did not become healthy in time.
        """
        if self.skipped_because() is not None:
            return "skipped"
        running = self._record()
        if running is not None and is_alive(running):
            progress.begin(self.name, "checking the running server")
            wait_for_health(
                component=self.name,
                healthy=self.healthy,
                still_running=lambda: is_alive(running),
                timeout_s=self.start_timeout_s,
                progress=progress,
                log_file=self.log_file,
            )
            self.after_start()
            return "reused"
        if running is not None:
            self.pid_file.unlink(missing_ok=True)  # a dead server's leftover
        argv = self.argv()
        if not Path(argv[0]).exists():
            raise MissingBinaryError(
                self.name,
                f"{argv[0]} is not installed",
                action="Run `make demo` or `uv sync --frozen` to install the environment.",
            )
        for host, port, setting in self.ports():
            require_free_port(host, port, component=self.name, setting=setting)
        progress.begin(self.name, "starting")
        record = spawn(argv, pid_file=self.pid_file, log_file=self.log_file, env=self.env())
        try:
            wait_for_health(
                component=self.name,
                healthy=self.healthy,
                still_running=lambda: is_alive(record),
                timeout_s=self.start_timeout_s,
                progress=progress,
                log_file=self.log_file,
            )
            self.after_start()
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise
        return "started"

    def stop(self) -> bool:
        """Stop the server and everything it forked."""
        record = self._record()
        if record is None:
            return False
        stop_process_group(record)
        if is_alive(record):
            raise ComponentStartError(
                self.name,
                f"pid {record.pid} survived SIGKILL",
                action=f"Check it with `ps -o pid,stat,cmd -p {record.pid}`.",
            )
        self.pid_file.unlink(missing_ok=True)
        return True

    def pids(self) -> list[int]:
        """Return the recorded pid, when the server runs."""
        record = self._record()
        return [record.pid] if record is not None and is_alive(record) else []

    def status(self) -> ComponentStatus:
        """Report pid and one health probe (or why the server is skipped)."""
        skipped = self.skipped_because()
        if skipped is not None and not self.pids():
            return ComponentStatus(name=self.name, url=self.url(), pid=None, healthy=True,
                                   managed=True, details={"skipped": skipped})  # fmt: skip
        pids = self.pids()
        return ComponentStatus(
            name=self.name,
            url=self.url(),
            pid=pids[0] if pids else None,
            healthy=bool(pids) and self.healthy(),
            managed=True,
            details=self.details(),
        )
