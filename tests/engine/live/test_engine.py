"""Whole engines (``bot4 engine run`` processes) against real PostgreSQL and the simulator.

Each test starts engine subprocesses exactly as an operator would, on a scratch database
and a simulator with a live market (background agents trading), and inspects the venue,
the journal and the engines' control endpoints. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from engine.journal import FencedError, Journal, JournalEvent, JournalKind
from flows.objstore import ObjectStore
from flows.reports import build_daily_report
from tests.engine.live.harness import SYMBOLS, open_venue, venue_client_ids
from tests.stubs.deploy import RELEASE
from tests.stubs.engine_control import TOKEN
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.ports import free_ports


@pytest.fixture
def market() -> Iterator[int]:
    """A simulator with background agents, so books move and quotes get filled."""
    with ThreadedSim(sim_config(agent_orders_per_s=150.0)) as sim:
        yield sim.config.port


@pytest.fixture
def release(tmp_path: Path) -> Path:
    path = tmp_path / "release.json"
    path.write_text(json.dumps(RELEASE))
    return path


class EngineProcess:
    """One ``bot4 engine run`` subprocess and its control endpoint."""

    def __init__(self, home: Path, dsn: str, market: int, release: Path, *, color: str,
                 instance: str, lease_ttl: float = 2.0) -> None:  # fmt: skip
        self.port = free_ports(1)[0]
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "BOT4_HOME": str(home),
            "BOT4_DB__DSN": dsn,
            "BOT4_EXCHANGE__PORT": str(market),
            "BOT4_ENGINE__CONTROL_TOKEN": TOKEN,
        }
        self.log = (home / f"{instance}.log").open("wb")
        self.args = [sys.executable, "-m", "bot4", "engine", "run", "--color", color,
                     "--release", str(release), "--instance", instance,
                     "--control-port", str(self.port), "--lease-ttl", str(lease_ttl)]  # fmt: skip
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> EngineProcess:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, stdout=self.log, stderr=self.log
        )
        return self

    async def status(self) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{self.url}/status", timeout=aiohttp.ClientTimeout(total=2)) as answer,
            ):
                return dict(await answer.json())
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_for(self, predicate: Any, *, within: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"engine exited {self.process.returncode}: {self.tail()}")
            status = await self.status()
            if status is not None and predicate(status):
                return status
            await asyncio.sleep(0.2)
        raise AssertionError(f"engine never reached: {what}; last {await self.status()}")

    def tail(self) -> str:
        self.log.flush()
        log = self.home / "log" / "bot4.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        problems = [line for line in lines if '"warning"' in line or '"error"' in line]
        output = Path(self.log.name).read_text(errors="replace")[-2000:]
        return "\n".join([output, *problems[-10:]])

    async def kill(self) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()
        self.log.close()
        return int(self.process.returncode or 0)


async def fill_diff(venue: Any, pool: asyncpg.Pool) -> str:
    """Describe venue trades missing from the journal and the reverse (failure message)."""
    lines = []
    for symbol in SYMBOLS:
        at_venue = {
            str(f.trade_id): f for f in await venue.account.fetch_fills(symbol, after_trade_id=0)
        }
        journal = {
            r["trade_id"]
            for r in await pool.fetch("SELECT trade_id FROM fills WHERE symbol = $1", symbol)
        }
        lines.append(
            f"{symbol}: venue-only {[at_venue[t] for t in set(at_venue) - journal]}"
            f" journal-only {sorted(journal - set(at_venue))}"
        )
    return "\n".join(lines) + "\n"


async def assert_venue_matches_journal(venue: Any, pool: asyncpg.Pool) -> None:
    """No client id sent twice, none of ours open, each venue fill journaled exactly once."""
    for symbol in SYMBOLS:
        ids = await venue_client_ids(venue, symbol)
        assert [c for c, n in Counter(ids).items() if n > 1] == [], symbol
        assert await venue.orders.fetch_open_orders(symbol) == [], symbol
        at_venue = sorted(
            str(f.trade_id) for f in await venue.account.fetch_fills(symbol, after_trade_id=0)
        )
        journaled = await pool.fetch("SELECT trade_id FROM fills WHERE symbol = $1", symbol)
        assert sorted(r["trade_id"] for r in journaled) == at_venue, await fill_diff(venue, pool)


def leader(status: dict[str, Any]) -> bool:
    return status.get("role") == "leader"


async def until(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    """Poll ``check`` (a database or HTTP question) until it holds or time runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)


async def trading(pool: asyncpg.Pool) -> bool:
    fills = int(await pool.fetchval("SELECT count(*) FROM fills"))
    return fills >= 3 and await journal_count(pool, "order_new") >= 10


async def journal_count(pool: asyncpg.Pool, kind: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM journal_events WHERE kind = $1", kind))


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
    engine = await EngineProcess(tmp_path, dsn, market, release, color="blue",
                                 instance="blue").start()  # fmt: skip
    engines = [engine]
    try:
        first = await engine.wait_for(leader, within=60, what="leader")
        assert first["epoch"] == 1
        assert first["recovery_ok"] is True
        # it trades: quotes journaled then sent, and the agents fill some of them
        await until(lambda: trading(pool), within=60)
        assert await journal_count(pool, "order_new") >= 10, json.dumps(await engine.status())
        assert await pool.fetchval("SELECT count(*) FROM fills") >= 3, engine.tail()
        await engine.kill()  # mid-trading: orders resting, sends and fill polls in flight

        again = EngineProcess(tmp_path, dsn, market, release, color="blue", instance="blue")
        engines.append(again)
        await again.start()
        status = await again.wait_for(leader, within=60, what="leader after restart")
        assert status["epoch"] == 2
        assert status["recovery_ok"] is True, await fill_diff(venue, pool) + again.tail()
        assert await again.terminate() == 0, again.tail()
        await assert_venue_matches_journal(venue, pool)
        await assert_report_matches_journal(dsn, pool, tmp_path)
        # the journal's positions are the venue's balance changes since the baseline
        row = await pool.fetchrow(
            "SELECT body FROM journal_events WHERE body->>'event' = 'baseline'"
        )
        assert row is not None
        baseline = {a: Decimal(v) for a, v in json.loads(row["body"])["balances"].items()}
        now = {a: b.total for a, b in (await venue.account.fetch_balances()).items()}
        rows = {r["symbol"]: r for r in await pool.fetch("SELECT * FROM positions")}
        quote_spent = Decimal(0)
        for symbol in SYMBOLS:  # positions are net of fees paid in the base asset
            base = symbol.split("/")[0]
            qty = rows[symbol]["qty"] if symbol in rows else Decimal(0)
            assert now[base] - baseline[base] == qty, symbol
            quote_spent += rows[symbol]["cost"] if symbol in rows else Decimal(0)
        assert now["USDT"] - baseline["USDT"] == -quote_spent
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
