"""Notice the engine's event loop standing still, from the safety thread, and say where.

Everything the engine does runs on one loop: decisions, sends, fill polls, lease
renewals, journal writes. A synchronous call that holds it (a kernel compiled on first
use, a slow parse, a bug) shows only through its symptoms: streams "silent" for 40 s,
timeouts from PostgreSQL and the venue, a takeover that fails, all logged in the same
millisecond once the loop runs again. The cause stayed a guess.

The safety thread probes the loop every 100 ms: a callback posted to it records how long
it waited to run (``bot4_engine_loop_lag_seconds``). When a probe has waited a second,
the loop is stalled: the safety thread logs ``engine_loop_stalled`` with the engine
thread's stack at that moment (what holds the loop), counts it
(``bot4_engine_loop_stalls_total``), and logs ``engine_loop_resumed`` with the length
once the probe runs. ``/status`` shows the count, a stall under way and the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from engine.live import metrics

log = structlog.get_logger(__name__)

PROBE_EVERY_S: Final = 0.1
STALL_AFTER_S: Final = 1.0
STACK_FRAMES: Final = 8  # innermost frames kept: the call holding the loop
OWN_FRAMES: Final = 4  # and bot4's own innermost frames: which of its calls led there
_PROJECT: Final = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, kw_only=True, slots=True)
class Stall:
    """One stall: when it began (wall clock), how long it lasted, what held the loop."""

    began_at: float
    seconds: float | None  # None while it lasts
    where: tuple[str, ...]  # the engine thread's innermost frames, outermost first

    def as_json(self) -> dict[str, object]:
        """Return the stall as ``/status`` shows it."""
        return {
            "began_at": round(self.began_at, 3),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "where": list(self.where),
        }


class LoopWatch:
    """Probes one event loop from another thread; see the module's docstring.

    Args:
        engine_loop: the loop watched.
        stall_after_s: a probe waiting this long is a stall.
        clock: monotonic seconds (both threads read it).
    """

    def __init__(
        self,
        engine_loop: asyncio.AbstractEventLoop,
        *,
        stall_after_s: float = STALL_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine_loop = engine_loop
        self._stall_after_s = stall_after_s
        self._clock = clock
        # written by the engine loop (_answer), read here: single assignments under the GIL
        self._sent_at: float | None = None
        self._answered_lag = 0.0
        self._engine_thread: int | None = None
        self._current: Stall | None = None
        self.stalls = 0
        self.last: Stall | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Probe every :data:`PROBE_EVERY_S` until ``stopping`` is set (on the watcher's loop)."""
        while not stopping.is_set():
            self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), PROBE_EVERY_S)

    def tick(self) -> None:
        """Post a probe, or notice the one outstanding has waited too long."""
        now = self._clock()
        sent = self._sent_at
        if sent is None:
            self._resumed()
            self._sent_at = now
            try:
                self._engine_loop.call_soon_threadsafe(self._answer, now)
            except RuntimeError:  # the engine loop is closed: the process is stopping
                self._sent_at = None
        elif now - sent >= self._stall_after_s and self._current is None:
            self._stalled(now - sent)

    def _answer(self, sent_at: float) -> None:
        """Run on the engine loop: how long the probe waited."""
        lag = self._clock() - sent_at
        self._engine_thread = threading.get_ident()
        self._answered_lag = lag
        metrics.LOOP_LAG.observe(lag)
        self._sent_at = None

    def _stalled(self, waited_s: float) -> None:
        where = self._engine_stack()
        self._current = Stall(began_at=time.time() - waited_s, seconds=None, where=where)
        self.stalls += 1
        metrics.LOOP_STALLS.inc()
        log.warning("engine_loop_stalled", waited_s=round(waited_s, 3), where=list(where))

    def _resumed(self) -> None:
        stall = self._current
        if stall is None:
            return
        self.last = Stall(began_at=stall.began_at, seconds=self._answered_lag, where=stall.where)
        self._current = None
        log.warning("engine_loop_resumed", stalled_s=round(self._answered_lag, 3),
                    where=list(stall.where))  # fmt: skip

    def _engine_stack(self) -> tuple[str, ...]:
        """Return the engine thread's innermost frames as ``folder/file.py:line function``."""
        thread = self._engine_thread
        frame = None if thread is None else sys._current_frames().get(thread)
        if frame is None:  # it never answered a probe yet: its thread is unknown
            return ("unknown: the engine loop has not answered a probe yet",)
        frames = traceback.extract_stack(frame)
        ours = [i for i, f in enumerate(frames) if _is_ours(f.filename)][-OWN_FRAMES:]
        kept = sorted({*ours, *range(max(0, len(frames) - STACK_FRAMES), len(frames))})
        return tuple(
            f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} {f.name}"
            for f in (frames[i] for i in kept)
        )

    def status(self) -> dict[str, object]:
        """Return the stall count, a stall under way and the last one ended."""
        current, sent = self._current, self._sent_at
        now_s = None
        if current is not None and sent is not None:
            now_s = round(self._clock() - sent, 3)
        return {
            "stalls": self.stalls,
            "stalled_for_s": now_s,
            "current": None if current is None else current.as_json(),
            "last": None if self.last is None else self.last.as_json(),
        }


def _is_ours(filename: str) -> bool:
    """Whether a frame's file is bot4's own code (not the standard library or a package)."""
    return filename.startswith(_PROJECT) and "site-packages" not in filename
