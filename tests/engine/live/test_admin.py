"""A database failover's admin actions on a whole engine (``bot4 engine run``).

The engine runs as a subprocess (``EngineProcess`` of test_engine) against real
PostgreSQL and the simulator with a live market; the test talks to its control server
as the ``dr_failover`` workflow does: ``hold`` / ``unhold`` move the trading state on
``/status`` and are journaled, the engine's own conditions are refused, and
``journal_acks`` answers ids that are in the journal. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.stubs.desk_checks import leader, trading, until
from tests.stubs.desk_fixtures import market, release
from tests.stubs.engine_control import TOKEN
from tests.stubs.engine_process import EngineProcess

__all__ = ["market", "release"]  # shared fixtures

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONDITION = "dr_failover"


async def admin(engine: EngineProcess, action: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{engine.url}/admin/{action}", headers=AUTH, json=body,
                  timeout=aiohttp.ClientTimeout(total=10)) as answer,
    ):  # fmt: skip
        return answer.status, await answer.json()


def leading_active(status: dict[str, Any]) -> bool:
    return leader(status) and status["trading_state"] == "ACTIVE" and not status["conditions"]


async def hold_events(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT body FROM journal_events WHERE kind = 'trading_state'"
        " AND (body ? 'hold' OR body ? 'unhold') ORDER BY seq"
    )
    return [json.loads(r["body"]) for r in rows]


async def test_hold_keeps_the_engine_reducing_until_unhold_and_is_journaled(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    engine = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue")
    await engine.start()
    try:
        await engine.wait_for(leading_active, within=60, what="leading, ACTIVE")
        hold = {"condition": CONDITION, "by": "alice", "reason": "switchover"}

        code, answer = await admin(engine, "hold", hold)
        assert code == 200, answer
        assert answer["result"]["changed"] is True
        assert answer["result"]["trading_state"] == "REDUCING"
        held = await engine.status()
        assert held is not None
        assert held["trading_state"] == "REDUCING"
        assert held["conditions"] == {CONDITION: 1}  # REDUCING
        assert held["gate"] == "ACTIVE"  # a hold, not a lowering: no resume is needed
        code, answer = await admin(engine, "hold", hold)  # a retried activity
        assert (code, answer["result"]["changed"]) == (200, False)

        for action, condition in (("hold", "journal"), ("unhold", "venue")):
            code, answer = await admin(engine, action, {"condition": condition})
            assert code == 400, answer
            assert f"may not be {condition!r}" in answer["error"]

        unhold = {"condition": CONDITION, "by": "alice", "reason": "switchover done"}
        code, answer = await admin(engine, "unhold", unhold)
        assert code == 200, answer
        assert answer["result"]["changed"] is True
        await engine.wait_for(leading_active, within=5, what="ACTIVE again")
        code, answer = await admin(engine, "unhold", unhold)
        assert (code, answer["result"]["changed"]) == (200, False)

        await until(lambda: _counted(hold_events(pool), 2), within=10)
        assert await hold_events(pool) == [
            {"hold": CONDITION, "state": "REDUCING", "by": "alice", "reason": "switchover"},
            {"unhold": CONDITION, "by": "alice", "reason": "switchover done"},
        ]
        assert await engine.terminate() == 0, engine.tail()
    finally:
        await engine.terminate()
        await pool.close()


async def test_journal_acks_answers_the_ids_the_journal_committed_since_a_time(
    dsn: str, market: int, release: Path, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    started = time.time()
    engine = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue")
    await engine.start()
    try:
        await engine.wait_for(leader, within=60, what="leader")
        await until(lambda: trading(pool), within=60)
        older = await _event_ids(pool)  # visible, hence acknowledged, well before `since`
        await asyncio.sleep(1.0)
        since = time.time()

        async def journaled_after_since() -> bool:
            return bool(await _event_ids(pool, after=since))

        await until(journaled_after_since, within=30)  # the engine goes on journaling
        newer = await _event_ids(pool, after=since)  # began after it: acknowledged after it
        visible, fills_visible = await _event_ids(pool), await _fill_keys(pool)
        await asyncio.sleep(1.0)  # what is visible now was acknowledged by then

        code, everything = await admin(engine, "journal_acks", {"since": started})
        assert code == 200, everything
        code, recent = await admin(engine, "journal_acks", {"since": since, "by": "dr_failover",
                                                            "reason": "rpo count"})  # fmt: skip
        assert code == 200, recent
        status = await engine.status()
        committed, fills_committed = await _event_ids(pool), await _fill_keys(pool)
    finally:
        await engine.terminate()
        await pool.close()

    acked = {str(i) for i in everything["result"]["event_ids"]}
    acked_fills = {tuple(f) for f in everything["result"]["fills"]}
    assert everything["result"]["leader"] is True
    assert everything["result"]["truncated"] is False
    assert visible <= acked <= committed  # every id answered is in journal_events
    assert fills_visible <= acked_fills <= fills_committed
    assert fills_visible  # the engine traded: fills were acknowledged too
    recent_ids = set(recent["result"]["event_ids"])
    assert newer <= recent_ids <= committed
    assert recent_ids & older == set()  # nothing acknowledged before `since`
    assert status is not None
    journal = status["journal"]
    assert journal["healthy"] is True
    assert journal["failing_since"] is None
    assert journal["acked_total"] >= len(acked) + len(acked_fills)
    assert isinstance(journal["backlog"], int)
    assert isinstance(journal["outages"], list)


async def _counted(rows: Any, count: int) -> bool:
    return len(await rows) >= count


async def _event_ids(pool: asyncpg.Pool, *, after: float | None = None) -> set[str]:
    """Return the journal's event ids (those whose transaction began after ``after``)."""
    if after is None:
        rows = await pool.fetch("SELECT event_id FROM journal_events")
    else:
        rows = await pool.fetch(
            "SELECT event_id FROM journal_events WHERE recorded_at > to_timestamp($1)", after
        )
    return {str(r["event_id"]) for r in rows}


async def _fill_keys(pool: asyncpg.Pool) -> set[tuple[str, str, str, str]]:
    rows = await pool.fetch("SELECT venue, symbol, trade_id, side FROM fills")
    return {(r["venue"], r["symbol"], r["trade_id"], r["side"]) for r in rows}
