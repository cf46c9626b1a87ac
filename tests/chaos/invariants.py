"""The promises every chaos scenario must keep, checked against the venue and the journal.

Each check returns what it found violated (empty: kept), so a scenario reports every
broken promise at once. With the engines stopped cleanly at the end of a scenario:

- **orders once**: no client order id twice in the venue's order list, none of ours open;
- **fills once**: every venue fill (trade id and side) in the journal, exactly once;
- **positions reconciled**: the journal's positions are the venue's balance changes since
  the journaled baseline;
- **one leader at a time**: in the journal, each epoch written by one instance, epochs
  acquired once each and only growing along ``seq`` and ``recorded_at``; at the venue,
  every order of an epoch taken before the first of the next (by the venue's order id,
  which its clock jumps cannot reorder);
- **workflow completed or compensated**: the run ended COMPLETED (a rollout completed or
  rolled back, a liquidation flat or stopped at its deadline without overselling, a
  failover with RPO 0), or FAILED cleanly (a refusal, one primary, the desk led);
- **audit chain intact**: the control API's hash chain verifies and holds the calls made.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any

import asyncpg

from bot4.api.audit import verify_chain
from tests.chaos.operations import Run
from tests.chaos.scenarios import Operation, Scenario
from tests.engine.live.harness import SYMBOLS
from tests.stubs.desk_checks import (
    assert_client_ids_once,
    assert_fills_journaled_once,
    assert_nothing_open,
    assert_positions_match_balances,
    venue_orders,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Aftermath:
    """What the operation left behind: the pair and the running engines once the faults
    were undone (before any repair by the harness), and who led once the desk settled."""

    primaries: tuple[str, ...]
    pair_sync: bool
    running: frozenset[str]
    leader: str | None = None
    harness_started: bool = False


async def _kept(name: str, check: Awaitable[None]) -> list[str]:
    try:
        await check
    except AssertionError as e:
        return [f"{name}: {e}"]
    return []


async def venue_and_journal(venue: Any, pool: asyncpg.Pool) -> list[str]:
    """Orders once, fills once, positions reconciled."""
    return [
        *await _kept("client order id twice at the venue", assert_client_ids_once(venue)),
        *await _kept("orders left open", assert_nothing_open(venue)),
        *await _kept("fill not journaled exactly once", assert_fills_journaled_once(venue, pool)),
        *await _kept("positions not reconciled", assert_positions_match_balances(venue, pool)),
    ]


async def one_leader_at_a_time(venue: Any, pool: asyncpg.Pool) -> list[str]:
    """Never two leaders: from the journal's epochs and the venue's order log."""
    found = []
    for table in ("journal_events", "fills"):
        shared = await pool.fetch(
            f"SELECT epoch, array_agg(DISTINCT instance) AS who FROM {table}"
            " GROUP BY epoch HAVING count(DISTINCT instance) > 1"
        )
        found += [f"{table}: epoch {r['epoch']} written by {r['who']}" for r in shared]
    for order in ("seq", "recorded_at, seq"):
        backwards = await pool.fetch(
            "SELECT seq, epoch, before FROM (SELECT seq, epoch, max(epoch) OVER (ORDER BY"
            f" {order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before"
            " FROM journal_events) t WHERE epoch < before LIMIT 5"
        )
        found += [f"epoch went back along {order}: {dict(r)}" for r in backwards]
    acquired = [int(r["epoch"]) for r in await pool.fetch(
        "SELECT epoch FROM journal_events WHERE kind = 'leadership'"
        " AND body->>'event' = 'acquired' ORDER BY seq")]  # fmt: skip
    if acquired != sorted(set(acquired)):
        found.append(f"epochs acquired out of order or twice: {acquired}")
    found += await _venue_epochs_in_order(venue, pool)
    return found


async def _venue_epochs_in_order(venue: Any, pool: asyncpg.Pool) -> list[str]:
    """Every order of an epoch reached the venue before the first order of a later one.

    The sender's epoch is in an engine order's client id (``<instance>-<epoch>-<seq>``,
    also when a later leader adopted it); a liquidation child (``liq-...``) is journaled
    write-ahead by its sender, under its epoch.
    """
    child_epochs = {r["client_order_id"]: int(r["epoch"]) for r in await pool.fetch(
        "SELECT client_order_id, epoch FROM journal_events WHERE kind = 'order_new'"
        " AND client_order_id LIKE 'liq-%'")}  # fmt: skip
    spans: dict[int, tuple[int, int, str]] = {}
    for symbol in SYMBOLS:
        for order in await venue_orders(venue, symbol):
            client_id, order_id = str(order["clientOrderId"]), int(order["id"])
            parts = client_id.split("-")
            if client_id in child_epochs:
                epoch = child_epochs[client_id]
            elif len(parts) == 3 and parts[1].isdigit():
                epoch = int(parts[1])
            else:
                continue  # not the desk's
            first, last, _ = spans.get(epoch, (order_id, order_id, client_id))
            spans[epoch] = (min(first, order_id), max(last, order_id), client_id)
    ordered = sorted(spans.items())
    return [
        f"epoch {e} order {who} (venue id {last}) after epoch {n}'s first (venue id {first})"
        for (e, (_, last, who)), (n, (first, _, _)) in pairwise(ordered)
        if last > first
    ]


async def workflow_outcome(
    scenario: Scenario, run: Run, aftermath: Aftermath, pool: asyncpg.Pool
) -> list[str]:
    """Completed, or compensated: rolled back, or failed cleanly with the desk consistent."""
    status, result = run.status, run.result
    if status == "COMPLETED":
        return await _completed(scenario.operation, result, aftermath, pool)
    if status == "FAILED":
        problems = []
        if not run.document.get("failure"):
            problems.append("failed without saying why")
        if len(aftermath.primaries) != 1:
            problems.append(f"left the pair without one primary: {aftermath.primaries}")
        if aftermath.leader is None or aftermath.harness_started:
            problems.append(f"left the desk without a leader (running {sorted(aftermath.running)})")
        return [f"workflow failed, not cleanly: {p}" for p in problems]
    return [f"workflow did not end cleanly: {status} after {run.seconds:.0f} s {run.document}"]


async def _completed(
    operation: Operation, result: dict[str, Any], aftermath: Aftermath, pool: asyncpg.Pool
) -> list[str]:
    if operation is Operation.ROLLOUT:
        if result.get("completed") == result.get("rolled_back"):
            return [f"rollout neither completed nor rolled back: {result}"]
        expected = "green" if result.get("completed") else "blue"
        gone = "blue" if expected == "green" else "green"
        if aftermath.leader != expected or gone in aftermath.running or aftermath.harness_started:
            said = "completed" if expected == "green" else "rolled back"
            started = " (the harness had to start blue)" if aftermath.harness_started else ""
            return [f"rollout {said}, but then {aftermath.leader} led, running"
                    f" {sorted(aftermath.running)}{started}"]  # fmt: skip
        return []
    if operation is Operation.LIQUIDATION:
        return await _liquidated(result, pool)
    problems = []
    if result.get("verify") is not None and result.get("rpo_events") != 0:
        problems.append(f"failover lost acknowledged facts: rpo_events={result.get('rpo_events')}")
    if result.get("new_primary") is not None and aftermath.primaries != (result["new_primary"],):
        problems.append(f"said {result['new_primary']} is primary, found {aftermath.primaries}")
    return problems


async def _liquidated(result: dict[str, Any], pool: asyncpg.Pool) -> list[str]:
    """Flat when it says so, stopped at its deadline otherwise, and never oversold: each
    symbol's traded quantity (the journal's fills) ends on the side it started on."""
    unwind = result.get("unwind")
    if not unwind:
        return [f"liquidation completed without an unwind: {result}"]
    problems = []
    if not result.get("flat") and unwind.get("stopped") != "deadline":
        problems.append(f"liquidation neither flat nor stopped at its deadline: {unwind}")
    for leg in unwind["symbols"]:
        traded = Decimal(await pool.fetchval(
            "SELECT coalesce(sum(CASE side WHEN 'buy' THEN qty ELSE -qty END), 0) FROM fills"
            " WHERE symbol = $1", leg["symbol"]))  # fmt: skip
        if (leg["side"] == "sell" and traded < 0) or (leg["side"] == "buy" and traded > 0):
            problems.append(f"{leg['symbol']} oversold: {leg['side']} from {leg['start_qty']}"
                            f" to {traded}")  # fmt: skip
        if result.get("flat") and abs(traded) > abs(Decimal(leg["remaining"])):
            problems.append(f"{leg['symbol']}: said flat (remaining {leg['remaining']}), the"
                            f" journal's fills leave {traded}")  # fmt: skip
    return problems


async def audit_chain(pool: asyncpg.Pool, *, calls: int) -> list[str]:
    """The control API's audit chain verifies and holds at least the calls made."""
    async with pool.acquire() as connection:
        report = await verify_chain(connection)
    if not report.ok:
        return [f"audit chain broken at seq {report.broken_seq}: {report.problem}"]
    if report.rows_checked < calls:
        return [f"audit chain holds {report.rows_checked} rows for {calls} API calls"]
    return []
