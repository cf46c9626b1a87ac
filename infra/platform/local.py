"""Engines as local processes: ``python -m bot4 engine run`` under ``BOT4_HOME/engines``.

Each color has ``engines/<color>/engine.pid`` (pid + kernel start time, as the stack's
servers: a recycled pid is never taken for our engine) and ``engine.log``. The engine runs
in its own session, so it outlives the worker that started it and stops with its group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from infra.platform.base import (
    Color,
    EngineAlreadyRunningError,
    EngineProcess,
    EngineStopError,
)
from infra.stack.process import (
    PidRecord,
    is_alive,
    read_pid_file,
    spawn,
    stop_process_group,
)

Command = Callable[[Color, Path], list[str]]


def engine_command(color: Color, release_path: Path) -> list[str]:
    """Return the command line of ``bot4 engine run`` with this environment's Python."""
    return [
        sys.executable, "-m", "bot4", "engine", "run",
        "--color", color, "--release", str(release_path),
    ]  # fmt: skip


class LocalPlatform:
    """Start, stop and inspect engine processes on this machine.

    Args:
        home: the state folder (``BOT4_HOME``).
        env: the engines' environment (the caller's ``Settings.to_env()`` over os.environ).
        stop_timeout_s: how long SIGTERM may take before SIGKILL.
        command: builds the command line (tests substitute a stand-in process).
    """

    def __init__(
        self,
        home: Path,
        *,
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 15.0,
        command: Command = engine_command,
    ) -> None:
        self.home = home
        self.env = dict(env if env is not None else os.environ)
        self.stop_timeout_s = stop_timeout_s
        self.command = command

    def folder(self, color: Color) -> Path:
        """Return ``BOT4_HOME/engines/<color>``."""
        return self.home / "engines" / color

    def logs(self, color: Color) -> Path:
        """Return the engine's log file."""
        return self.folder(color) / "engine.log"

    def _pid_file(self, color: Color) -> Path:
        return self.folder(color) / "engine.pid"

    def _record(self, color: Color) -> PidRecord | None:
        return read_pid_file(self._pid_file(color), component=f"engine {color}")

    def start(self, color: Color, release_path: Path, *, standby: bool = False) -> EngineProcess:
        """Start ``color``; refuse when it already runs.

        ``standby`` adds ``--standby``: the engine shadows until ``acquire_leadership``
        (a deploy's new color must never take the lease by itself).

        Raises:
            EngineAlreadyRunningError: ``color`` already runs.
        """
        running = self._record(color)
        if running is not None and is_alive(running):
            raise EngineAlreadyRunningError(
                f"engine {color} already runs (pid {running.pid}); stop it first"
            )
        argv = self.command(color, release_path.absolute())
        if standby:
            argv = [*argv, "--standby"]
        spawn(argv, pid_file=self._pid_file(color), log_file=self.logs(color), env=self.env)
        return self.status(color)

    def stop(self, color: Color) -> bool:
        """SIGTERM the engine's group, SIGKILL after ``stop_timeout_s``.

        Raises:
            EngineStopError: it survived SIGKILL.
        """
        record = self._record(color)
        if record is None:
            return False
        was_running = is_alive(record)
        stop_process_group(record, timeout_s=self.stop_timeout_s)
        if is_alive(record):
            raise EngineStopError(f"engine {color} (pid {record.pid}) survived SIGKILL")
        self._pid_file(color).unlink(missing_ok=True)
        return was_running

    def status(self, color: Color) -> EngineProcess:
        """Return pid and release of ``color`` when it runs."""
        record = self._record(color)
        running = record is not None and is_alive(record)
        release = None
        if record is not None and "--release" in record.argv:
            release = Path(record.argv[record.argv.index("--release") + 1])
        return EngineProcess(
            color=color,
            running=running,
            pid=record.pid if running and record is not None else None,
            release_path=release if running else None,
            log_path=self.logs(color),
        )
