"""The journal against real PostgreSQL: atomic, idempotent, fenced, append-only.

Also what a failover is measured by: outages caused by real failures (a lock holding
writes past the journal's timeout) and the ids the committer acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import asyncpg
import pytest

from engine.journal import (
    AckLog,
    FencedError,
    FillRecord,
    GroupCommitter,
    Journal,
    JournalEvent,
    JournalKind,
    JournalUnavailableError,
    OutageLog,
)
from engine.journal.writer import AppendResult, StagedBatch
from engine.leadership import Lease


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=8) as created:
        yield created


async def leader(pool: asyncpg.Pool, instance: str = "blue") -> int:
    epoch = await Lease(pool, instance=instance, ttl_s=60).try_acquire()
    assert epoch is not None
    return epoch


def fill(
    trade_id: str, qty: str = "0.5", symbol: str = "BTC/USDT", side: Literal["buy", "sell"] = "buy"
) -> FillRecord:
    return FillRecord(
        venue="binance",
        trade_id=trade_id,
        client_order_id="blue-1-7",
        symbol=symbol,
        side=side,
        price=Decimal("60000.01"),
        qty=Decimal(qty),
        fee=Decimal("0.0005"),
        fee_asset="BTC",
        traded_at=datetime(2026, 11, 25, tzinfo=UTC),
    )


async def test_retried_batch_records_every_event_and_fill_exactly_once(pool: asyncpg.Pool) -> None:
    epoch = await leader(pool)
    journal = Journal(pool, instance="blue")
    events = [
        JournalEvent(kind=JournalKind.ORDER_NEW, client_order_id=f"blue-1-{i}", body={"i": i})
        for i in range(50)
    ]
    fills = [fill("t1"), fill("t2")]
    first = await journal.append(events, fills, epoch=epoch)
    again = await journal.append(events, fills, epoch=epoch)  # an unknown-outcome retry
    assert (first.events_added, first.fills_added) == (50, 2)
    assert (again.events_added, again.fills_added) == (0, 0)
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 50
    assert await pool.fetchval("SELECT count(*) FROM fills") == 2
    body = await pool.fetchval("SELECT body FROM journal_events WHERE client_order_id = 'blue-1-7'")
    assert json.loads(body) == {"i": 7}


async def test_the_same_venue_fill_from_two_paths_is_recorded_once(pool: asyncpg.Pool) -> None:
    epoch = await leader(pool)
    journal = Journal(pool, instance="blue")
    await journal.append([], [fill("t9")], epoch=epoch)  # from the websocket
    added = await journal.append([], [fill("t9")], epoch=epoch)  # from REST polling
    assert added.fills_added == 0


async def test_the_same_trade_id_on_two_symbols_is_two_fills(pool: asyncpg.Pool) -> None:
    # Binance numbers trades per symbol: BTCUSDT trade 31 and ETHUSDT trade 31 both exist
    epoch = await leader(pool)
    journal = Journal(pool, instance="blue")
    result = await journal.append([], [fill("31"), fill("31", symbol="ETH/USDT")], epoch=epoch)
    assert result.fills_added == 2
    again = await journal.append([], [fill("31", symbol="ETH/USDT")], epoch=epoch)
    assert again.fills_added == 0


async def test_both_sides_of_a_self_trade_are_two_fills(pool: asyncpg.Pool) -> None:
    # our buy met our own sell: myTrades lists trade 77 twice, as buyer and as seller
    epoch = await leader(pool)
    journal = Journal(pool, instance="blue")
    result = await journal.append([], [fill("77"), fill("77", side="sell")], epoch=epoch)
    assert result.fills_added == 2
    again = await journal.append([], [fill("77", side="sell")], epoch=epoch)
    assert again.fills_added == 0
    net = await pool.fetchval(
        "SELECT sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) FROM fills"
    )
    assert net == 0  # the position did not move: the journal agrees with the venue


async def test_a_fenced_batch_records_nothing_at_all(pool: asyncpg.Pool) -> None:
    await leader(pool, "blue")
    journal = Journal(pool, instance="blue")
    with pytest.raises(FencedError):
        await journal.append([JournalEvent(kind=JournalKind.ORDER_NEW, body={})], [fill("x")],
                             epoch=99)  # fmt: skip
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM fills") == 0


async def test_journal_is_append_only(pool: asyncpg.Pool) -> None:
    epoch = await leader(pool)
    await Journal(pool, instance="blue").append(
        [JournalEvent(kind=JournalKind.ORDER_NEW, body={})], epoch=epoch
    )
    for statement in ("UPDATE journal_events SET kind = 'x'", "DELETE FROM fills"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await pool.execute(statement)


async def test_group_commit_batches_concurrent_producers(pool: asyncpg.Pool) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch)
    committer.start()
    try:
        await asyncio.gather(
            *(
                committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": i})])
                for i in range(500)
            )
        )
    finally:
        await committer.stop()
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 500
    assert committer.batches < 500  # producers shared transactions


async def test_group_commit_fails_every_waiter_once_fenced(pool: asyncpg.Pool) -> None:
    await leader(pool, "blue")
    committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: 0)
    committer.start()
    try:
        with pytest.raises(FencedError):
            await committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={})])
        with pytest.raises(FencedError):  # and refuses later records at once
            await committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={})])
    finally:
        await committer.stop()


async def test_a_producer_cancelled_mid_wait_does_not_stop_the_committer(
    pool: asyncpg.Pool,
) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch)
    committer.start()
    try:
        async with pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE journal_events IN EXCLUSIVE MODE")
            waiting = asyncio.create_task(
                committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 1})])
            )
            await asyncio.sleep(0.3)  # its batch is being written, blocked on the lock
            waiting.cancel()  # e.g. a timeout around a step-down
            with pytest.raises(asyncio.CancelledError):
                await waiting
        # the writer survives and keeps serving later producers
        await asyncio.wait_for(
            committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 2})]), 5
        )
    finally:
        await asyncio.wait_for(committer.stop(), 5)
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 2  # both durable


# A writer in its own process: takes the lease, commits batches of 100 events, prints
# "acked N" after each commit returns. The test kills it with SIGKILL mid-stream.
WRITER = """
import asyncio, sys
import asyncpg
from engine.journal import Journal, JournalEvent, JournalKind
from engine.leadership import Lease

