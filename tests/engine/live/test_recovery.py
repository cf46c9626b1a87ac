"""Startup recovery against real PostgreSQL and the simulator, including after a kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import pytest

from engine.execution import OrderRequest
from engine.journal import GroupCommitter, Journal, JournalEvent, JournalKind
from engine.leadership import Lease
from engine.live.fills import asset_deltas
from engine.live.gate import TradingGate
from engine.live.order_table import OrderPhase
from engine.live.orders import OrderManager
from engine.live.recovery import RecoveryConfig, recover
from tests.engine.live.harness import (
    INSTANCE,
    SYMBOLS,
    Rig,
    clear_faults,
    open_venue,
    resting_price,
    rig,
    set_fault,
    venue_client_ids,
)
from tests.stubs.exchange_sim import ThreadedSim, sim_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def port() -> Iterator[int]:
    """A quiet simulator that outlives the engine processes of a test."""
    with ThreadedSim(sim_config()) as sim:
        yield sim.config.port


async def balances(port: int, dsn: str) -> dict[str, Decimal]:
    async with rig(dsn, port) as r:
        return {a: b.total for a, b in (await r.venue.account.fetch_balances()).items()}


async def test_kill_9_mid_burst_then_recovery_leaves_no_duplicate_no_lost_fill(
    dsn: str, port: int
) -> None:
    start = await balances(port, dsn)
    await set_fault(port, "latency", ms=20)  # so that sends are in flight at the kill
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.live.harness", dsn, str(port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    sent = 0
    try:
        while sent < 40:  # mid-burst: sends, acks and fill polls are all under way
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "burst exited early"
            sent += 1
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    await clear_faults(port)

    async with rig(dsn, port) as r:
        report = await recover(r.manager, baseline=start)
        assert report.ok, report
        assert report.orders_rebuilt >= sent
        await assert_journal_matches_venue(r, start)
        # the recovered manager trades on: a new epoch, new ids, nothing reused
        await r.manager.cancel_all()
        order = await r.manager.submit(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001")
        )
        assert order.client_order_id == f"{INSTANCE}-{r.manager.epoch}-1"
        assert order.phase is OrderPhase.FILLED


async def test_journaled_order_never_sent_is_resolved_as_not_placed(dsn: str, port: int) -> None:
    async with rig(dsn, port) as crashed:
        cid = crashed.manager.next_client_order_id()
        body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001",
                "phase": "new"}  # fmt: skip
        await crashed.committer.record(
            [JournalEvent(kind=JournalKind.ORDER_NEW, client_order_id=cid, body=body)]
        )  # ... and the process died before sending
    async with rig(dsn, port) as r:
        report = await recover(r.manager, baseline=None)
        assert report.not_placed == (cid,)
        assert report.ok
        order = r.manager.table.get(cid)
        assert order is not None
        assert order.phase is OrderPhase.REJECTED
        kinds = await r.pool.fetch(
            "SELECT kind FROM journal_events WHERE client_order_id = $1 ORDER BY seq", cid
        )
        assert [k["kind"] for k in kinds] == ["order_new", "order_rejected"]


async def test_open_order_of_ours_unknown_to_the_journal_is_canceled(dsn: str, port: int) -> None:
    async with rig(dsn, port) as r:
        price = await resting_price(r.venue, "ETH/USDT", side="buy")
        orphan = OrderRequest(
            client_order_id=f"{INSTANCE}-999-1", symbol="ETH/USDT", side="buy", type="limit",
            amount=Decimal("0.01"), price=price,
        )  # fmt: skip
        await r.venue.orders.create_order(orphan)  # as if the journal had lost its ORDER_NEW
        foreign = OrderRequest(
            client_order_id="manual-1", symbol="ETH/USDT", side="buy", type="limit",
            amount=Decimal("0.01"), price=price,
        )  # fmt: skip
        await r.venue.orders.create_order(foreign)
        report = await recover(r.manager, baseline=None)
        assert report.orphans_canceled == (orphan.client_order_id,)
        still_open = [o.client_order_id for o in await r.venue.orders.fetch_open_orders("ETH/USDT")]
        assert still_open == ["manual-1"]  # not ours: left alone


async def test_orphan_is_adopted_when_configured(dsn: str, port: int) -> None:
    async with rig(dsn, port) as r:
        price = await resting_price(r.venue, "ETH/USDT", side="buy")
        await r.venue.orders.create_order(
            OrderRequest(
                client_order_id=f"{INSTANCE}-999-2", symbol="ETH/USDT", side="buy",
                type="limit", amount=Decimal("0.01"), price=price,
            )
        )  # fmt: skip
        report = await recover(
            r.manager, baseline=None, config=RecoveryConfig(orphans="adopt", cancel_resting=False)
        )
        assert report.orphans_adopted == (f"{INSTANCE}-999-2",)
        order = r.manager.table.get(f"{INSTANCE}-999-2")
        assert order is not None
        assert order.phase is OrderPhase.ACKED


async def test_balances_off_the_journal_are_reported_so_the_engine_starts_halted(
    dsn: str, port: int
) -> None:
    start = await balances(port, dsn)
    async with rig(dsn, port) as r:
        wrong = dict(start) | {"BTC": start["BTC"] + Decimal(1)}  # as if 1 BTC was withdrawn
        report = await recover(r.manager, baseline=wrong)
        assert not report.ok
        assert [m.asset for m in report.mismatches] == ["BTC"]


async def order_new_ids(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT client_order_id FROM journal_events WHERE kind = 'order_new'")
    return {row["client_order_id"] for row in rows}


async def assert_journal_matches_venue(r: Rig, start: dict[str, Decimal]) -> None:
    """After recovery: no id sent twice, every venue order and fill journaled exactly
    once, nothing left unknown, positions equal to the venue's balance changes."""
    venue = r.venue
    for symbol in SYMBOLS:
        ids = await venue_client_ids(venue, symbol)
        assert ids, symbol
        assert all(cid.startswith(f"{INSTANCE}-") for cid in ids)
        assert [c for c, n in Counter(ids).items() if n > 1] == []  # none sent twice
        venue_trades = sorted(
            str(f.trade_id) for f in await venue.account.fetch_fills(symbol, after_trade_id=0)
        )
        journaled = await r.pool.fetch("SELECT trade_id FROM fills WHERE symbol = $1", symbol)
        assert sorted(row["trade_id"] for row in journaled) == venue_trades
        assert set(ids) <= await order_new_ids(r.pool)  # every order at the venue journaled
    assert all(o.phase is not OrderPhase.UNKNOWN for o in r.manager.table)
    now = {a: b.total for a, b in (await venue.account.fetch_balances()).items()}
    deltas = asset_deltas(r.manager.positions.values())
    for asset in ("BTC", "ETH", "USDT"):
        assert now[asset] - start[asset] == deltas.get(asset, Decimal(0)), asset
    rows = await r.pool.fetch("SELECT symbol, qty FROM positions")
    assert {row["symbol"]: row["qty"] for row in rows} == {
        s: p.qty for s, p in r.manager.positions.items()
    }


