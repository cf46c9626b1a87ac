"""The demo's disaster-recovery drill: a PostgreSQL switchover while the engine runs.

Runs the ``dr_failover`` runbook's workflow as a drill through the stack's worker, as
``bot4 drill failover --mode switchover`` would: the steady state is checked, the primary
is stopped cleanly, the standby promoted, the engine follows on its own (multi-host DSN),
nothing it saw acknowledged is missing (RPO counted), the old primary is rewound and
rejoins as the synchronous standby, the steady state is checked again and the report is
stored. The next ``make demo`` simply finds the other node primary.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from bot4 import console
from bot4.settings import Settings


@dataclass(kw_only=True, slots=True)
class DrillDemo:
    """How the demo's drill ended."""

    ok: bool = False
    detail: str = ""
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict."""
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 2),
                "result": self.result}  # fmt: skip


async def drill(settings: Settings, *, quiet: bool) -> DrillDemo:
    """Run a switchover drill; report RTO, RPO and whether it passed."""
    from workflows.dr_failover import (
        ID_CONFLICT_POLICY,
        ID_REUSE_POLICY,
        DrFailoverInput,
        DrFailoverWorkflow,
        workflow_id,
    )

    demo = DrillDemo()
    started = time.monotonic()
    request = DrFailoverInput(mode="switchover", drill=True, reason="bot4 demo drill",
                              requested_by="demo")  # fmt: skip
    try:
        client = await Client.connect(
            settings.temporal.effective_address(), namespace=settings.temporal.namespace
        )
        handle = await client.start_workflow(
            DrFailoverWorkflow.run, request, id=workflow_id(request),
            task_queue=settings.temporal.task_queue,
            id_reuse_policy=ID_REUSE_POLICY, id_conflict_policy=ID_CONFLICT_POLICY,
        )  # fmt: skip
        waiting = asyncio.ensure_future(handle.result())
        shown = 0
        while not waiting.done():
            try:
                done = (await handle.query(DrFailoverWorkflow.progress)).done
            except Exception:  # a query can race the workflow's end; the result tells
                done = ()
            if not quiet:
                for step in done[shown:]:
                    console.say(f"    {step.step:<20} {step.ms:>6} ms")
            shown = max(shown, len(done))
            await asyncio.wait({waiting}, timeout=0.3)
        result = waiting.result()
        if not quiet:  # the steps that finished after the last look
            for step in result.steps[shown:]:
                console.say(f"    {step.step:<20} {step.ms:>6} ms")
    except Exception as e:  # reported in the demo's table, with the innermost cause
        demo.detail = _innermost(e)
        demo.seconds = time.monotonic() - started
        return demo
    rejoin = result.rejoin.method if result.rejoin is not None else "not rejoined"
    demo.ok = bool(result.passed)
    demo.detail = (
        f"{result.old_primary} → {result.new_primary}: RTO {result.rto_s} s ({_seen_by(result)}),"
        f" RPO {result.rpo_events}, old primary back by {rejoin}"
        + ("" if result.passed else f"; FAILED: {'; '.join(result.failures)}")
    )
    demo.result = {"rto_s": result.rto_s, "rto_source": result.rto_source,
                   "rpo_events": result.rpo_events, "rejoin": rejoin,
                   "degraded_ms": result.degraded_ms, "passed": result.passed,
                   "report_uri": result.report_uri}  # fmt: skip
    demo.seconds = time.monotonic() - started
    return demo


def _innermost(error: BaseException) -> str:
    """Return what went wrong at the bottom of a workflow failure's cause chain."""
    messages = [f"{type(error).__name__}: {error}"]
    while error.__cause__ is not None:
        error = error.__cause__
        messages.append(str(error))
    return messages[-1] if len(messages) > 1 else messages[0]


def _seen_by(result: Any) -> str:
    if result.rto_source == "engine":
        return "as the engine saw it"
    return "journal unwritable; the engine had nothing to write meanwhile"
