"""The demo's chores: a backup with its restore test, a reconciliation, a daily report.

Each runs as a Prefect flow in this process, recorded by the stack's Prefect server (so
the runs appear in the UI beside the scheduled ones). Call :func:`run_chores` with the
stack up; it returns a :class:`ChoresResult` (``ok``, ``detail``, ``as_json``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from bot4.settings import Settings


@dataclass(frozen=True, kw_only=True, slots=True)
class ChoresResult:
    """What the demo prints about the chores."""

    ok: bool
    detail: str
    seconds: float
    backup: dict[str, Any] = field(default_factory=dict)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        """Return the result as JSON."""
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 3),
                "backup": self.backup, "reconciliation": self.reconciliation,
                "report": self.report, "error": self.error}  # fmt: skip


async def _drain_prefect() -> None:
    """Send Prefect's buffered logs and events now, while the server still runs."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        await cast(Awaitable[Any], worker.drain_all(timeout=5, at_exit=False))


async def run_chores(settings: Settings) -> ChoresResult:
    """Back up (and restore-test), reconcile, and report on today; never raise."""
    from flows.deployments import (
        backup_flow,
        bind_settings,
        reconcile_flow,
        report_flow,
        stack_prefect,
    )

    started = time.perf_counter()
    bind_settings(settings)
    backup: dict[str, Any] = {}
    reconciliation: dict[str, Any] = {}
    report: dict[str, Any] = {}
    try:
        with stack_prefect(settings):
            backup = await backup_flow()
            reconciliation = await reconcile_flow()
            report = await report_flow(day=datetime.now(UTC).date().isoformat())
            await _drain_prefect()
    except Exception as e:  # the demo reports a failed chore; it does not crash on one
        return ChoresResult(
            ok=False, detail=f"chores failed: {type(e).__name__}: {e}",
            seconds=time.perf_counter() - started, backup=backup,
            reconciliation=reconciliation, report=report, error=type(e).__name__,
        )  # fmt: skip
    tested = backup["restore_test"]
    ok = bool(backup["ok"]) and bool(reconciliation["ok"]) and not reconciliation["breaks"]
    detail = (
        f"backup {backup['backup']['backup_id']} {'verified' if tested['ok'] else 'NOT verified'}"
        f" (restore {tested['restore_s']:.2f} s); reconciliation:"
        f" {len(reconciliation['breaks'])} breaks over {reconciliation['fills_checked']} fills;"
        f" report at {report['html_uri']}"
    )
    return ChoresResult(ok=ok, detail=detail, seconds=time.perf_counter() - started,
                        backup=backup, reconciliation=reconciliation, report=report)  # fmt: skip


def main() -> None:
    """Run the chores once with the settings of the environment; print the result as JSON.

    ``python -m flows.demo`` (exit 0 when every chore succeeded, 1 otherwise).
    """
    import asyncio
    import json
    import os
    import sys

    result = asyncio.run(run_chores(Settings()))
    print(json.dumps(result.as_json(), default=str))
    sys.stdout.flush()
    os._exit(0 if result.ok else 1)  # Prefect's client threads need no teardown


if __name__ == "__main__":
    main()
