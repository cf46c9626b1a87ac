"""The balance baseline: the venue balances the journal's fills are counted from.

Startup reconciliation checks ``venue balance == baseline + what the journaled fills
imply``. The baseline is recorded once, by the first leader of an empty journal, as a
``leadership`` event (append-only like every other fact); later leaders read it back.
A deposit or withdrawal at the venue breaks the equation on purpose: the engine then
starts HALTED until an operator records a new baseline (``record_baseline``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

import asyncpg

from engine.execution import AccountClient
from engine.journal import GroupCommitter, JournalEvent
from engine.journal.models import JournalKind

_LATEST: str = """
SELECT body FROM journal_events
 WHERE kind = 'leadership' AND body->>'event' = 'baseline'
 ORDER BY seq DESC LIMIT 1
"""


async def load_baseline(pool: asyncpg.Pool) -> dict[str, Decimal] | None:
    """Return the latest recorded baseline, or None when none was recorded."""
    row = await pool.fetchrow(_LATEST)
    if row is None:
        return None
    body = json.loads(row["body"])
    return {asset: Decimal(str(total)) for asset, total in body["balances"].items()}


async def record_baseline(
    committer: GroupCommitter, account: AccountClient, *, by: str
) -> dict[str, Decimal]:
    """Fetch the venue balances now and journal them as the new baseline."""
    balances = {asset: b.total for asset, b in (await account.fetch_balances()).items()}
    await committer.record([baseline_event(balances, by=by)])
    return balances


def baseline_event(balances: Mapping[str, Decimal], *, by: str) -> JournalEvent:
    """Return the journal event that records ``balances`` as the baseline."""
    return JournalEvent(
        kind=JournalKind.LEADERSHIP,
        body={"event": "baseline", "by": by,
              "balances": {asset: str(total) for asset, total in balances.items()}},
    )  # fmt: skip


async def journal_has_fills(pool: asyncpg.Pool) -> bool:
    """Return whether any fill was ever journaled (a baseline must then already exist)."""
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM fills)"))
