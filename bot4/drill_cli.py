"""``bot4 drill failover``: a disaster-recovery drill (the dr_failover runbook, through the API).

A thin wrapper over ``bot4 runbook run dr_failover`` with ``drill=true``: the steady-state
hypothesis is checked first, the failover (or switchover) runs for real, the hypothesis is
checked again and the drill report is stored. ``--wait`` follows the run and exits 3 when
the drill failed or did not pass (the report names why).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Final

from bot4 import console
from bot4.control_cli import EXIT_FOUND_PROBLEM, EXIT_OK
from bot4.control_commands import _run, _UsageError, client_for
from bot4.settings import Settings

ENDED_BADLY: Final = ("FAILED", "TERMINATED", "TIMED_OUT", "CANCELED")
POLL_S: Final = 0.5


def configure_parser(drill: argparse.ArgumentParser) -> None:
    """Add ``bot4 drill failover`` and its options."""
    kinds = drill.add_subparsers(dest="drill_command", required=True, metavar="KIND")
    failover = kinds.add_parser(
        "failover",
        help="move the PostgreSQL primary on purpose and measure RTO/RPO (runbook dr_failover)",
    )
    failover.add_argument(
        "--mode", choices=("switchover", "failover"), default="switchover",
        help="planned switchover, or kill -9 the primary (default switchover)",
    )  # fmt: skip
    failover.add_argument(
        "--max-rto", type=float, default=10.0,
        help="the drill fails above this RTO in seconds (10)",
    )  # fmt: skip
    failover.add_argument(
        "--max-lag-bytes", type=int, default=16 * 1024 * 1024,
        help="refuse a switchover when the standby lags more (16 MiB)",
    )  # fmt: skip
    failover.add_argument(
        "--no-rejoin", action="store_true",
        help="leave the old primary down (it stays out of replication)",
    )  # fmt: skip
    failover.add_argument("--reason", default="scheduled drill", help="why (audit log, report)")
    failover.add_argument("--dry-run", action="store_true", help="return the plan, change nothing")
    failover.add_argument("--wait", action="store_true", help="follow the run until it ends")
    failover.add_argument("--json", action="store_true", help="print JSON documents")
    listing = kinds.add_parser("list", help="the stored drill reports, newest first")
    listing.add_argument("--limit", type=int, default=20, help="how many (1-1000, 20)")
    listing.add_argument("--json", action="store_true", help="print a JSON document")


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    """Return the runbook parameters of the arguments.

    Raises:
        _UsageError: a bad argument, named.
    """
    if not 0 < args.max_rto <= 3600:
        raise _UsageError(f"--max-rto {args.max_rto}: seconds, more than 0 and at most 3600")
    if args.max_lag_bytes < 0:
        raise _UsageError(f"--max-lag-bytes {args.max_lag_bytes}: a byte count, 0 or more")
    if not args.reason.strip():
        raise _UsageError("--reason must not be empty: say why the desk drills")
    return {
        "mode": args.mode,
        "drill": True,
        "max_rto_s": args.max_rto,
        "max_lag_bytes": args.max_lag_bytes,
        "rejoin": not args.no_rejoin,
        "reason": args.reason,
    }


def drill_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 drill failover`` or ``bot4 drill list`` through the API."""
    if args.drill_command == "list":
        return _list(args, settings)

    def call() -> int:
        params = params_of(args)
        client = client_for(settings)
        started = client.post("/v1/runbooks/dr_failover/runs",
                              {"params": params, "dry_run": args.dry_run}).body  # fmt: skip
        wid = started["workflow_id"]
        if args.json and not args.wait:
            console.print_json(started)
        elif not args.json:
            console.say(f"started {wid}" + (" (dry run)" if args.dry_run else ""))
        return follow(client, wid, as_json=args.json) if args.wait else EXIT_OK

    return _run(call)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    def call() -> int:
        if not 1 <= args.limit <= 1000:
            raise _UsageError(f"--limit {args.limit}: between 1 and 1000")
        rows = client_for(settings).get(f"/v1/drills?limit={args.limit}").body
        if args.json:
            console.print_json(rows)
            return EXIT_OK
        console.print_table(
            ["drill", "passed", "RTO s", "RPO", "why not passed"],
            [[r["drill_id"], "yes" if r["passed"] else "NO", r["rto_s"], r["rpo_events"],
              "; ".join(r["failures"]) or "-"] for r in rows],
        )  # fmt: skip
        return EXIT_OK

    return _run(call)


def follow(client: Any, workflow_id: str, *, as_json: bool) -> int:
    """Show the run's steps as they finish; print the report; exit 3 unless it passed."""
    shown = 0
    while True:
        document = client.get(f"/v1/runbooks/runs/{workflow_id}").body
        done = (document.get("progress") or {}).get("done") or []
        if not as_json:
            for step in done[shown:]:
                console.say(f"  {step['step']:<22} {step['ms']:>7} ms")
        shown = len(done)
        if document["status"] != "RUNNING":
            break
        time.sleep(POLL_S)
    result = document.get("result") or {}
    if as_json:
        console.print_json(document)
    elif result:
        console.say(summary(result))
    if document.get("failure") and not as_json:
        console.error(f"{workflow_id}: {document['failure']}")
    if document["status"] in ENDED_BADLY:
        return EXIT_FOUND_PROBLEM
    return EXIT_OK if result.get("dry_run") or result.get("passed") else EXIT_FOUND_PROBLEM


def summary(result: dict[str, Any]) -> str:
    """Return the drill's figures in a few lines."""
    if result.get("dry_run"):
        return json.dumps(result.get("plan"), indent=2, default=str)
    rejoin = result.get("rejoin") or {}
    lines = [
        f"{result['mode']}: {result.get('old_primary')} → {result.get('new_primary')}",
        f"RTO {result.get('rto_s')} s ({result.get('rto_source')}), RPO"
        f" {result.get('rpo_events')} acknowledged facts missing",
        f"rejoin: {rejoin.get('method', 'not done')}, degraded {result.get('degraded_ms')} ms",
        f"passed: {result.get('passed')}" + _why(result),
    ]
    if result.get("report_uri"):
        lines.append(f"report: {result['report_uri']} (dr_drills {result.get('report_id')})")
    return "\n".join(lines)


def _why(result: dict[str, Any]) -> str:
    failures = result.get("failures") or []
    return f" — {'; '.join(failures)}" if failures else ""
