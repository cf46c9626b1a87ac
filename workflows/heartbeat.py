"""Heartbeat a short activity while it runs, so a killed worker is noticed in seconds.

Without heartbeats Temporal learns of a dead worker only at the activity's
``start_to_close_timeout``, which must cover the slowest honest attempt (an engine
restarting, a venue's Retry-After). With a background heartbeat and a small
``heartbeat_timeout`` the retry starts a few seconds after the worker died, however long
an honest attempt may take.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Final, ParamSpec, TypeVar

from temporalio import activity

__all__ = ["SHORT_HEARTBEAT_TIMEOUT", "beating", "heartbeating"]

P = ParamSpec("P")
R = TypeVar("R")

BEAT_EVERY_S: Final = 1.0
SHORT_HEARTBEAT_TIMEOUT: Final = timedelta(seconds=5)  # five missed beats: the worker died


@contextlib.asynccontextmanager
async def beating(every_s: float = BEAT_EVERY_S) -> AsyncIterator[None]:
    """Heartbeat every ``every_s`` while the block runs (no-op outside an activity)."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def heartbeating(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an activity method (under ``@activity.defn``) to heartbeat while it runs.

    ``functools.wraps`` keeps the signature and type hints Temporal reads.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        async with beating():
            return await fn(*args, **kwargs)

    return wrapper
