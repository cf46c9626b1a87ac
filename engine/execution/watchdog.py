"""Staleness watchdog: a stream with no message for too long is reported stale.

Each stream registers its own limit (a book diff stream at 100 ms can be called stale
after a few seconds; a quiet symbol's trade stream only much later). The feeds touch
their stream on every message; :meth:`StreamWatchdog.run` checks periodically, logs and
counts each transition to stale, and calls back so the owner can mark its data unusable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from engine.execution import metrics
from engine.execution.clock import Clock

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Stream:
    stale_after_s: float
    last_message: float
    stale: bool = False


class StreamWatchdog:
    """Tracks when each stream last delivered a message.

    Args:
        venue: label for metrics and logs.
        clock: time source.
        on_change: called with ``(stream, stale)`` on every transition.
    """

    def __init__(
        self,
        *,
        venue: str,
        clock: Clock,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._venue = venue
        self._clock = clock
        self._on_change = on_change
        self._streams: dict[str, _Stream] = {}

    def register(self, stream: str, *, stale_after_s: float) -> None:
        """Watch ``stream``; it counts as fresh from now."""
        if stale_after_s <= 0:
            raise ValueError(f"{stream}: stale_after_s must be > 0 (got {stale_after_s})")
        self._streams[stream] = _Stream(stale_after_s, self._clock.monotonic())

    def touch(self, stream: str) -> None:
        """Record a message on ``stream`` (a stale stream becomes fresh)."""
        entry = self._streams.get(stream)
        if entry is None:
            return
        entry.last_message = self._clock.monotonic()
        if entry.stale:
            entry.stale = False
            log.info("stream_fresh", venue=self._venue, stream=stream)
            self._notify(stream, stale=False)

    def is_stale(self, stream: str) -> bool:
        """Tell whether ``stream`` is stale as of the last :meth:`check`."""
        entry = self._streams.get(stream)
        return entry is not None and entry.stale

    def check(self) -> list[str]:
        """Mark streams silent past their limit as stale; return the newly stale ones."""
        now = self._clock.monotonic()
        newly: list[str] = []
        for stream, entry in self._streams.items():
            silent = now - entry.last_message
            if not entry.stale and silent > entry.stale_after_s:
                entry.stale = True
                newly.append(stream)
                metrics.STREAM_STALE.labels(venue=self._venue, stream=stream).inc()
                log.warning(
                    "stream_stale", venue=self._venue, stream=stream, silent_s=round(silent, 3)
                )
                self._notify(stream, stale=True)
        return newly

    async def run(self, *, interval_s: float = 0.5) -> None:
        """Check every ``interval_s`` until cancelled."""
        while True:
            self.check()
            await self._clock.sleep(interval_s)

    def _notify(self, stream: str, *, stale: bool) -> None:
        if self._on_change is not None:
            self._on_change(stream, stale)
