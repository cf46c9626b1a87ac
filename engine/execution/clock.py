"""The adapter's clock: the one place that reads wall-clock and monotonic time.

Everything in ``engine/execution`` takes a :class:`Clock`, so tests drive time instead of
waiting for it (a fake clock whose ``sleep`` advances time at once).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Time source and sleeper."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards (for durations)."""
        ...

    def time_ns(self) -> int:
        """Return UNIX time in nanoseconds (for record timestamps and time windows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def time_ns(self) -> int:
        """Return ``time.time_ns()``."""
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        """Sleep with asyncio (never blocks the loop)."""
        await asyncio.sleep(max(0.0, seconds))