async def main(dsn):
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        epoch = await Lease(pool, instance="blue", ttl_s=60).try_acquire()
        journal = Journal(pool, instance="blue")
        for batch in range(10_000):
            events = [JournalEvent(kind=JournalKind.ORDER_NEW, body={"batch": batch, "i": i})
                      for i in range(100)]
            await journal.append(events, epoch=epoch)
            print(f"acked {batch}", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def _acks_until_killed(script: str, dsn: str, *, acks: int) -> list[int]:
    """Run a writer ``script`` on ``dsn``; SIGKILL it after ``acks`` "acked N" lines.

    Returns the acknowledged numbers, in the order they were printed.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, dsn, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    acked: list[int] = []
    try:
        while len(acked) < acks:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "writer exited early"
            acked.append(int(line.split()[1]))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    return acked


async def test_kill_9_mid_stream_loses_no_acked_batch_and_leaves_no_partial_one(
    dsn: str, pool: asyncpg.Pool
) -> None:
    acked = await _acks_until_killed(WRITER, dsn, acks=20)
    rows = await pool.fetch(
        "SELECT (body->>'batch')::int AS batch, count(*) AS n FROM journal_events GROUP BY 1"
    )
    per_batch = {r["batch"]: r["n"] for r in rows}
    assert set(acked) <= set(per_batch)  # nothing acknowledged is lost
    assert set(per_batch.values()) == {100}  # every batch whole: none half-written
    assert sorted(per_batch) == list(range(len(per_batch)))  # no hole before the kill


async def test_committer_is_unhealthy_while_a_write_hangs_and_healthy_after(
    pool: asyncpg.Pool,
) -> None:
    """A write blocked by a real lock (a hung database answers nothing, fails nothing)."""
    epoch = await leader(pool, "blue")
    committer = GroupCommitter(
        Journal(pool, instance="blue"), epoch=lambda: epoch, slow_write_s=0.2
    )
    committer.start()
    try:
        assert committer.healthy
        async with pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE journal_events IN ACCESS EXCLUSIVE MODE")
            first = await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_NEW, body={})])
            second = await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_ACKED, body={})])
            await asyncio.sleep(0.1)
            assert committer.healthy  # slow, not yet hung
            await asyncio.sleep(0.25)
            assert not committer.healthy
            assert not first.done()
            assert not second.done()
        await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        assert committer.healthy
        kinds = await pool.fetch("SELECT kind FROM journal_events ORDER BY seq")
        assert [k["kind"] for k in kinds][-2:] == ["order_new", "order_acked"]  # queue order
    finally:
        await committer.stop()


async def test_journal_lag_is_the_age_of_the_oldest_record_not_yet_committed(
    pool: asyncpg.Pool,
) -> None:
    """The record of a write under way counts, not just the queue: a fresh record queued
    behind a hung write must not make the journal look 1 s behind when it is 4 s behind."""
    epoch = await leader(pool, "blue")
    now = [100.0]
    committer = GroupCommitter(
        Journal(pool, instance="blue"), epoch=lambda: epoch, monotonic=lambda: now[0]
    )
    committer.start()
    try:
        assert committer.oldest_wait_s == 0.0
        async with pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE journal_events IN ACCESS EXCLUSIVE MODE")
            first = await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_NEW, body={})])
            await _until(lambda: committer.backlog == 0, what="never taken")  # hung on the lock
            now[0] = 103.0
            second = await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_ACKED, body={})])
            now[0] = 104.0
            assert committer.backlog == 1
            assert committer.oldest_wait_s == 4.0
        await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        assert committer.oldest_wait_s == 0.0
    finally:
        await committer.stop()


class _FailsOnce(Journal):
    """The real journal, but its first write raises an error no class of ours expects.

    A stand-in (the one fake here): no real server produces an unknown client-side error
    on demand; what matters is that the writer task outlives it. The group commit writes
    through ``stage`` (pipelined) or ``append`` (alone): whichever comes first fails.
    """

    failed = False

    def _fail_once(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("an error of the driver nobody listed")

    async def append(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = (), *, epoch: int
    ) -> AppendResult:
        self._fail_once()
        return await super().append(events, fills, epoch=epoch)

    async def stage(
        self, events: Sequence[JournalEvent], fills: Sequence[FillRecord] = (), *, epoch: int
    ) -> StagedBatch:
        self._fail_once()
        return await super().stage(events, fills, epoch=epoch)


async def test_an_unexpected_write_error_is_retried_and_the_writer_lives_on(
    pool: asyncpg.Pool,
) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(_FailsOnce(pool, instance="blue"), epoch=lambda: epoch)
    committer.start()
    try:
        await asyncio.wait_for(
            committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 1})]), 5
        )
        assert committer.retries == 1
        assert committer.healthy
        assert committer.backlog == 0
    finally:
        await asyncio.wait_for(committer.stop(), 5)
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 1


class _LosesFirstCommitAnswer(Journal):
    """The real journal, but the answer to its first COMMIT is lost after it committed.

    A stand-in for a connection cut between the server's commit and its reply, which no
    real server does on demand at a chosen batch. Everything else is real: the commit
    happened, and the batch staged behind it is open on another connection.
    """

    lost = False

    async def commit(self, staged: StagedBatch) -> AppendResult:
        result = await super().commit(staged)
        if not self.lost:
            self.lost = True
            await asyncio.sleep(0.2)  # the next batch is staged meanwhile
            raise JournalUnavailableError("the answer to COMMIT was lost")
        return result


async def test_pipelined_batches_commit_in_queue_order_with_rows_in_seq_order(
    pool: asyncpg.Pool,
) -> None:
    """Overlapping batches, and one whose commit answer is lost: nothing twice, in order."""
    epoch = await leader(pool)
    journal = _LosesFirstCommitAnswer(pool, instance="blue")
    committer = GroupCommitter(journal, epoch=lambda: epoch, max_batch=50)
    committer.start()
    order: list[int] = []
    try:

        async def produce(start: int) -> None:
            for i in range(start, start + 100):
                events = [JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": i})]
                future = await committer.enqueue(events)
                order.append(i)
                future.add_done_callback(lambda f: f.exception())
                await asyncio.sleep(0)

        await asyncio.gather(*(produce(k * 100) for k in range(8)))
        await asyncio.wait_for(committer.stop(), 30)
    finally:
        await committer.stop()
    assert journal.lost  # the lost answer happened, and the batch was written again
    assert committer.retries >= 1
    rows = await pool.fetch("SELECT (body->>'i')::int AS i FROM journal_events ORDER BY seq")
    recorded = [r["i"] for r in rows]
    assert sorted(recorded) == list(range(800))  # every record once: none lost, none twice
    assert recorded == order  # seq order is the order records were queued
    assert committer.overlapped > 0  # batches were written while others committed
    assert committer.rolled_back == 1  # the one staged behind the lost answer, written again


# A group committer in its own process: one producer queues records of 50 events without
# waiting for them, and prints "acked N" when record N is durable. Killed mid-stream.
PIPELINED_WRITER = """
import asyncio, sys
import asyncpg
from engine.journal import GroupCommitter, Journal, JournalEvent, JournalKind
from engine.leadership import Lease

async def main(dsn):
    async with asyncpg.create_pool(dsn, min_size=2, max_size=3) as pool:
        epoch = await Lease(pool, instance="blue", ttl_s=60).try_acquire()
        committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch,
                                   max_batch=200)
        committer.start()
        for record in range(100_000):
            events = [JournalEvent(kind=JournalKind.ORDER_NEW, body={"record": record, "i": i})
                      for i in range(50)]
            done = await committer.enqueue(events)
            done.add_done_callback(lambda f, n=record: print(f"acked {n}", flush=True))
            await asyncio.sleep(0)

