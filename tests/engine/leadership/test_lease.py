"""The trading lease against real PostgreSQL: one leader, epochs that fence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from engine.journal import FencedError, Journal, JournalEvent, JournalKind
from engine.leadership import Lease, LeaseLostError
from infra.stack.launcher import Stack
from tests.stubs.database import scratch_database


@pytest.fixture
async def pool(running_stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with (
        scratch_database(running_stack.settings.db) as dsn,
        asyncpg.create_pool(dsn, min_size=1, max_size=8) as pool,
    ):
        yield pool


def event() -> JournalEvent:
    return JournalEvent(kind=JournalKind.LEADERSHIP, body={"note": "probe"})


async def test_two_contenders_at_once_yield_exactly_one_leader(pool: asyncpg.Pool) -> None:
    contenders = [Lease(pool, instance=f"engine-{i}", ttl_s=30) for i in range(6)]
    epochs = await asyncio.gather(*(c.try_acquire() for c in contenders))
    winners = [c for c, epoch in zip(contenders, epochs, strict=True) if epoch is not None]
    assert len(winners) == 1
    assert epochs.count(1) == 1
    status = await winners[0].status()
    assert (status.holder, status.epoch) == (winners[0].instance, 1)


async def test_takeover_after_expiry_bumps_epoch_and_fences_the_old_leader(
    pool: asyncpg.Pool,
) -> None:
    old = Lease(pool, instance="blue", ttl_s=0.3)
    new = Lease(pool, instance="green", ttl_s=30)
    assert await old.try_acquire() == 1
    assert await new.try_acquire() is None  # not expired yet
    await asyncio.sleep(0.4)
    assert await new.try_acquire() == 2

    with pytest.raises(LeaseLostError):
        await old.renew()
    with pytest.raises(FencedError, match="stale epoch"):
        await Journal(pool, instance="blue").append([event()], epoch=1)
    written = await Journal(pool, instance="green").append([event()], epoch=2)
    assert written.events_added == 1
    assert await pool.fetchval("SELECT count(*) FROM journal_events WHERE epoch = 1") == 0


async def test_renewal_past_expiry_is_safe_while_nobody_took_over(pool: asyncpg.Pool) -> None:
    lease = Lease(pool, instance="blue", ttl_s=0.1)
    assert await lease.try_acquire() == 1
    await asyncio.sleep(0.2)
    await lease.renew()
    assert not (await lease.status()).expired


async def test_release_hands_over_at_once(pool: asyncpg.Pool) -> None:
    blue = Lease(pool, instance="blue", ttl_s=30)
    green = Lease(pool, instance="green", ttl_s=30)
    assert await blue.try_acquire() == 1
    assert await blue.release() is True
    assert await green.try_acquire() == 2
    assert await blue.release() is False


async def test_restart_with_the_same_instance_id_fences_the_previous_life(
    pool: asyncpg.Pool,
) -> None:
    first_life = Lease(pool, instance="blue", ttl_s=30)
    second_life = Lease(pool, instance="blue", ttl_s=30)
    assert await first_life.try_acquire() == 1
    assert await second_life.try_acquire() == 2
    with pytest.raises(FencedError):
        await Journal(pool, instance="blue").append([event()], epoch=1)


async def test_even_hand_written_sql_with_a_stale_epoch_is_refused(pool: asyncpg.Pool) -> None:
    lease = Lease(pool, instance="blue", ttl_s=30)
    await lease.try_acquire()
    with pytest.raises(asyncpg.PostgresError, match="stale epoch") as refused:
        await pool.execute(
            "INSERT INTO journal_events (event_id, epoch, instance, kind, body)"
            " VALUES (gen_random_uuid(), 0, 'blue', 'leadership', '{}')"
        )
    assert refused.value.sqlstate == "BT001"


async def test_local_deadline_is_never_later_than_the_database_expiry(pool: asyncpg.Pool) -> None:
    """``remaining_s`` is what the order manager trusts to send before a commit."""
    lease = Lease(pool, instance="blue", ttl_s=5)
    assert lease.remaining_s() == 0.0  # holds nothing
    assert await lease.try_acquire() == 1
    status = await lease.status()
    db_left = (status.expires_at - await pool.fetchval("SELECT now()")).total_seconds()
    assert 0 < lease.remaining_s() <= db_left
    await lease.renew()
    assert 4 < lease.remaining_s() <= 5
    assert await lease.release()
    assert lease.remaining_s() == 0.0


async def test_local_deadline_is_gone_once_the_lease_is_lost(pool: asyncpg.Pool) -> None:
    old = Lease(pool, instance="blue", ttl_s=0.3)
    assert await old.try_acquire() == 1
    await asyncio.sleep(0.35)
    assert old.remaining_s() == 0.0  # expired locally, before anyone else could take it
    assert await Lease(pool, instance="green", ttl_s=30).try_acquire() == 2
    with pytest.raises(LeaseLostError):
        await old.renew()
    assert old.remaining_s() == 0.0
