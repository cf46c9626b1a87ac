"""Whole engines (``bot4 engine run`` processes) against real PostgreSQL and the simulator.

Each test starts engine subprocesses exactly as an operator would, on a scratch database
and a simulator with a live market (background agents trading), and inspects the venue,
the journal and the engines' control endpoints. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from engine.journal import FencedError, Journal, JournalEvent, JournalKind
from flows.objstore import ObjectStore
from flows.reports import build_daily_report
from tests.engine.live.harness import SYMBOLS, open_venue
from tests.stubs.deploy import RELEASE
from tests.stubs.desk_checks import (
    assert_positions_match_balances,
    assert_venue_matches_journal,
    fill_diff,
    forgotten,
    journal_count,
    leader,
    trading,
    until,
)
from tests.stubs.desk_fixtures import market, release
from tests.stubs.engine_control import TOKEN
from tests.stubs.engine_process import EngineProcess

__all__ = ["market", "release"]  # shared fixtures


async def assert_trading_metrics(url: str) -> None:
    """The engine's /metrics counts what it did: orders, their round trips, fills."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as answer:
        text = await answer.text()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("bot4_engine_") and " " in line
    }

    def total(prefix: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix))

    assert total("bot4_engine_orders_total{") > 0, text
    assert total('bot4_engine_order_round_trip_seconds_count{action="create"}') > 0
    assert total("bot4_engine_fills_total{") > 0
    assert total("bot4_engine_resyncs_total{") >= 1  # the takeover's recovery


async def assert_report_matches_journal(dsn: str, pool: asyncpg.Pool, folder: Path) -> None:
    """The daily report of the day traded: its execution and risk figures are the journal's."""
    first = await pool.fetchrow("SELECT venue, traded_at FROM fills ORDER BY traded_at LIMIT 1")
    assert first is not None
    day = first["traded_at"].astimezone(UTC).date()
    start = datetime.combine(day, dtime(0), tzinfo=UTC)
    report = await build_daily_report(dsn=dsn, store=ObjectStore(uri=f"file://{folder}/reports"),
                                      day=day, venue=first["venue"])  # fmt: skip
    rows = await pool.fetch(
        "SELECT f.qty, f.liquidity, (SELECT e.body->'context'->>'arrival_mid' FROM journal_events"
        " e WHERE e.kind = 'order_new' AND e.client_order_id = f.client_order_id LIMIT 1) AS mid"
        " FROM fills f WHERE traded_at >= $1 AND traded_at < $2",
        start,
        start + timedelta(1),
    )
    execution = report.document["execution"]
    assert execution["fills"] == len(rows)
    # every quote carries the mid it was decided on (adopted orders after the kill do not)
    assert execution["slippage_fills"] == sum(r["mid"] is not None for r in rows) > 0
    assert {r["liquidity"] for r in rows} <= {"maker", "taker"}  # the venue qualifies each
    makers = sum(r["liquidity"] == "maker" for r in rows)
    assert execution["maker_share"] == round(makers / len(rows), 4)
    volume = sum(Decimal(s["volume"]) for s in report.document["pnl"]["symbols"].values())
    assert volume == sum(r["qty"] for r in rows)
    risk = report.document["risk"]
    assert risk["releases_in_force"] == [RELEASE["version"]]
    assert risk["limits"]["max_position_lots"] == RELEASE["risk"]["max_position_lots"]
    assert set(risk["peak_use"]["position"]) <= set(SYMBOLS)


async def test_engine_trades_journals_and_recovers_from_kill_9(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    venue = await open_venue(market)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    # ended orders leave the engine's memory 2 s after they end (default 300 s), so the
    # run below forgets hundreds mid-trading and the checks cover a forgetting engine too
    forget_fast = {"BOT4_ENGINE__ENDED_ORDER_RETENTION_S": "2"}
    engine = await EngineProcess(tmp_path, dsn, market, release, color="blue",
                                 instance="blue", env=forget_fast).start()  # fmt: skip
    engines = [engine]
    try:
        first = await engine.wait_for(leader, within=60, what="leader")
        assert first["epoch"] == 1
        assert first["recovery_ok"] is True
        # it trades: quotes journaled then sent, and the agents fill some of them
        await until(lambda: trading(pool), within=60)
        assert await journal_count(pool, "order_new") >= 10, json.dumps(await engine.status())
        assert await pool.fetchval("SELECT count(*) FROM fills") >= 3, engine.tail()
        await assert_trading_metrics(engine.url)
        forgot = await engine.wait_for(forgotten, within=30, what="ended orders forgotten")
        # every kernel of quoting, fills and forgetting was compiled before trading began
        # (a kernel compiled on the loop stalled it for tens of seconds: engine.live.warmup)
        assert forgot["kernels"]["warm_s"] is not None
        assert forgot["kernels"]["compiled_late"] == [], engine.tail()
        await engine.kill()  # mid-trading: orders resting, sends and fill polls in flight
        assert forgot["orders"]["in_memory"] < await journal_count(pool, "order_new")

        again = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue",
                              env=forget_fast)  # fmt: skip
        engines.append(again)
        await again.start()
        status = await again.wait_for(leader, within=60, what="leader after restart")
        assert status["epoch"] == 2
        assert status["recovery_ok"] is True, await fill_diff(venue, pool) + again.tail()
        assert await again.terminate() == 0, again.tail()
        await assert_venue_matches_journal(venue, pool)
        await assert_report_matches_journal(dsn, pool, tmp_path)
        # the journal's positions are the venue's balance changes since the baseline
        await assert_positions_match_balances(venue, pool)
        holder = await pool.fetchrow("SELECT holder, expires_at < now() AS free FROM engine_leases")
        assert holder is not None
        assert holder["free"] is True  # a clean stop releases the lease at once
    finally:
        for started in engines:  # a failed assertion must not leave an engine running
            await started.terminate()
        await pool.close()
        await venue.close()


