"""The demo's deploy step: a blue-green rollout to a second release, and a bad third one.

Both go through the stack's own worker exactly as ``bot4 rollout engine`` would start them
(``start_rollout`` on the ``bot4`` task queue): the worker starts the idle color through
the local platform, watches it shadow the leader, gates it, hands the lease over, bakes
and retires the old color. The third release quotes hundreds of basis points away from
the leader on purpose; its shadow agreement fails the health gate, the workflow rolls back
by itself, and the demo checks from the journal that the leader trades on.

Release versions carry the demo run's timestamp: a version is deployed once, ever
(``deploy-<version>`` is the workflow id), and the stack's Temporal keeps its history.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
from temporalio.client import Client, WorkflowHandle

from bot4 import console
from bot4.settings import Settings
from workflows.blue_green_deploy import (
    BlueGreenDeployWorkflow,
    RolloutInput,
    RolloutResult,
    start_rollout,
)

BAD_HALF_SPREAD_TICKS: Final = 30_000
"""Quotes ~300 bps from mid where the leader quotes a few ticks: the shadow gate refuses."""
TRADES_AGAIN_WITHIN_S: Final = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutOutcome:
    """One demo rollout, as the workflow reported it and the journal confirmed it."""

    version: str
    expected: str  # "completed" or "rolled back"
    result: RolloutResult | None
    leader_traded_after: bool
    error: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the rollout ended as the demo meant it to, and trading went on."""
        if self.result is None or not self.leader_traded_after:
            return False
        if self.expected == "completed":
            return self.result.completed
        return self.result.rolled_back

    @property
    def detail(self) -> str:
        """Return one line for the demo's table."""
        result = self.result
        if result is None:
            return self.error
        plan = result.plan
        move = f"{plan.old.color}->{plan.new.color}" if plan is not None else "?"
        if result.completed and result.handoff is not None:
            text = (
                f"{move}: completed, handoff gap {result.handoff.gap_ms} ms,"
                f" epoch {result.handoff.old_epoch}->{result.handoff.new_epoch}"
            )
        elif result.rolled_back:
            text = f"{move}: rolled back at {result.failed_step} ({result.reason})"
        else:
            text = f"{move}: neither completed nor rolled back"
        traded = "the leader trades on" if self.leader_traded_after else "NO order since"
        return f"{text}; {traded}"

    def as_json(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict."""
        result = self.result
        return {
            "version": self.version,
            "expected": self.expected,
            "ok": self.ok,
            "detail": self.detail,
            "completed": None if result is None else result.completed,
            "rolled_back": None if result is None else result.rolled_back,
            "failed_step": None if result is None else result.failed_step,
            "handoff_gap_ms": None
            if result is None or result.handoff is None
            else result.handoff.gap_ms,
            "duration_s": None if result is None else result.duration_s,
            "leader_traded_after": self.leader_traded_after,
        }


def write_release(folder: Path, base: dict[str, Any], version: str, **strategy: Any) -> Path:
    """Write ``base`` under ``version`` with ``strategy`` overrides; return the path."""
    document = json.loads(json.dumps(base))
    document["version"] = version
    document["strategy"].update(strategy)
    path = folder / f"release-{version}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


async def run_rollouts(
    settings: Settings, *, base: dict[str, Any], run_id: str, quiet: bool
) -> list[RolloutOutcome]:
    """Roll out a good second release, then a bad third one; return both outcomes."""
    folder = settings.home / "demo"
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    good = write_release(folder, base, f"{run_id}-2", quote_lots=25)
    bad = write_release(
        folder,
        base,
        f"{run_id}-3-bad",
        base_half_spread_ticks=BAD_HALF_SPREAD_TICKS,
        min_half_spread_ticks=BAD_HALF_SPREAD_TICKS,
    )
    outcomes = []
    for path, expected in ((good, "completed"), (bad, "rolled back")):
        console.say(f"  rollout of {path.name} (expected: {expected})")
        outcomes.append(await _one_rollout(settings, client, path, expected, quiet=quiet))
        if outcomes[-1].result is None:
            break  # the desk is in an unknown state: do not stack a second rollout on it
    return outcomes


async def _one_rollout(
    settings: Settings, client: Client, path: Path, expected: str, *, quiet: bool
) -> RolloutOutcome:
    version = path.stem.removeprefix("release-")
    request = RolloutInput(
        release_path=str(path),
        requested_by="demo",
        reason="bot4 demo",
        warm_s=3,
        shadow_samples=3,
        bake_s=5,
        bake_interval_s=1,
    )
    try:
        handle = await start_rollout(client, request)
        result = await _follow(handle, quiet=quiet)
    except Exception as e:  # the demo reports any failure in its table, then stops the desk
        return RolloutOutcome(
            version=version,
            expected=expected,
            result=None,
            leader_traded_after=False,
            error=f"{e.__class__.__name__}: {e}",
        )
    traded = await _leader_trades(settings, since_s=TRADES_AGAIN_WITHIN_S)
    return RolloutOutcome(
        version=version, expected=expected, result=result, leader_traded_after=traded
    )


async def _follow(handle: WorkflowHandle[Any, RolloutResult], *, quiet: bool) -> RolloutResult:
    """Wait for the result, saying each new step as the workflow reaches it."""
    waiting = asyncio.ensure_future(handle.result())
    seen = ""
    while not waiting.done():
        try:
            step = (await handle.query(BlueGreenDeployWorkflow.progress)).step
        except Exception:  # a query can race the workflow's end; the result tells
            step = seen
        if step != seen and not quiet:
            console.say(f"    step {step}")
        seen = step
        await asyncio.wait({waiting}, timeout=0.5)
    return waiting.result()


async def _leader_trades(settings: Settings, *, since_s: float) -> bool:
    """Tell whether the current lease holder journals a new order within ``since_s``."""
    connection = await asyncpg.connect(settings.db.effective_dsn(), timeout=10)
    try:
        start = await connection.fetchval("SELECT coalesce(max(seq), 0) FROM journal_events")
        deadline = time.monotonic() + since_s
        while time.monotonic() < deadline:
            found = await connection.fetchval(
                "SELECT count(*) FROM journal_events j JOIN engine_leases l"
                " ON l.name = j.lease AND j.instance = l.holder AND j.epoch = l.epoch"
                " WHERE l.name = 'trading' AND j.kind = 'order_new' AND j.seq > $1",
                start,
            )
            if found:
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await connection.close()
