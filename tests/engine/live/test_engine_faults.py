"""Whole engines under faults: a failing venue, lost order answers, a restarted journal.

Each test runs ``bot4 engine run`` as a subprocess (``tests.stubs.engine_process``)
against real PostgreSQL and the simulator with a live market, injects a fault while the
engine trades, and checks what an operator would: the trading state on ``/status``, and
afterwards the venue against the journal (no client id twice, nothing of ours left open,
every venue fill journaled exactly once). Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from engine.leadership import Lease
from engine.live.gate import LEADERSHIP_START_CONDITION
from tests.engine.live.harness import SYMBOLS, clear_faults, open_venue, set_fault, venue_client_ids
from tests.stubs.desk_checks import (
    assert_venue_matches_journal,
    journal_count,
    leader,
    trading,
    until,
)
from tests.stubs.desk_fixtures import market, release
from tests.stubs.engine_control import TOKEN
from tests.stubs.engine_process import EngineProcess
from tests.stubs.pg_pair import OwnPair, own_pair

__all__ = ["market", "release"]  # shared fixtures

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RESOLVED = ("order_acked", "order_filled", "order_canceled", "order_rejected")


def reducing_for_venue(status: dict[str, Any]) -> bool:
    return bool(status["trading_state"] == "REDUCING" and "venue" in status["conditions"])


def active(status: dict[str, Any]) -> bool:
    return bool(status["trading_state"] == "ACTIVE" and status["conditions"] == {})


async def unresolved_unknowns(pool: asyncpg.Pool) -> list[str]:
    """Client ids journaled ORDER_UNKNOWN with no later acked/filled/canceled/rejected."""
    rows = await pool.fetch(
        """
        SELECT u.client_order_id FROM journal_events u
         WHERE u.kind = 'order_unknown'
           AND NOT EXISTS (SELECT 1 FROM journal_events r
                            WHERE r.client_order_id = u.client_order_id
                              AND r.kind = ANY($1::text[]) AND r.seq > u.seq)
        """,
        list(RESOLVED),
    )
    return [r["client_order_id"] for r in rows]


async def test_venue_errors_lower_trading_state_until_the_breakers_close(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    async with _blue(dsn, market, release, tmp_path) as (engine, pool, venue):
        await engine.wait_for(leader, within=60, what="leader")
        await until(lambda: _sent(pool, 5), within=30)
        await engine.wait_for(active, within=5, what="ACTIVE before the fault")

        await set_fault(market, "error_rate", share=1.0)  # every REST call answers 503
        down = await engine.wait_for(reducing_for_venue, within=8, what="REDUCING for venue")
        assert down["role"] == "leader"
        # a condition that clears by itself, not a lowering of the gate (an operator's)
        assert down["gate"] == "ACTIVE", down["gate_changes"]
        await asyncio.sleep(2)  # sends and polls keep failing (fast, on the open breaker)
        await clear_faults(market)

        # the breakers close on their own after their cool-down (10 s) and a good probe
        cleared_at = time.monotonic()
        await engine.wait_for(active, within=20, what="ACTIVE after the fault")
        assert time.monotonic() - cleared_at < 20
        acked = await journal_count(pool, "order_acked")
        await until(lambda: _count_above(pool, "order_acked", acked), within=10)
        assert await journal_count(pool, "order_acked") > acked, engine.tail()  # trading again
        assert await engine.terminate() == 0, engine.tail()
        await assert_venue_matches_journal(venue, pool)
        assert await unresolved_unknowns(pool) == []


async def test_a_takeover_that_fails_to_start_holds_reducing_only_until_one_starts(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    other: Lease | None = None

    async def hold_the_lease(pool: asyncpg.Pool) -> None:  # blue waits as a standby meanwhile
        nonlocal other
        other = Lease(pool, instance="other", ttl_s=60)
        assert await other.try_acquire() == 1

    async with _blue(dsn, market, release, tmp_path, before_start=hold_the_lease) as (
        engine, pool, venue
    ):  # fmt: skip
        assert other is not None
        await engine.wait_for(lambda s: s["role"] == "standby", within=60, what="standby")
        # the first leader of an empty journal records the venue's balances as its
        # baseline: with every REST call failing, that takeover cannot start
        await set_fault(market, "error_rate", share=1.0)
        assert await other.release()
        failed = await engine.wait_for(
            lambda s: LEADERSHIP_START_CONDITION in s["conditions"], within=60,
            what="the leadership_start hold",
        )  # fmt: skip
        assert failed["trading_state"] == "REDUCING"
        assert failed["gate"] == "ACTIVE", failed["gate_changes"]  # a hold, not a lowering
        assert "leadership_start_failed" in engine.tail()

        await clear_faults(market)  # the next takeover starts once the breakers close
        led = await engine.wait_for(lambda s: s["role"] == "leader" and active(s), within=60,
                                    what="leader and ACTIVE without an operator")  # fmt: skip
        assert led["epoch"] > 2  # the failed takeover's epoch (2), then at least one more
        assert led["recovery_ok"] is True
        await until(lambda: _sent(pool, 3), within=30)  # and it trades
        assert await engine.terminate() == 0, engine.tail()
        await assert_venue_matches_journal(venue, pool)


async def test_lost_order_answers_end_neither_lost_nor_duplicated(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    async with _blue(dsn, market, release, tmp_path) as (engine, pool, venue):
        await engine.wait_for(leader, within=60, what="leader")
        await until(lambda: _sent(pool, 5), within=30)

        # every order placed in the next 3 s stands at the venue but its answer is lost
        await set_fault(market, "lost_answer", count=1_000_000)
        await until(lambda: _count_above(pool, "order_unknown", 2), within=3)
        await asyncio.sleep(max(0.0, 3 - 0.3))
        await clear_faults(market)
        unknown = await journal_count(pool, "order_unknown")
        assert unknown >= 1, engine.tail()
        # the engine resolves them by client id (found: acked or filled) and trades on
        await until(lambda: _no_unresolved(pool), within=20)
        assert await engine.terminate() == 0, engine.tail()

        await assert_venue_matches_journal(venue, pool)
        assert await unresolved_unknowns(pool) == []
        placed = await pool.fetch(
            "SELECT DISTINCT client_order_id FROM journal_events WHERE kind = 'order_unknown'"
        )
        at_venue = {c for s in SYMBOLS for c in await venue_client_ids(venue, s)}
        # a lost answer is not a lost order: the venue has each of them, exactly once
        assert {r["client_order_id"] for r in placed} <= at_venue


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPair]:
    """A pair of this test alone (the session's PostgreSQL is shared: never restart it)."""
    async with own_pair() as pair:
        yield pair


@pytest.mark.parametrize(
    "down_s",
    [
        pytest.param(0.0, id="quick"),
        # once an xfail ("a venue fill the journal lacks"): the cause was the second side
        # of a self-trade, dropped as a duplicate trade id (fixed by migration 0005)
        pytest.param(3.0, id="past_the_lease_ttl"),
    ],
)  # fmt: skip
async def test_journal_primary_restart_loses_no_acknowledged_event(
    own_postgres: OwnPair, market: int, release: Path, tmp_path: Path, down_s: float
) -> None:
    url = own_postgres.dsn
    venue = await open_venue(market)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    engine = await EngineProcess(tmp_path, url, market, release, color="blue",
                                 instance="blue").start()  # fmt: skip
    try:
        first = await engine.wait_for(leader, within=60, what="leader")
        await until(lambda: trading(pool), within=30)
        # committed, so acknowledged to the engine: none of these may go missing
        before = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM journal_events")}
        fills_before = await fill_keys(pool)
        last_seq = int(await pool.fetchval("SELECT max(seq) FROM journal_events"))
        assert await trading(pool), engine.tail()
        await pool.close()

        seen: list[dict[str, Any]] = []
        watcher = asyncio.create_task(_watch(engine, seen))
        took = await own_postgres.restart_primary(down_s=down_s)

        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        # the engine keeps running and trades again: new orders journaled after the restart
        await until(lambda: _sent_since(pool, last_seq, 5), within=25)
        watcher.cancel()
        path = [(s["role"], s["epoch"], s["trading_state"], s["conditions"]) for s in seen]
        assert await _sent_since(pool, last_seq, 5), f"outage {took:.1f}s {path}" + engine.tail()
        status = await engine.wait_for(leader, within=10, what="leader after the restart")
        if down_s > 2.0:  # past the lease TTL: it noticed (stepped down or lowered the state)
            assert any(s["role"] != "leader" or s["trading_state"] != "ACTIVE" for s in seen), path
        after = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM journal_events")}
        assert before - after == set()
        assert fills_before - await fill_keys(pool) == set()
        assert await engine.terminate() == 0, engine.tail()

        await assert_venue_matches_journal(venue, pool)
        # stepping down and re-acquiring (epoch + 1) is fine; two leaders at once is not:
        # every epoch was acquired once, and every order was sent under the epoch in its id
        # (an order adopted by a later epoch's recovery is journaled under that epoch)
        acquired = [int(r["epoch"]) for r in await pool.fetch(
            "SELECT epoch FROM journal_events WHERE kind = 'leadership'"
            " AND body->>'event' = 'acquired' ORDER BY seq")]  # fmt: skip
        assert acquired == sorted(set(acquired)), acquired
        assert acquired[0] == first["epoch"]
        assert acquired[-1] == status["epoch"]
        mismatched = await pool.fetch(
            "SELECT client_order_id, epoch FROM journal_events WHERE kind = 'order_new'"
            " AND split_part(client_order_id, '-', 2)::bigint <> epoch"
            " AND body->>'adopted' IS NULL"
        )
        assert mismatched == []
    finally:
        await engine.terminate()
        await pool.close()
        await venue.close()


async def test_a_release_outlasting_its_control_call_still_finishes_the_step_down(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    # a long TTL: a lease the step-down failed to release would stay held through the test
    quick_calls = {"BOT4_ENGINE__ADMIN_CALL_TIMEOUT_S": "1"}
    async with _blue(dsn, market, release, tmp_path, lease_ttl=60.0, env=quick_calls) as (
        engine, pool, venue
    ):  # fmt: skip
        await engine.wait_for(leader, within=60, what="leader")
        await until(lambda: _sent(pool, 5), within=30)
        # every REST answer takes 1.5 s: even the shortest step-down (list open orders, poll
        # fills) outlasts the control call's 1 s wait, the longest stays within the 15 s
        # budget: a venue that slows down during a handoff
        await set_fault(market, "latency", ms=1500)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{engine.url}/admin/release_leadership", headers=AUTH,
                      json={"reason": "test"}, timeout=aiohttp.ClientTimeout(total=30)) as answer,
        ):  # fmt: skip
            assert answer.status == 503, await answer.text()  # the caller gave up waiting

        async def released() -> bool:
            return await pool.fetchval("SELECT holder FROM engine_leases") is None

        await until(released, within=30)  # ... and the step-down went on to the end
        assert await released(), engine.tail()
        await clear_faults(market)
        status = await engine.wait_for(lambda s: s["role"] == "standby", within=5, what="standby")
        assert status["orders"] is None  # the leader's parts are gone
        for symbol in SYMBOLS:
            assert await venue.orders.fetch_open_orders(symbol) == [], symbol
        assert await engine.terminate() == 0, engine.tail()
        await assert_venue_matches_journal(venue, pool)