asyncio.run(main(sys.argv[1]))
"""


async def test_kill_9_of_a_pipelined_committer_keeps_acked_records_whole_and_in_order(
    dsn: str, pool: asyncpg.Pool
) -> None:
    acked = await _acks_until_killed(PIPELINED_WRITER, dsn, acks=400)
    rows = await pool.fetch(
        "SELECT (body->>'record')::int AS record, count(*) AS n, min(seq) AS first"
        " FROM journal_events GROUP BY 1 ORDER BY 3"
    )
    assert set(acked) <= {r["record"] for r in rows}  # nothing acknowledged is lost
    assert {r["n"] for r in rows} == {50}  # every record whole: none half-written or twice
    # durable records are a prefix of the queue, in seq order: a later record was never
    # committed before an earlier one, even with two batches under way at the kill
    assert [r["record"] for r in rows] == list(range(len(rows)))


async def _until(holds: Callable[[], bool], *, what: str, within_s: float = 5.0) -> None:
    """Poll ``holds`` every 20 ms; fail with ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not holds():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def _until_failing(outages: OutageLog) -> None:
    await _until(lambda: outages.failing_since is not None, what="no write failed")


async def test_an_outage_is_measured_from_the_first_failed_write_to_the_next_success(
    pool: asyncpg.Pool,
) -> None:
    """Writes fail for real: a lock holds them past the journal's 0.2 s timeout."""
    epoch = await leader(pool)
    committer = GroupCommitter(Journal(pool, instance="blue", timeout_s=0.2),
                               epoch=lambda: epoch, max_backoff_s=0.05)  # fmt: skip
    committer.start()
    try:
        await committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 1})])
        assert committer.outages.recent() == []  # a write that succeeds opens nothing
        async with pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE journal_events IN ACCESS EXCLUSIVE MODE")
            locked, wall_locked = time.monotonic(), time.time()
            waiting = asyncio.ensure_future(
                committer.record([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 2})])
            )
            await _until_failing(committer.outages)
            assert committer.failing_since is not None
            assert wall_locked <= committer.failing_since <= time.time()
            await asyncio.sleep(1.0)
            assert not waiting.done()
            unlocked = time.monotonic()
        await asyncio.wait_for(waiting, 10)
    finally:
        await asyncio.wait_for(committer.stop(), 5)
    [outage] = committer.outages.recent()
    assert committer.failing_since is None
    assert outage.ended_at is not None
    assert outage.started_at <= outage.ended_at <= time.time()
    assert outage.failed_attempts >= 2
    assert outage.last_error.startswith("JournalUnavailableError")
    # from the first timeout (0.2 s after the lock) to the write after the unlock (a
    # backoff of at most 0.05 s, a timeout of at most 0.2 s)
    held = unlocked - locked
    assert held - 0.2 - 0.1 <= outage.seconds <= held + 0.5, (held, outage)
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 2


