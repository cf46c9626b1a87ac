"""Process and file chores under :mod:`infra.postgres.cluster`: the parts that know Linux.

A private event loop for one SQL question from a worker thread, the ``standby.signal``
fence, the children of a postmaster, and the stale lock files a killed server leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import structlog

from infra.stack.pg_node import PgNode
from infra.stack.process import process_start_ticks

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

DRIVER_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # raised by a connection that died mid-statement
)


def run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on a private event loop (never touches the thread's current one).

    Callers run in a worker thread (``asyncio.to_thread``); a thread with a running loop
    cannot use this.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def write_signal(data_dir: Path) -> None:
    """Create ``standby.signal`` owned like the data directory (the server must read it)."""
    path = data_dir / "standby.signal"
    path.touch()
    owner = data_dir.stat()
    os.chown(path, owner.st_uid, owner.st_gid)
    path.chmod(0o600)


def child_pids(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def clear_stale_locks(node: PgNode) -> None:
    """Remove the lock files of a dead server when nothing uses its memory any more.

    PostgreSQL ignores a lock file whose pid is gone, but takes an unreaped zombie (a
    killed postmaster that its new parent, init, has not reaped yet) for a live server
    and refuses to start. Same checks as its own, zombie-aware: the pid does not run and
    no process is attached to its shared memory (an orphaned backend still writing).
    The socket's lock file lives outside the data directory, with the same pid.
    """
    lock = node.data_dir / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
        pid = int(lines[0])
        shmid = int(lines[6].split()[1]) if len(lines) > 6 else None
    except (FileNotFoundError, IndexError, ValueError):
        return
    if process_start_ticks(pid) is not None or (shmid is not None and attached(shmid)):
        return
    socket_lock = node.socket_dir / f".s.PGSQL.{node.port}.lock"
    with contextlib.suppress(FileNotFoundError, IndexError, ValueError):
        if int(socket_lock.read_text().splitlines()[0]) == pid:
            socket_lock.unlink()
    lock.unlink(missing_ok=True)
    log.info("cluster_stale_lock_removed", node=node.name, pid=pid)


def attached(shmid: int) -> bool:
    """Tell whether a process is attached to the System V shared memory ``shmid``."""
    for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1]) == shmid:
            return int(fields[6]) > 0
    return False
