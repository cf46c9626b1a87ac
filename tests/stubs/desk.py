"""A little desk of real processes for end-to-end tests: API, worker and engine.

A ``bot4 api`` process, a ``bot4 worker`` polling a task queue of the test on the
session's Temporal, and a ``bot4 engine run`` leading on a scratch database against a
simulator of its own: all share one ``BOT4_HOME`` (one log file, as in a stack). Used by
the correlation test and the console's browser tests.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from bot4.settings import Settings
from tests.stubs.api import ServerSecrets, cli_env
from tests.stubs.engine_control import TOKEN
from tests.stubs.ports import free_ports


def desk_settings(
    stack: Settings, home: Path, dsn: str, market: int, blue_port: int, *, queue: str = "desk"
) -> Settings:
    """Return the settings of a test's desk: its home, database, venue, queue and ports.

    The task queue is unique (``<queue>-<random>``): the worker of this desk, and only it,
    runs the runbooks its API starts, and the API lists only this desk's runs.
    """
    secrets = ServerSecrets()
    return stack.model_copy(update={
        "home": home,
        "db": stack.db.model_copy(update={"dsn": SecretStr(dsn)}),
        "temporal": stack.temporal.model_copy(
            update={"task_queue": f"{queue}-{uuid.uuid4().hex[:8]}"}),
        "exchange": stack.exchange.model_copy(update={"port": market}),
        "engine": stack.engine.model_copy(update={
            "blue_control_port": blue_port, "green_control_port": free_ports(1)[0],
            "control_token": SecretStr(TOKEN)}),
        "worker": stack.worker.model_copy(update={"metrics_port": free_ports(1)[0]}),
        "api": stack.api.model_copy(update={
            "port": free_ports(1)[0], "audit_key": SecretStr(secrets.audit_key)}),
    })  # fmt: skip


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``bot4 worker`` with ``settings`` (output to ``<home>/worker-process.out``)."""
    with (settings.home / "worker-process.out").open("ab") as output:
        return subprocess.Popen([sys.executable, "-m", "bot4", "worker"], env=cli_env(settings),
                                stdout=output, stderr=subprocess.STDOUT)  # fmt: skip


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
    """Stop a process with SIGTERM, then SIGKILL if it does not end within ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """Run a ``bot4 worker`` for the block; stop it afterwards."""
    process = start_worker(settings)
    try:
        yield process
    finally:
        stop_process(process)