async def test_acknowledged_since_returns_exactly_the_ids_committed_after_it(
    pool: asyncpg.Pool,
) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch)
    committer.start()
    before = [JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": i}) for i in range(5)]
    after = [JournalEvent(kind=JournalKind.ORDER_ACKED, body={"i": i}) for i in range(5)]
    try:
        await committer.record(before, [fill("b1")])
        await asyncio.sleep(0.01)
        since = time.time()
        await asyncio.sleep(0.01)
        await asyncio.gather(
            committer.record(after[:3], [fill("a1")]),
            committer.record(after[3:], [fill("a2", side="sell")]),
        )
        answer = committer.acknowledged_since(since)
        everything = committer.acknowledged_since(0.0)
    finally:
        await committer.stop()
    assert sorted(answer.event_ids) == sorted(e.event_id for e in after)
    assert sorted(answer.fills) == [
        ("binance", "BTC/USDT", "a1", "buy"), ("binance", "BTC/USDT", "a2", "sell"),
    ]  # fmt: skip
    assert answer.truncated is False
    assert everything.event_ids[:5] == [e.event_id for e in before]  # in commit order
    committed = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM journal_events")}
    assert set(everything.event_ids) == committed
    assert committer.acked_total == 13


async def test_acknowledged_since_says_truncated_once_the_ring_let_go_of_newer_ids(
    pool: asyncpg.Pool,
) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch,
                               acks=AckLog(maxlen=6))  # fmt: skip
    committer.start()
    first, second, third = (
        [JournalEvent(kind=JournalKind.ORDER_NEW, body={"batch": b}) for _ in range(n)]
        for b, n in ((1, 4), (2, 4), (3, 3))
    )
    try:
        await committer.record(first)
        await asyncio.sleep(0.01)
        since = time.time()
        await committer.record(second)  # lets two of the first go: older than since
        kept = committer.acknowledged_since(since)
        await committer.record(third)  # lets one of the second go
        cut = committer.acknowledged_since(since)
    finally:
        await committer.stop()
    assert kept.event_ids == [e.event_id for e in second]
    assert kept.truncated is False
    assert cut.event_ids == [e.event_id for e in second[1:] + third]
    assert cut.truncated is True