async def test_kill_9_after_orders_left_before_their_record_was_durable(
    dsn: str, port: int
) -> None:
    """The engine's fast path: an order leaves while its ORDER_NEW is still committing.

    The burst's journal hangs after 60 writes; orders keep leaving until the committer
    counts as unhealthy (its write hangs past ``slow_write_s``), then the process is
    killed. The venue now holds orders of ours that the journal never recorded, some
    filled: recovery must journal (adopt) them, cancel what rests, and journal each fill
    once, with its client id.
    """
    start = await balances(port, dsn)
    await set_fault(port, "latency", ms=20)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.live.harness", dsn, str(port), "60",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "burst exited before its journal hung"
            if line.startswith(b"journal hangs"):
                break
        await asyncio.sleep(1.5)  # past slow_write_s: the fast path has closed itself
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    await clear_faults(port)

    async with rig(dsn, port) as r:
        journaled = await order_new_ids(r.pool)
        at_venue = {cid for s in SYMBOLS for cid in await venue_client_ids(r.venue, s)}
        unrecorded = at_venue - journaled
        assert unrecorded, "no order left before its record was durable: scenario not reached"
        report = await recover(r.manager, baseline=start)
        assert report.ok, report
        await assert_journal_matches_venue(r, start)
        adopted = await r.pool.fetch(
            "SELECT client_order_id FROM journal_events"
            " WHERE kind = 'order_new' AND body->>'adopted' = 'true'"
        )
        assert {row["client_order_id"] for row in adopted} == unrecorded
        orphan_fills = await r.pool.fetchval(
            "SELECT count(*) FROM fills WHERE client_order_id = ''"
        )
        assert orphan_fills == 0  # each fill of an adopted order carries its client id


async def test_a_deposed_leaders_resting_orders_are_canceled_and_a_manual_one_left(
    dsn: str, port: int
) -> None:
    """A deposed leader's resting orders are the desk's; a manual order is not.

    After a handoff, green's resting order (journaled) and its unjournaled one belong to
    the desk: the new leader cancels both before it checks balances; a manual order on
    the same account stays.
    """
    venue = await open_venue(port)
    try:
        start = {a: b.total for a, b in (await venue.account.fetch_balances()).items()}
    finally:
        await venue.close()
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as pool:
        lease = Lease(pool, instance="green", ttl_s=60)
        epoch = await lease.try_acquire()
        assert epoch is not None
        committer = GroupCommitter(Journal(pool, instance="green"), epoch=lambda: epoch)
        committer.start()
        venue = await open_venue(port)
        try:
            acquired = {"event": "acquired", "epoch": epoch}
            await committer.record([JournalEvent(kind=JournalKind.LEADERSHIP, body=acquired)])
            green = OrderManager(
                client=venue.orders, account=venue.account, committer=committer,
                gate=TradingGate(), instruments=venue.instruments, instance="green", epoch=epoch,
            )  # fmt: skip
            price = await resting_price(venue, "ETH/USDT", side="buy")
            journaled = await green.submit(symbol="ETH/USDT", side="buy", type="limit",
                                           amount=Decimal("0.01"), price=price)  # fmt: skip
            assert journaled.phase is OrderPhase.ACKED
            for cid in (f"green-{epoch}-99", "manual-7"):  # unjournaled; not the desk's
                await venue.orders.create_order(OrderRequest(
                    client_order_id=cid, symbol="ETH/USDT", side="buy", type="limit",
                    amount=Decimal("0.01"), price=price,
                ))  # fmt: skip
        finally:
            await committer.stop()
            await venue.close()
        assert await lease.release()  # green steps down, leaving its orders resting

    async with rig(dsn, port) as r:
        report = await recover(r.manager, baseline=start)
        assert report.ok, report
        assert report.orphans_canceled == (f"green-{epoch}-99",)
        still_open = [o.client_order_id for o in await r.venue.orders.fetch_open_orders("ETH/USDT")]
        assert still_open == ["manual-7"]
        canceled = r.manager.table.get(journaled.client_order_id)
        assert canceled is not None
        assert canceled.phase is OrderPhase.CANCELED
        await r.venue.orders.cancel_order("manual-7", "ETH/USDT")
