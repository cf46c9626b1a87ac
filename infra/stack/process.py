"""Start, find and stop the long-running server processes of the stack.

A started server gets its own session (process group) so it outlives the command that
started it and can be stopped with everything it forked. Its pid file records the pid and
the kernel's start time of that pid, so a recycled pid is never mistaken for our server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.stack.errors import CorruptStateError, PortTakenError


@dataclass(frozen=True, kw_only=True, slots=True)
class PidRecord:
    """What a pid file says about a server we started."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...]


def process_start_ticks(pid: int) -> int | None:
    """Return the start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A zombie (exited, not reaped) counts as gone; it is reaped when it is our child.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return int(fields[19])


def is_alive(record: PidRecord) -> bool:
    """Tell whether the process recorded in ``record`` still runs (same pid, same start)."""
    return process_start_ticks(record.pid) == record.start_ticks


def read_pid_file(path: Path, *, component: str) -> PidRecord | None:
    """Read a pid file written by :func:`spawn`; None when there is none.

    Raises:
        CorruptStateError: the file exists but is not a pid record.
    """
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        return PidRecord(
            pid=int(data["pid"]), start_ticks=int(data["start_ticks"]), argv=tuple(data["argv"])
        )
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptStateError(
            component,
            f"pid file {path} is unreadable ({e.__class__.__name__})",
            action=f"Check that no {component} server still runs (ps -ef), then delete {path}.",
        ) from e


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
) -> PidRecord:
    """Start ``argv`` detached in its own session, logging to ``log_file``; record its pid.

    posix_spawn rather than Popen: the server outlives this process on purpose, and a
    Popen object would complain when it is collected while the server still runs.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env if env is not None else os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
    ticks = process_start_ticks(pid)
    record = PidRecord(pid=pid, start_ticks=ticks or -1, argv=tuple(argv))
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "argv": list(argv)})
    )
    tmp.replace(pid_file)
    return record


def stop_process_group(record: PidRecord, *, timeout_s: float = 15.0) -> None:
    """Stop the process group led by ``record.pid``: SIGTERM, then SIGKILL after a timeout."""
    if not is_alive(record):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(record) and not _group_has_members(record.pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_has_members(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def port_is_free(host: str, port: int) -> bool:
    """Tell whether nothing listens on ``host:port`` (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, *, component: str, setting: str) -> None:
    """Raise a clear error when ``host:port`` is taken.

    Raises:
        PortTakenError: something already listens there.
    """
    if not port_is_free(host, port):
        raise PortTakenError(
            component,
            f"port {port} on {host} is already taken by another process",
            action=(
                f"Stop whatever listens there (ss -ltnp 'sport = :{port}') or choose another "
                f"port with {setting}=<port>."
            ),
        )