async def test_outages_and_acks_outlive_a_committer_abandoned_mid_outage(
    pool: asyncpg.Pool,
) -> None:
    """The engine steps down in a long outage and leads again with a new committer."""
    epoch = await leader(pool)
    outages, acks = OutageLog(), AckLog()
    first = GroupCommitter(Journal(pool, instance="blue", timeout_s=0.2), epoch=lambda: epoch,
                           max_backoff_s=0.05, outages=outages, acks=acks)  # fmt: skip
    first.start()
    acked = JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 1})
    await first.record([acked])
    async with pool.acquire() as blocker, blocker.transaction():
        await blocker.execute("LOCK TABLE journal_events IN ACCESS EXCLUSIVE MODE")
        waiting = await first.enqueue([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 2})])
        await _until_failing(outages)
        first.abandon(JournalUnavailableError("stepped down before the write"))
        # its batch was being written, out of the queue: its producer is told all the same
        with pytest.raises(JournalUnavailableError, match="stepped down"):
            await asyncio.wait_for(waiting, 5)
    assert outages.failing_since is not None  # nothing succeeded yet: still on
    second = GroupCommitter(Journal(pool, instance="blue"), epoch=lambda: epoch,
                            outages=outages, acks=acks)  # fmt: skip
    second.start()
    again = JournalEvent(kind=JournalKind.LEADERSHIP, body={"event": "acquired"})
    try:
        await asyncio.wait_for(second.record([again]), 10)
    finally:
        await second.stop()
    [outage] = outages.recent()
    assert outage.ended_at is not None
    assert outages.failing_since is None
    assert second.acknowledged_since(0.0).event_ids == [acked.event_id, again.event_id]


async def _kill_backend(pool: asyncpg.Pool, connection: asyncpg.pool.PoolConnectionProxy) -> None:
    """Terminate ``connection``'s server process, and wait until asyncpg has seen it go."""
    pid = connection.get_server_pid()
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)

    def gone() -> bool:
        try:
            return bool(connection.is_closed())
        except asyncpg.InterfaceError:  # asyncpg handed it back to its pool (proxy detached)
            return True

    await _until(gone, what="asyncpg never noticed the lost connection")


async def test_a_staged_batch_on_a_connection_the_server_killed_undoes_and_fails_cleanly(
    pool: asyncpg.Pool,
) -> None:
    """The server ends the connections a primary restart ends: nothing of them is left."""
    epoch = await leader(pool)
    journal = Journal(pool, instance="blue")
    undone = await journal.stage([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 1})],
                                 epoch=epoch)  # fmt: skip
    await _kill_backend(pool, undone.connection)
    await journal.rollback(undone)  # nothing to undo but our side of it: no error

    failed = await journal.stage([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 2})],
                                 epoch=epoch)  # fmt: skip
    await _kill_backend(pool, failed.connection)
    with pytest.raises(JournalUnavailableError):  # outcome unknown: the caller writes again
        await journal.commit(failed)

    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 0
    # the pool replaced both connections: the journal writes as before
    await journal.append([JournalEvent(kind=JournalKind.ORDER_NEW, body={"n": 3})], epoch=epoch)
    assert await pool.fetchval("SELECT count(*) FROM journal_events") == 1