@asynccontextmanager
async def _blue(
    dsn: str,
    market: int,
    release: Path,
    tmp_path: Path,
    *,
    lease_ttl: float = 2.0,
    env: dict[str, str] | None = None,
    before_start: Callable[[asyncpg.Pool], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[EngineProcess, asyncpg.Pool, Any]]:
    """Run engine blue on ``dsn`` against the simulator; yield it, a pool and a venue client.

    ``before_start`` runs on the pool before the engine starts. Afterwards the faults are
    cleared and the engine, the pool and the venue client stopped, whatever happened.
    """
    venue = await open_venue(market)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    engine: EngineProcess | None = None
    try:
        if before_start is not None:
            await before_start(pool)
        engine = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue",
                               lease_ttl=lease_ttl, env=env)  # fmt: skip
        await engine.start()
        yield engine, pool, venue
    finally:
        await clear_faults(market)
        if engine is not None:
            await engine.terminate()
        await pool.close()
        await venue.close()


async def _watch(engine: EngineProcess, seen: list[dict[str, Any]]) -> None:
    while True:
        status = await engine.status()
        if status is not None:
            seen.append(status)
        await asyncio.sleep(0.2)


async def fill_keys(pool: asyncpg.Pool) -> set[tuple[str, str]]:
    return {(r["symbol"], r["trade_id"]) for r in await pool.fetch("SELECT * FROM fills")}


async def _sent_since(pool: asyncpg.Pool, seq: int, at_least: int) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM journal_events WHERE kind = 'order_new' AND seq > $1", seq
    )
    return int(count) >= at_least


async def _sent(pool: asyncpg.Pool, at_least: int) -> bool:
    return await journal_count(pool, "order_acked") >= at_least


async def _count_above(pool: asyncpg.Pool, kind: str, count: int) -> bool:
    return await journal_count(pool, kind) > count


async def _no_unresolved(pool: asyncpg.Pool) -> bool:
    return await unresolved_unknowns(pool) == []
