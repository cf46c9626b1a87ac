"""What the engine saw of its journal: outages (RTO) and acknowledged records (RPO).

A database failover is measured from the engine's own view, not assumed:

- **RTO**: :class:`OutageLog` opens an outage at the first failed write while none was
  failing and closes it at the next successful one. The duration is measured on a
  monotonic clock; start and end are reported in epoch seconds (wall clock).
- **RPO**: :class:`AckLog` keeps, in a bounded ring, the id of every event and the key of
  every fill whose commit the engine acknowledged to a producer, with the wall time of the
  acknowledgement. After a promotion, whatever was acknowledged since the switchover
  began is looked up on the new primary: what is missing there was lost.

The engine keeps one of each for its lifetime and hands them to each leadership's
:class:`~engine.journal.committer.GroupCommitter`. An outage longer than the lease TTL
also makes the engine step down (it cannot renew), and a committer per leadership
would then forget what it acknowledged before, and never close the outage.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Final

from engine.journal.models import FillRecord, JournalEvent

FillKey = tuple[str, str, str, str]
"""A fill's key in the journal: ``(venue, symbol, trade_id, side)``."""

OUTAGES_KEPT: Final = 20
ACKS_KEPT: Final = 200_000
ERROR_TEXT_MAX: Final = 300


@dataclass(frozen=True, kw_only=True, slots=True)
class Outage:
    """One stretch of failing journal writes, as the engine saw it.

    Attributes:
        started_at: epoch seconds of the first failed attempt.
        ended_at: epoch seconds of the first successful write after it (None: still on).
        seconds: monotonic duration, first failure to first success (so far, when on).
        failed_attempts: attempts that failed during it.
        last_error: the last failure, ``Type: message`` (at most 300 characters).
    """

    started_at: float
    ended_at: float | None
    seconds: float
    failed_attempts: int
    last_error: str

    def as_json(self) -> dict[str, object]:
        """Return the outage as a JSON-ready dict (the field names above)."""
        return asdict(self)


@dataclass(kw_only=True, slots=True)
class _Open:
    started_at: float
    started_mono: float
    failed_attempts: int
    last_error: str


class OutageLog:
    """The last outages of the journal, and the one in progress.

    Written on the engine's loop (by the committer); read from the control server's
    thread too, hence the lock (taken only when an outage opens, grows or closes: a
    success with nothing failing costs one attribute read).

    Args:
        keep: closed outages kept (the oldest is forgotten first).
        wall: epoch-seconds clock of ``started_at`` / ``ended_at``.
        monotonic: clock of the duration.
    """

    def __init__(
        self,
        *,
        keep: int = OUTAGES_KEPT,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1 (got {keep})")
        self._wall = wall
        self._monotonic = monotonic
        self._closed: deque[Outage] = deque(maxlen=keep)
        self._open: _Open | None = None
        self._lock = threading.Lock()

    @property
    def failing_since(self) -> float | None:
        """Return the epoch seconds the outage in progress began (None: writes succeed)."""
        current = self._open
        return None if current is None else current.started_at

    def failed(self, error: str) -> None:
        """Count a failed write attempt: opens an outage unless one is in progress."""
        error = error[:ERROR_TEXT_MAX]
        with self._lock:
            current = self._open
            if current is None:
                self._open = _Open(started_at=self._wall(), started_mono=self._monotonic(),
                                   failed_attempts=1, last_error=error)  # fmt: skip
            else:
                current.failed_attempts += 1
                current.last_error = error

    def succeeded(self) -> Outage | None:
        """Count a successful write: closes the outage in progress and returns it."""
        if self._open is None:  # the hot path: nothing was failing
            return None
        with self._lock:
            current, self._open = self._open, None
            if current is None:
                return None
            outage = Outage(
                started_at=current.started_at,
                ended_at=self._wall(),
                seconds=self._monotonic() - current.started_mono,
                failed_attempts=current.failed_attempts,
                last_error=current.last_error,
            )
            self._closed.append(outage)
        return outage

    def recent(self, most: int = OUTAGES_KEPT + 1) -> list[Outage]:
        """Return up to ``most`` latest outages, oldest first, the one in progress last."""
        with self._lock:
            outages = list(self._closed)
            current = self._open
            if current is not None:
                outages.append(Outage(
                    started_at=current.started_at, ended_at=None,
                    seconds=self._monotonic() - current.started_mono,
                    failed_attempts=current.failed_attempts, last_error=current.last_error,
                ))  # fmt: skip
        return outages[-most:] if most > 0 else []


@dataclass(frozen=True, kw_only=True, slots=True)
class Acknowledged:
    """What the journal acknowledged from some time on (see :meth:`AckLog.since`).

    Attributes:
        event_ids: ids of the events, in acknowledgement order.
        fills: keys of the fills, in acknowledgement order.
        truncated: the ring had already let go of acknowledgements at or after that
            time: the lists are incomplete (ask with a later time, or keep more).
    """

    event_ids: list[uuid.UUID]
    fills: list[FillKey]
    truncated: bool


class AckLog:
    """A bounded ring of what the journal acknowledged: ``(ack time, event id | fill key)``.

    Appended by the committer on the engine's loop right before it wakes a batch's
    producers; read on that loop too (an admin call), so it takes no lock. Only ids and
    keys are kept, never bodies: about 165 bytes an entry, ~33 MB when full at 200,000.

    Args:
        maxlen: entries kept; the oldest go first.
        wall: epoch-seconds clock of the acknowledgement times.
    """

    def __init__(self, *, maxlen: int = ACKS_KEPT, wall: Callable[[], float] = time.time) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1 (got {maxlen})")
        self._wall = wall
        self._ring: deque[tuple[float, uuid.UUID | FillKey]] = deque(maxlen=maxlen)
        self._dropped_until = float("-inf")  # ack time of the newest entry let go
        self.total = 0

    def acknowledged(self, events: Sequence[JournalEvent], fills: Sequence[FillRecord]) -> None:
        """Remember a committed batch (all its entries share one acknowledgement time)."""
        now = self._wall()
        ring = self._ring
        count = len(events) + len(fills)
        overflow = len(ring) + count - (ring.maxlen or 0)
        if overflow > 0:
            # entries are in ack order: the newest one pushed out is the overflow-th
            self._dropped_until = ring[overflow - 1][0] if overflow <= len(ring) else now
        ring.extend([(now, e.event_id) for e in events])
        if fills:
            ring.extend([(now, (f.venue, f.symbol, f.trade_id, f.side)) for f in fills])
        self.total += count

    def since(self, at: float) -> Acknowledged:
        """Return what was acknowledged at or after ``at`` (epoch seconds).

        Scans from the newest entry back and stops at the first one older than ``at``:
        the cost is the size of the answer. A wall clock stepped back in between could
        end the scan early; a failover is measured over seconds, not across such a step.
        """
        event_ids: list[uuid.UUID] = []
        fills: list[FillKey] = []
        for acked_at, key in reversed(self._ring):
            if acked_at < at:
                break
            if isinstance(key, uuid.UUID):
                event_ids.append(key)
            else:
                fills.append(key)
        event_ids.reverse()
        fills.reverse()
        return Acknowledged(event_ids=event_ids, fills=fills, truncated=self._dropped_until >= at)
