"""Checks of a desk against its venue: what the journal says against what the venue did.

Shared by the engine, fault, failover and chaos tests. Every check reads the venue's own
order and trade lists (through ccxt, as the engine does) and the journal's tables; none
takes an engine's word for anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

from tests.engine.live.harness import SYMBOLS


def leader(status: dict[str, Any]) -> bool:
    """Tell whether an engine's ``/status`` says it leads."""
    return status.get("role") == "leader"


def forgotten(status: dict[str, Any]) -> bool:
    """Tell whether an engine's ``/status`` says it dropped ended orders from memory."""
    return int((status.get("orders") or {}).get("forgotten", 0)) > 0


async def until(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    """Poll ``check`` (a database or HTTP question) until it holds or time runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)


async def journal_count(pool: asyncpg.Pool, kind: str) -> int:
    """Return how many journal events of ``kind`` there are."""
    return int(await pool.fetchval("SELECT count(*) FROM journal_events WHERE kind = $1", kind))


async def trading(pool: asyncpg.Pool) -> bool:
    """Tell whether the desk trades: orders journaled and some of them filled."""
    fills = int(await pool.fetchval("SELECT count(*) FROM fills"))
    return fills >= 3 and await journal_count(pool, "order_new") >= 10


async def venue_orders(venue: Any, symbol: str) -> list[dict[str, Any]]:
    """Return every order the venue ever took on ``symbol`` (ccxt's documents), oldest first.

    Paged by order id (``allOrders`` answers 1,000 at most): quoting alone places more
    than that in a minute.
    """
    orders: list[dict[str, Any]] = []
    next_id = 0
    while True:
        page = await venue.rest.exchange.fetch_orders(symbol, None, 1000, {"orderId": next_id})
        orders += page
        if len(page) < 1000:
            return orders
        next_id = max(int(o["id"]) for o in page) + 1


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


async def assert_client_ids_once(venue: Any) -> None:
    """No client order id was ever taken twice by the venue (a retry never re-sent)."""
    for symbol in SYMBOLS:
        ids = [str(o["clientOrderId"]) for o in await venue_orders(venue, symbol)]
        twice = [c for c, n in Counter(ids).items() if n > 1]
        assert twice == [], f"{symbol}: client ids taken twice by the venue: {twice[:10]}"


async def assert_nothing_open(venue: Any) -> None:
    """None of our orders rests at the venue (after a clean stop)."""
    for symbol in SYMBOLS:
        left = await venue.orders.fetch_open_orders(symbol)
        assert left == [], f"{symbol}: orders left open at the venue: {left[:5]}"


async def assert_fills_journaled_once(venue: Any, pool: asyncpg.Pool) -> None:
    """Each venue fill (trade id and side: a self-trade is two) is in the journal once."""
    for symbol in SYMBOLS:
        fills = await venue.account.fetch_fills(symbol, after_trade_id=0)
        at_venue = sorted((str(f.trade_id), str(f.side)) for f in fills)
        journaled = sorted(
            (r["trade_id"], r["side"])
            for r in await pool.fetch("SELECT trade_id, side FROM fills WHERE symbol = $1", symbol)
        )
        assert journaled == at_venue, await fill_diff(venue, pool)


async def assert_venue_matches_journal(venue: Any, pool: asyncpg.Pool) -> None:
    """No client id sent twice, none of ours open, each venue fill journaled exactly once,
    each order journaled as new once (an engine that forgot an ended order must not
    adopt it again on a late fill)."""
    await assert_client_ids_once(venue)
    await assert_nothing_open(venue)
    await assert_fills_journaled_once(venue, pool)
    twice = await pool.fetch(
        "SELECT client_order_id, count(*) AS n FROM journal_events WHERE kind = 'order_new'"
        " GROUP BY client_order_id HAVING count(*) > 1"
    )
    assert not twice, f"ORDER_NEW journaled more than once: {[dict(r) for r in twice]}"


async def assert_positions_match_balances(venue: Any, pool: asyncpg.Pool) -> None:
    """The journal's positions are the venue's balance changes since the journaled baseline.

    Positions are net of fees paid in the base asset; the quote asset moved by the cost.
    """
    row = await pool.fetchrow(
        "SELECT body FROM journal_events WHERE body->>'event' = 'baseline' ORDER BY seq LIMIT 1"
    )
    assert row is not None, "no balance baseline in the journal"
    baseline = {a: Decimal(v) for a, v in json.loads(row["body"])["balances"].items()}
    now = {a: b.total for a, b in (await venue.account.fetch_balances()).items()}
    rows = {r["symbol"]: r for r in await pool.fetch("SELECT * FROM positions")}
    quote_spent = Decimal(0)
    problems = []
    for symbol in SYMBOLS:
        base = symbol.split("/")[0]
        qty = rows[symbol]["qty"] if symbol in rows else Decimal(0)
        if now[base] - baseline[base] != qty:
            problems.append(
                f"{symbol}: venue {base} moved {now[base] - baseline[base]}, journal position {qty}"
            )
        quote_spent += rows[symbol]["cost"] if symbol in rows else Decimal(0)
    if now["USDT"] - baseline["USDT"] != -quote_spent:
        problems.append(f"USDT: venue moved {now['USDT'] - baseline['USDT']}, cost {quote_spent}")
    assert problems == [], "; ".join(problems)
