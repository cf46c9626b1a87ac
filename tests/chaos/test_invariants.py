"""The chaos invariants catch what they promise to: each check fed a broken desk.

The database refuses a second leader's write and any rewrite of the journal or the audit
log, so the broken histories here are written as the superuser with the triggers
switched off (``session_replication_role = replica``): what a bug in the fencing, or
someone with the keys, would leave behind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

from bot4.api.bootstrap import bootstrap_admin
from tests.chaos.invariants import audit_chain, one_leader_at_a_time


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as created:
        yield created


class Venue:
    """The part of a venue session the epoch check reads: the order log, per symbol."""

    def __init__(self, orders: dict[str, list[tuple[int, str]]]) -> None:
        self.rest = self
        self.exchange = self
        self.orders = orders

    async def fetch_orders(
        self, symbol: str, since: object, limit: int, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        listed = [o for o in self.orders.get(symbol, []) if o[0] >= params["orderId"]]
        return [{"id": str(i), "clientOrderId": c} for i, c in listed[:limit]]


async def _write(pool: asyncpg.Pool, rows: list[tuple[int, str, str]]) -> None:
    """Journal (epoch, instance, kind) rows in this order, fencing switched off."""
    async with pool.acquire() as connection:
        await connection.execute("SET session_replication_role = replica")
        for epoch, instance, kind in rows:
            body = {"event": "acquired"} if kind == "leadership" else {}
            await connection.execute(
                "INSERT INTO journal_events (event_id, epoch, instance, kind, body)"
                " VALUES ($1, $2, $3, $4, $5)",
                uuid.uuid4(), epoch, instance, kind, json.dumps(body),
            )  # fmt: skip
        await connection.execute("SET session_replication_role = origin")


async def test_one_leader_at_a_time_holds_for_a_clean_handover(pool: asyncpg.Pool) -> None:
    await _write(pool, [(1, "blue", "leadership"), (1, "blue", "order_new"),
                        (2, "green", "leadership"), (2, "green", "order_new")])  # fmt: skip
    venue = Venue({"BTC/USDT": [(1, "blue-1-1"), (2, "blue-1-2"), (3, "green-2-1")]})
    assert await one_leader_at_a_time(venue, pool) == []


async def test_two_writers_of_one_epoch_and_an_epoch_going_back_are_caught(
    pool: asyncpg.Pool,
) -> None:
    await _write(pool, [(1, "blue", "leadership"), (2, "green", "leadership"),
                        (2, "blue", "order_new"), (1, "blue", "order_new")])  # fmt: skip
    found = await one_leader_at_a_time(Venue({}), pool)
    assert any("epoch 2 written by" in f for f in found), found
    assert any("epoch went back along seq" in f for f in found), found


async def test_an_old_epoch_order_taken_after_the_next_epoch_began_is_caught(
    pool: asyncpg.Pool,
) -> None:
    await _write(pool, [(1, "blue", "leadership"), (2, "green", "leadership")])
    # green's first order (venue id 2) was taken before blue's last (venue id 3)
    venue = Venue({"ETH/USDT": [(1, "blue-1-1"), (2, "green-2-1"), (3, "blue-1-2")]})
    found = await one_leader_at_a_time(venue, pool)
    assert found == ["epoch 1 order blue-1-2 (venue id 3) after epoch 2's first (venue id 2)"]


async def test_a_changed_audit_row_breaks_the_chain(
    pool: asyncpg.Pool, dsn: str, tmp_path: Path
) -> None:
    await bootstrap_admin(dsn, path=tmp_path / "admin.key", name="chaos", lifetime_s=0,
                          force=False, audit_key=Fernet.generate_key())  # fmt: skip
    assert await audit_chain(pool, calls=1) == []
    assert await audit_chain(pool, calls=5) == ["audit chain holds 1 rows for 5 API calls"]
    async with pool.acquire() as connection:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("UPDATE audit_log SET status = 599 WHERE seq = 1")
        await connection.execute("SET session_replication_role = origin")
    (broken,) = await audit_chain(pool, calls=1)
    assert broken.startswith("audit chain broken at seq 1")
