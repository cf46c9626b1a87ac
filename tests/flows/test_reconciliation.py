"""Reconciliation against real PostgreSQL and the simulator (through ccxt).

A real order manager trades and journals; then the journal or the venue is changed
behind its back. Deleting a fill from the journal is the deliberate corruption: the
journal is append-only by trigger, so the test disables that trigger for one statement,
as only a person with superuser rights could.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import asyncpg
import pytest

from engine.execution import VenueSession
from engine.live.baseline import record_baseline
from flows.reconciliation import ReconcileConfig, ReconciliationError, reconcile
from tests.engine.live.harness import SYMBOLS, open_venue, rig
from tests.stubs.exchange_sim import ThreadedSim, ccxt_binance, sim_config

pytestmark = pytest.mark.timeout(120)
CONFIG = ReconcileConfig(venue="binance", symbols=SYMBOLS, escalate_after_runs=2)


@pytest.fixture
def port() -> Iterator[int]:
    with ThreadedSim(sim_config()) as sim:
        yield sim.config.port


@pytest.fixture
async def traded(dsn: str, port: int) -> AsyncIterator[asyncpg.Pool]:
    """A journal of a few real trades with its baseline; the engine then stepped down."""
    async with rig(dsn, port) as r:
        await record_baseline(r.committer, r.venue.account, by="test")
        for n in range(4):
            order = await r.manager.submit(
                symbol=SYMBOLS[n % 2], side="buy" if n % 2 else "sell", type="market",
                amount=Decimal("0.002"),
            )  # fmt: skip
            assert order.phase.value == "filled"
        await r.manager.poll_fills()
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as pool:
        await pool.execute("UPDATE engine_leases SET holder = NULL, expires_at = now()")
        yield pool


@pytest.fixture
async def venue(port: int) -> AsyncIterator[VenueSession]:
    session = await open_venue(port)
    yield session
    await session.close()


async def test_consistent_state_has_zero_breaks(traded: asyncpg.Pool, venue: VenueSession) -> None:
    report = await reconcile(traded, venue, config=CONFIG)
    assert report.breaks == ()
    assert report.fills_checked >= 4
    assert report.balances_checked
    assert await traded.fetchval("SELECT count(*) FROM reconciliation_runs") == 1


async def test_deleted_fill_is_a_missing_fill_repaired_then_clean(
    traded: asyncpg.Pool, venue: VenueSession
) -> None:
    async with traded.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE fills DISABLE TRIGGER fills_append_only")
        trade = await conn.fetchrow(
            "DELETE FROM fills WHERE (symbol, trade_id) = (SELECT symbol, trade_id FROM fills"
            " ORDER BY traded_at LIMIT 1) RETURNING symbol, trade_id, side, qty"
        )
        await conn.execute("ALTER TABLE fills ENABLE TRIGGER fills_append_only")

    first = await reconcile(traded, venue, config=CONFIG)
    second = await reconcile(traded, venue, config=CONFIG)
    repaired = await reconcile(traded, venue, config=CONFIG, repair=True)
    after = await reconcile(traded, venue, config=CONFIG)

    assert trade is not None
    key = f"fill:{trade['symbol']}:{trade['trade_id']}:{trade['side']}"
    assert [(b.kind, b.key) for b in first.breaks] == [("missing_fill", key)]
    assert first.breaks[0].actual == str(trade["qty"])
    assert not first.breaks[0].escalated
    assert second.breaks[0].consecutive_runs == 2
    assert second.breaks[0].escalated
    assert repaired.repaired == 1
    assert repaired.ok
    assert after.breaks == ()
    audit = await traded.fetchval(
        "SELECT count(*) FROM journal_events WHERE body->>'event' = 'reconciliation_repair'"
    )
    assert audit == 1


async def test_out_of_band_trade_and_order_are_typed_breaks(
    traded: asyncpg.Pool, venue: VenueSession, port: int
) -> None:
    exchange = ccxt_binance(port)
    try:
        await exchange.create_order("ETH/USDT", "market", "buy", 0.003)
        book = await exchange.fetch_order_book("ETH/USDT", 5)
        await exchange.create_order("ETH/USDT", "limit", "buy", 0.004,
                                    round(book["bids"][0][0] * 0.8, 2))  # fmt: skip
    finally:
        await exchange.close()

    report = await reconcile(traded, venue, config=CONFIG)

    kinds = [b.kind for b in report.breaks]  # a market order may fill in several trades
    assert set(kinds) == {"missing_fill", "unknown_open_order"}  # no balance drift: explained
    assert kinds.count("unknown_open_order") == 1
    missing = [b for b in report.breaks if b.kind == "missing_fill"]
    assert sum(Decimal(b.actual or 0) for b in missing) == Decimal("0.003")
    assert all(b.detail["side"] == "buy" for b in missing)
    # the engine holds the lease again: a repair is refused, nothing is written
    await traded.execute("UPDATE engine_leases SET holder = 'blue',"
                         " expires_at = now() + interval '1 minute'")  # fmt: skip
    with pytest.raises(ReconciliationError, match="lease"):
        await reconcile(traded, venue, config=CONFIG, repair=True)


async def test_balance_drift_beyond_tolerance_only(
    traded: asyncpg.Pool, venue: VenueSession
) -> None:
    baseline_row = await traded.fetchrow(
        "SELECT body FROM journal_events WHERE body->>'event' = 'baseline'"
    )
    assert baseline_row is not None
    # a withdrawal the journal never saw: pretend the baseline had 1 USDT more
    await traded.execute("UPDATE engine_leases SET holder = 'seed', epoch = epoch + 1")
    body = json.loads(baseline_row["body"])
    body["balances"]["USDT"] = str(Decimal(body["balances"]["USDT"]) + 1)
    epoch = await traded.fetchval("SELECT epoch FROM engine_leases")
    await traded.execute(
        "INSERT INTO journal_events (event_id, epoch, instance, kind, body)"
        " VALUES (gen_random_uuid(), $1, 'seed', 'leadership', $2)",
        epoch, json.dumps(body),
    )  # fmt: skip

    report = await reconcile(traded, venue, config=CONFIG)
    loose = await reconcile(
        traded, venue, config=ReconcileConfig(venue="binance", symbols=SYMBOLS,
                                              quantity_tolerance=Decimal("1.5")))  # fmt: skip

    assert [(b.kind, b.asset) for b in report.breaks] == [("balance_drift", "USDT")]
    assert Decimal(report.breaks[0].detail["difference"]) == Decimal(-1)  # type: ignore[arg-type]
    assert loose.breaks == ()
