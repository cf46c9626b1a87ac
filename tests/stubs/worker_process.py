"""The whole bot4 Temporal worker as its own process, so a test can SIGKILL it.

Runs ``python -m tests.stubs.deploy_worker TASK_QUEUE`` (every workflow and activity of
the registry, settings from the environment) with its output appended to a log file.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import suppress
from pathlib import Path

from bot4.settings import Settings
from tests.stubs.stack import settings_env


class WorkerProcess:
    """One worker process on ``task_queue`` with ``env``; started again after a kill."""

    def __init__(self, env: dict[str, str], task_queue: str, log: Path) -> None:
        self.env = env
        self.task_queue = task_queue
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @classmethod
    def of_settings(cls, settings: Settings, task_queue: str, log: Path) -> WorkerProcess:
        """Return a worker with ``settings`` (as its environment) on ``task_queue``."""
        return cls(settings_env(settings), task_queue, log)

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.stubs.deploy_worker", self.task_queue,
                env=self.env, stdout=out, stderr=out,
            )  # fmt: skip

    async def kill(self) -> None:
        """SIGKILL: no graceful shutdown, running activities cut midway."""
        if self.process is not None and self.process.returncode is None:
            with suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (the worker drains within its graceful shutdown), SIGKILL after 30 s."""
        if self.process is None or self.process.returncode is not None:
            return
        with suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()
