"""Group commit: many producers, one writer, one transaction per batch.

Producers ``await record(...)`` and resume when their facts are durable (committed on the
primary and, with ``synchronous_commit = remote_apply``, applied on the standby). Two
batches overlap: the next one is written while the previous one's COMMIT waits, and
commits in queue order. The
queue is bounded, so a stalled journal pushes back instead of growing without limit; a
temporary failure is retried with the very same batch (idempotent by event id), and a
stale epoch fails every waiter with :class:`FencedError` and stops the committer.

It also records what a failover is measured by (:mod:`engine.journal.tracking`): the
outages of the journal as the engine saw them (first failed write to first success), and
the id of every event and the key of every fill it acknowledged, with the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import structlog

from engine.journal.models import FillRecord, JournalEvent
from engine.journal.tracking import AckLog, Acknowledged, OutageLog
from engine.journal.writer import FencedError, Journal, JournalUnavailableError, StagedBatch

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


@dataclass(kw_only=True, slots=True)
class _Pending:
    events: Sequence[JournalEvent]
    fills: Sequence[FillRecord]
    queued_at: float  # monotonic: when the producer handed it over
    done: asyncio.Future[None] = field(default_factory=asyncio.Future)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Batch:
    """Records written in one transaction, and their facts in queue order."""

    pending: list[_Pending]
    events: list[JournalEvent]
    fills: list[FillRecord]

    @classmethod
    def of(cls, pending: list[_Pending]) -> _Batch:
        return cls(
            pending=pending,
            events=[e for p in pending for e in p.events],
            fills=[f for p in pending for f in p.fills],
        )


class GroupCommitter:
    """Batches journal writes from many coroutines into few transactions.

    Args:
        journal: the writer.
        epoch: returns the epoch to write under (the leader's current one).
        max_batch: most events + fills per transaction.
        max_queue: most pending records; ``record`` waits beyond it (backpressure).
        max_backoff_s: ceiling of the full-jitter backoff between retries.
        slow_write_s: a write running longer than this makes the committer unhealthy
            (a hung primary or standby fails nothing, it just never answers).
        monotonic: clock of ``slow_write_s`` and of outage durations.
        wall: epoch-seconds clock of outage starts and ends and of acknowledgements.
        outages: where outages are recorded (the engine passes one that outlives this
            committer; default: a new one on ``wall`` and ``monotonic``).
        acks: where acknowledgements are recorded (likewise; default: a new ring on
            ``wall``).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        epoch: Callable[[], int],
        max_batch: int = 2000,
        max_queue: int = 20_000,
        max_backoff_s: float = 1.0,
        slow_write_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        outages: OutageLog | None = None,
        acks: AckLog | None = None,
    ) -> None:
        self.journal = journal
        self.epoch = epoch
        self.max_batch = max_batch
        self.max_backoff_s = max_backoff_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        # when each queued record was handed to us, in queue order (the head's age says
        # whether the writer keeps up; how many wait says little at a steady trickle)
        self._queued_at: deque[float] = deque()
        self._task: asyncio.Task[None] | None = None
        self._fenced: FencedError | None = None
        self._abandoned: Exception | None = None
        self._died: JournalUnavailableError | None = None  # the writer task failed: a bug
        self._failing = False  # the last attempt failed and is being retried
        # each batch under way (oldest first; at most two overlap): when it was taken, and
        # when its oldest record was handed over
        self._writing: deque[tuple[float, float]] = deque()
        self.slow_write_s = slow_write_s
        self._monotonic = monotonic
        self.outages = OutageLog(wall=wall, monotonic=monotonic) if outages is None else outages
        self.acks = AckLog(wall=wall) if acks is None else acks
        self.retries = 0
        self.batches = 0
        self.overlapped = 0  # batches written while the one ahead was committing
        self.rolled_back = 0  # staged batches undone because the one ahead needed a retry

    @property
    def backlog(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    @property
    def oldest_wait_s(self) -> float:
        """Seconds the oldest record not yet committed has waited (0: every one is).

        The engine lowers its state when this grows: a busy journal always has a few
        fresh records queued behind the write under way, a journal that does not keep up
        has old ones.
        """
        writing = _first(self._writing)
        oldest = writing[1] if writing is not None else _first(self._queued_at)
        return 0.0 if oldest is None else self._monotonic() - oldest

    @property
    def healthy(self) -> bool:
        """Whether records commit promptly: no failing or hung write, short queue, no fence."""
        writing = _first(self._writing)
        return (
            not self._failing
            and self._fenced is None
            and self._died is None
            and self.backlog < self.max_batch
            and (writing is None or self._monotonic() - writing[0] < self.slow_write_s)
        )

    @property
    def died(self) -> JournalUnavailableError | None:
        """Why the writer task died of a bug, which ended all writing (None: it did not)."""
        return self._died

    @property
    def failing_since(self) -> float | None:
        """Return the epoch seconds the journal outage in progress began (None: none)."""
        return self.outages.failing_since

    @property
    def acked_total(self) -> int:
        """Return how many events and fills were acknowledged (into :attr:`acks`)."""
        return self.acks.total

    def acknowledged_since(self, at: float) -> Acknowledged:
        """Return the event ids and fill keys acknowledged at or after ``at`` (epoch s).

        ``truncated`` says the ring had already let go of some of them.
        """
        return self.acks.since(at)

    def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            # a fresh context: an admin call that made us leader must not tag the writer
            self._task = asyncio.create_task(
                self._run(), name="journal-group-commit", context=contextvars.Context()
            )
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Fail fast once the writer task died of a bug, instead of leaving producers waiting.

        Every error of a write is retried inside the task, so this is a defect of ours or
        of the driver: the committer is unhealthy for good (the engine stays REDUCING) and
        every record, queued or later, fails with the reason.
        """
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        self._died = JournalUnavailableError(
            f"the journal committer died ({type(error).__name__}: {error}); nothing more is"
            " written: step this engine down and restart it"
        )
        log.critical("journal_committer_died", error=f"{type(error).__name__}: {error}",
                     exc_info=error)  # fmt: skip
        self._drain(self._died)

    async def stop(self) -> None:
        """Write what is queued, then stop (cancels if the journal stays unreachable)."""
        if self._task is None:
            return
        writing = asyncio.ensure_future(self._queue.join())
        try:
            # a writer that dies meanwhile never finishes its batch: stop waiting for it then
            await asyncio.wait({writing, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writing.cancel()
        self._task.cancel()
        await asyncio.wait({self._task})  # a death of the task was reported by _ended
        self._task = None

    async def record(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = ()
    ) -> None:
        """Queue facts and return once they are committed.

        Raises:
            FencedError: our epoch is stale: nothing of this or any later record is written.
        """
        await (await self.enqueue(events, fills))

    async def enqueue(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = ()
    ) -> asyncio.Future[None]:
        """Queue facts (waiting only while the queue is full); return their commit future.

        Records are committed in the order they were queued, so a fact queued later is
        never durable before one queued earlier. The caller must await the future (or
        consume its exception): it fails like :meth:`record`.

        Raises:
            FencedError: our epoch is stale: nothing of this or any later record is written.
        """
        if self._fenced is not None:
            raise self._fenced
        if self._died is not None:
            raise self._died
        # a wait for room in a full queue counts as waiting too
        pending = _Pending(events=events, fills=fills, queued_at=self._monotonic())
        await self._queue.put(pending)
        self._queued_at.append(pending.queued_at)  # no await since the put: in queue order
        return pending.done

    async def _run(self) -> None:
        # Two batches overlap: while one's COMMIT waits for the disk and the synchronous
        # standby, the next is encoded and written (staged) in a transaction of its own,
        # and committed only once the first is durable. Commits keep the queue's order,
        # and so do the rows' seq numbers: a batch is staged only after the one ahead was
        # written, and when the one ahead needed a retry (its rows written again, later),
        # the staged batch is rolled back and written after it instead.
        committing: asyncio.Task[bool] | None = None
        batch = _Batch.of([])
        staged: StagedBatch | None = None
        try:
            while True:
                batch = await self._take()
                self._writing.append((self._monotonic(), batch.pending[0].queued_at))
                staged = await self._stage(batch)
                if committing is not None:
                    self.overlapped += staged is not None and not committing.done()
                    clean = await committing
                    committing = None
                    if staged is not None and not clean:
                        await self.journal.rollback(staged)
                        self.rolled_back += 1
                        staged = None
                if staged is None:
                    await self._write(batch)  # alone, retried until it succeeds or is fenced
                    self._finished(batch)
                else:
                    committing = asyncio.create_task(self._commit(batch, staged))
                    staged = None
        except BaseException as e:
            # stopped mid-write (abandoned in an outage) or died: the batches are out of
            # the queue, so unless told here their producers would wait for ever
            if committing is not None:
                committing.cancel()
            if staged is not None:
                with contextlib.suppress(Exception):  # what it raised may be why we are here
                    await self.journal.rollback(staged)
            stopped = self._stopped_error()
            if not isinstance(e, asyncio.CancelledError):
                stopped = JournalUnavailableError(f"the journal committer died ({e!r})")
            for pending in batch.pending:
                _settle(pending, stopped)
            raise

    async def _take(self) -> _Batch:
        """Wait for a record, then take what else is queued, up to ``max_batch`` facts."""
        batch = [await self._queue.get()]
        self._queued_at.popleft()
        size = len(batch[0].events) + len(batch[0].fills)
        while size < self.max_batch and not self._queue.empty():
            item = self._next_nowait()
            batch.append(item)
            size += len(item.events) + len(item.fills)
        return _Batch.of(batch)

    async def _stage(self, batch: _Batch) -> StagedBatch | None:
        """Write ``batch`` without committing it; None: write it alone with retries."""
        if self._fenced is not None or self._failing:
            return None  # fenced: _write fails it; failing: no overlap until a write succeeds
        try:
            return await self.journal.stage(batch.events, batch.fills, epoch=self.epoch())
        except FencedError:
            return None  # _write meets the fence again and fails the batch and the queue
        except Exception as e:
            self._failed(e, attempt=1)
            return None

    async def _commit(self, batch: _Batch, staged: StagedBatch) -> bool:
        """Commit a staged batch; True if its first commit succeeded.

        A commit that fails has an unknown outcome: the same batch is written again (the
        rows already there are skipped), and the caller rolls back what it staged behind.
        """
        try:
            try:
                await self.journal.commit(staged)
            except Exception as e:
                self._failed(e, attempt=1)
                await self._write(batch)
                self._finished(batch)
                return False
            self._succeeded(batch)
            self._finished(batch)
            return True
        except asyncio.CancelledError:
            for pending in batch.pending:
                _settle(pending, self._stopped_error())
            raise

    def _stopped_error(self) -> Exception:
        return self._abandoned or JournalUnavailableError(
            "the journal committer stopped during the write (outcome unknown)"
        )

    def _finished(self, batch: _Batch) -> None:
        """Account for a batch whose producers were told how it ended."""
        self._writing.popleft()
        for _ in batch.pending:
            self._queue.task_done()

    async def _write(self, batch: _Batch) -> None:
        """Write and commit ``batch`` on its own, retrying until it succeeds or is fenced."""
        attempt = 0
        while True:
            try:
                await self.journal.append(batch.events, batch.fills, epoch=self.epoch())
            except FencedError as e:
                self._fenced = e
                log.error("journal_fenced", error=str(e),
                          records=len(batch.events) + len(batch.fills))  # fmt: skip
                for pending in batch.pending:
                    _settle(pending, e)
                self._drain(e)
                return
            except Exception as e:
                # anything short of a fence may succeed later (the batch is idempotent);
                # a writer that died here would leave every producer waiting and the
                # engine REDUCING for good, so even an error we do not know is retried
                # (the engine stays REDUCING while it lasts, and says so in the log)
                attempt += 1
                await asyncio.sleep(self._failed(e, attempt=attempt))
                continue
            self._succeeded(batch)
            return

    def _failed(self, error: Exception, *, attempt: int) -> float:
        """Record a failed attempt; return the full-jitter backoff before the next one."""
        self._failing = True
        self.outages.failed(f"{type(error).__name__}: {error}")
        self.retries += 1
        delay = random.uniform(0, min(self.max_backoff_s, 0.05 * 2**attempt))  # noqa: S311
        known = isinstance(error, JournalUnavailableError | asyncpg.PostgresError | OSError)
        (log.warning if known else log.error)(
            "journal_retry", attempt=attempt, delay_s=delay,
            error=f"{type(error).__name__}: {error}",
        )  # fmt: skip
        return delay

    def _succeeded(self, batch: _Batch) -> None:
        self._failing = False
        self.batches += 1
        outage = self.outages.succeeded()
        if outage is not None:
            log.warning("journal_outage_ended", seconds=round(outage.seconds, 3),
                        started_at=outage.started_at,
                        failed_attempts=outage.failed_attempts)  # fmt: skip
        self.acks.acknowledged(batch.events, batch.fills)  # before any producer hears of it
        for pending in batch.pending:
            _settle(pending, None)

    def abandon(self, error: Exception) -> None:
        """Stop at once without writing what is queued; fail its waiters with ``error``.

        For a step-down while the journal is unreachable: the queued facts belong to an
        epoch that is ending, and the next leader's recovery rebuilds them from the venue.
        The batch being written, if any, fails with ``error`` too (its outcome is unknown).
        """
        self._abandoned = error
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._drain(error)

    def _drain(self, error: Exception) -> None:
        """Fail everything still queued: a fenced engine records nothing more."""
        while not self._queue.empty():
            _settle(self._next_nowait(), error)
            self._queue.task_done()

    def _next_nowait(self) -> _Pending:
        """Take the next queued record (the queue must not be empty)."""
        self._queued_at.popleft()
        return self._queue.get_nowait()


def _first(items: deque[_T]) -> _T | None:
    """Return the first item, or None.

    Safe while the loop's thread empties the deque: ``/status`` reads the committer from
    the engine's safety thread.
    """
    try:
        return items[0]
    except IndexError:
        return None


def _settle(pending: _Pending, error: Exception | None) -> None:
    """Tell a waiter how its record ended, unless it stopped waiting (was cancelled).

    A producer cancelled mid-wait (a timeout around a step-down, a cancelled send) leaves
    a cancelled future; setting it would raise and kill the writer task, after which
    every later ``record`` would wait for ever.
    """
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)