async def test_two_engines_one_leads_the_other_takes_over_fenced(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    blue = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue")
    green = EngineProcess(tmp_path, dsn, market, release, color="green", instance="green")
    try:
        await asyncio.gather(blue.start(), green.start())
        both = (blue, green)
        await blue.wait_for(lambda s: s.get("role") in ("leader", "standby"), within=60,
                            what="running")  # fmt: skip
        await green.wait_for(lambda s: s.get("role") in ("leader", "standby"), within=60,
                             what="running")  # fmt: skip
        deadline = time.monotonic() + 30
        roles: list[str] = []
        while time.monotonic() < deadline:
            statuses = [await e.status() or {} for e in both]
            roles = [s.get("role", "?") for s in statuses]
            if "leader" in roles:
                break
            await asyncio.sleep(0.2)
        assert sorted(roles) == ["leader", "standby"]
        lead, shadow = (blue, green) if roles[0] == "leader" else (green, blue)
        lead_status = await lead.status()
        assert lead_status is not None
        old_epoch = int(lead_status["epoch"])
        old_instance = str(lead_status["instance"])
        await shadow.wait_for(lambda s: s["decisions"] > 0 and s["shadow_quotes"], within=30,
                              what="shadow decisions")  # fmt: skip
        senders = {r["instance"] for r in await pool.fetch(
            "SELECT DISTINCT instance FROM journal_events WHERE kind = 'order_new'")}  # fmt: skip
        assert senders <= {old_instance}  # only the leader ever sent

        new_instance = "green" if old_instance == "blue" else "blue"
        killed_at = time.monotonic()
        await lead.kill()

        async def taken_over() -> bool:
            row = await pool.fetchrow("SELECT holder, epoch FROM engine_leases")
            return row is not None and (row["holder"], row["epoch"]) == (new_instance,
                                                                         old_epoch + 1)  # fmt: skip

        await until(taken_over, within=10)
        took = time.monotonic() - killed_at
        assert await taken_over()
        # the lease (the right to trade) moves within its TTL (2 s) plus a renew interval
        assert took < 2.0 + 2.0 / 3 + 1.0, took
        # trading starts after reconciliation, which may wait out the venue's recvWindow
        # for an order the dead leader journaled but may not have sent (~11 s at most)
        status = await shadow.wait_for(leader, within=30, what="leading after takeover")
        assert status["epoch"] == old_epoch + 1
        # the deposed engine's epoch is refused by PostgreSQL itself
        with pytest.raises(FencedError):
            await Journal(pool, instance=old_instance).append(
                [JournalEvent(kind=JournalKind.ORDER_NEW, body={"late": True})], epoch=old_epoch
            )
    finally:
        for engine in (blue, green):
            if engine.process is not None:
                await engine.terminate()
        await pool.close()


async def test_concurrent_acquires_make_one_leader_at_one_new_epoch(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    engine = EngineProcess(tmp_path, dsn, market, release, color="green", instance="green")
    engine.args.append("--standby")  # waits for an operator's acquire_leadership
    await engine.start()
    try:
        await engine.wait_for(lambda s: s.get("role") == "standby", within=60, what="standby")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:

            async def acquire() -> int:
                url = f"{engine.url}/admin/acquire_leadership"
                async with http.post(url, headers=headers, json={"reason": "test"}) as answer:
                    return answer.status

            # two operators (or the leadership loop and one operator) at the same moment
            assert list(await asyncio.gather(acquire(), acquire())) == [200, 200]
        status = await engine.wait_for(leader, within=30, what="leader")
        acquired = await pool.fetch(
            "SELECT epoch FROM journal_events WHERE kind = 'leadership'"
            " AND body->>'event' = 'acquired'"
        )
        assert [r["epoch"] for r in acquired] == [1], "one takeover, one epoch"
        assert status["epoch"] == 1
        assert await pool.fetchval("SELECT epoch FROM engine_leases") == 1
    finally:
        await engine.terminate()
        await pool.close()