async def test_a_pipelined_committer_whose_connections_the_server_keeps_killing_loses_nothing(
    dsn: str, pool: asyncpg.Pool
) -> None:
    """Every 40 ms the server ends the committer's connections, as a primary restart does.

    Batches die while committing and while staged behind a commit. Every record is still
    written once, in queue order, and the committer is healthy when the killing stops.
    """
    epoch = await leader(pool)
    name = "journal-under-fire"
    async with asyncpg.create_pool(
        dsn, min_size=2, max_size=3, server_settings={"application_name": name}
    ) as writers:
        committer = GroupCommitter(Journal(writers, instance="blue"), epoch=lambda: epoch,
                                   max_batch=40, max_backoff_s=0.05)  # fmt: skip
        committer.start()
        order: list[int] = []
        killed = 0

        async def kill_until(done: asyncio.Event) -> None:
            nonlocal killed
            while not done.is_set():
                await asyncio.sleep(0.04)
                killed += await pool.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM pg_stat_activity WHERE application_name = $1", name,
                )  # fmt: skip

        async def produce(start: int) -> list[asyncio.Future[None]]:
            futures = []
            for i in range(start, start + 300):
                futures.append(await committer.enqueue(
                    [JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": i})]
                ))  # fmt: skip
                order.append(i)
                await asyncio.sleep(0.001)
            return futures

        done = asyncio.Event()
        killer = asyncio.create_task(kill_until(done))
        try:
            produced = await asyncio.gather(*(produce(k * 300) for k in range(4)))
            done.set()
            await killer
            await asyncio.wait_for(asyncio.gather(*(f for fs in produced for f in fs)), 30)
            assert committer.healthy, "the committer stayed unhealthy after the kills ended"
        finally:
            done.set()
            await asyncio.wait_for(committer.stop(), 30)
    assert killed >= 10
    assert committer.retries >= 1
    rows = await pool.fetch("SELECT (body->>'i')::int AS i FROM journal_events ORDER BY seq")
    assert [r["i"] for r in rows] == order  # every record once, in the order queued


class _RollbackBug(Journal):
    """The real journal, but undoing a staged batch raises: a defect planted on purpose.

    A stand-in (a bug cannot be produced by a real server): what matters is that a writer
    task dying of one fails its producers at once and says so, instead of leaving them
    waiting and the engine REDUCING with nothing in the log.
    """

    async def commit(self, staged: StagedBatch) -> AppendResult:
        await super().rollback(staged)
        await asyncio.sleep(0.1)  # the next batch is staged meanwhile
        raise JournalUnavailableError("the answer to COMMIT was lost")

    async def rollback(self, staged: StagedBatch) -> None:
        await super().rollback(staged)
        raise RuntimeError("a bug in the undo")


async def test_a_committer_that_dies_of_a_bug_fails_its_producers_and_stays_unhealthy(
    pool: asyncpg.Pool,
) -> None:
    epoch = await leader(pool)
    committer = GroupCommitter(_RollbackBug(pool, instance="blue"), epoch=lambda: epoch,
                               max_batch=1)  # fmt: skip
    committer.start()
    try:
        futures = [
            await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": i})])
            for i in range(5)
        ]
        outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
        # the first was written again after its lost answer; the second was staged behind
        # it when the undo failed; the rest were queued: all told, none left waiting
        assert outcomes[0] is None, outcomes
        for outcome in outcomes[1:]:
            assert isinstance(outcome, JournalUnavailableError), outcomes
            assert "committer died" in str(outcome)
        assert not committer.healthy
        assert committer.died is not None
        assert "RuntimeError: a bug in the undo" in str(committer.died)
        assert committer.backlog == 0  # failed, not left waiting
        with pytest.raises(JournalUnavailableError, match="restart it"):
            await committer.enqueue([JournalEvent(kind=JournalKind.ORDER_NEW, body={"i": 9})])
    finally:
        await asyncio.wait_for(committer.stop(), 5)
