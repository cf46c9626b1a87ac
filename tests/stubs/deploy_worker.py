"""A bot4 worker on a given task queue, as its own process (tests kill it with SIGKILL).

``python -m tests.stubs.deploy_worker TASK_QUEUE``: the settings come from the
environment (``settings_env``), as for ``bot4 worker``; only the queue is the test's own,
so the session's other workers never take its tasks.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bot4.settings import Settings
from workflows.worker import run_worker


async def main(task_queue: str) -> None:
    """Run the worker until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("worker starting", flush=True)
    await run_worker(Settings(), stop=stop, task_queue=task_queue)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
