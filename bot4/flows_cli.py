"""The chores' commands [LOCAL: PostgreSQL, the object store, the venue, Prefect].

``bot4 flows serve`` runs the Prefect runner (``stack up`` starts it); ``bot4 backup``,
``bot4 reconcile`` and ``bot4 report daily`` run a flow now, in this process, recorded by
the stack's Prefect server like a scheduled run; ``bot4 restore`` restores a backup into
a fresh instance; ``list`` actions read what the flows stored.

Exit codes: 0 done; 1 failed (a restore test or restore that did not verify, a server
unreachable, a repair refused); 2 bad arguments; 3 reconciliation found breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Final, TypeVar

from bot4 import console
from bot4.settings import Settings

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_BREAKS: Final = 3
BACKUP_ID: Final = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")
COMMANDS: Final = ("flows", "backup", "restore", "reconcile", "report")
T = TypeVar("T")


def configure_parsers(commands: Any) -> None:
    """Add ``flows``, ``backup``, ``restore``, ``reconcile`` and ``report``."""
    flows = commands.add_parser("flows", help="serve the scheduled Prefect flows [LOCAL]")
    actions = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="run the Prefect runner: backup, reconcile, report on their schedules",
        description="Serve the deployments backup/scheduled, reconcile/scheduled and"
        " report/scheduled (cron from BOT4_FLOWS__*_CRON, UTC) until SIGTERM; metrics on"
        " BOT4_FLOWS__METRICS_PORT. `bot4 stack up` starts it.",
    )
    serve.add_argument(
        "--name", default="scheduled", help="deployment name (another runner: another name)"
    )
    serve.add_argument(
        "--only", action="append", choices=("backup", "reconcile", "report"), default=None,
        help="serve only this flow (repeat for several; default: all)",
    )  # fmt: skip
    backup = commands.add_parser(
        "backup", help="back up now (pg_dump, upload, restore test, retention), or list [LOCAL]"
    )
    backup.add_argument("action", nargs="?", choices=("run", "list"), default="run")
    backup.add_argument("--dry-run", action="store_true", help="only plan retention")
    backup.add_argument("--json", action="store_true", help="print a JSON document")
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty database of a fresh instance [LOCAL]"
    )
    restore.add_argument("--backup", required=True, help="backup id (bot4 backup list)")
    restore.add_argument(
        "--target", required=True, help="DSN of an empty database, e.g. postgresql://u@h:p/db"
    )
    restore.add_argument("--json", action="store_true", help="print a JSON document")
    reconcile = commands.add_parser(
        "reconcile", help="reconcile the journal with the venue now (typed breaks) [LOCAL]"
    )
    reconcile.add_argument(
        "--repair", action="store_true", help="journal missing fills from the venue (audited)"
    )
    reconcile.add_argument("--json", action="store_true", help="print a JSON document")
    report = commands.add_parser("report", help="build or list daily reports [LOCAL]")
    report.add_argument("action", choices=("daily", "list"))
    report.add_argument("--day", default=None, help="YYYY-MM-DD (default: yesterday, UTC)")
    report.add_argument("--dry-run", action="store_true", help="render, store nothing")
    report.add_argument("--json", action="store_true", help="print a JSON document")


def flows_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one of the chores' commands."""
    handler: Callable[[argparse.Namespace, Settings], int] = {
        "flows": _serve, "backup": _backup, "restore": _restore, "reconcile": _reconcile,
        "report": _report,
    }[args.command]  # fmt: skip
    try:
        return handler(args, settings)
    except Exception as e:  # every failure reaches the operator as one line, exit 1
        from flows.backups import BackupError
        from flows.objstore import ObjectStoreError
        from flows.reconciliation import ReconciliationError

        known = (BackupError, ObjectStoreError, ReconciliationError, OSError)
        if not isinstance(e, known) and type(e).__module__.split(".")[0] not in (
            "asyncpg", "engine", "prefect", "httpx",
        ):  # fmt: skip
            raise
        console.error(f"{args.command} failed: {type(e).__name__}: {e}")
        return EXIT_FAILED


def _run_flow(settings: Settings, make: Callable[[], Awaitable[T]]) -> T:
    from flows.deployments import bind_settings, stack_prefect

    bind_settings(settings)

    async def run() -> T:
        with stack_prefect(settings):
            return await make()

    return asyncio.run(run())


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from infra.stack.prefect_server import prefect_client_env

    # before Prefect is imported: it reads its settings from the environment once
    home = settings.home / "prefect-runner"
    home.mkdir(parents=True, exist_ok=True)
    for key, value in prefect_client_env(
        api_url=settings.prefect.effective_api_url(), home=str(home)
    ).items():
        os.environ.setdefault(key, value)
    # look for due runs every 2 s (Prefect's default 10 s): a run starts within seconds
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    from flows.deployments import bind_settings
    from flows.serve import serve_flows

    bind_settings(settings)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_flows(settings, name=args.name, only=tuple(args.only or ())))
    return EXIT_OK


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        from flows.backups import list_backups

        rows = asyncio.run(list_backups(settings.db.effective_dsn()))
        if args.json:
            console.print_json(rows)
        else:
            console.print_table(
                ["backup", "status", "created", "bytes", "restore s", "failure"],
                [[r["backup_id"], r["status"], str(r["created_at"])[:19], r["size_bytes"],
                  r["restore_s"], r["failure"]] for r in rows],
            )  # fmt: skip
        return EXIT_OK
    from flows.deployments import backup_flow

    console.say("backup: pg_dump → object store, then restore test and retention ...")
    document = _run_flow(settings, lambda: backup_flow(dry_run=args.dry_run))
    if args.json:
        console.print_json(document)
    elif args.dry_run:
        console.say(f"retention plan: {document['retention']}")
    else:
        b, t = document["backup"], document["restore_test"]
        console.say(f"backup {b['backup_id']}: {b['size_bytes']} bytes at {b['uri']}")
        verdict = "verified" if t["ok"] else f"FAILED: {t['problems']}"
        console.say(f"restore test: {verdict} (restore {t['restore_s']} s)")
        console.say(f"retention: deleted {document['retention']['deleted'] or 'nothing'}")
    return EXIT_OK if args.dry_run or document.get("ok") else EXIT_FAILED


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from flows.backups import restore_backup
    from flows.objstore import ObjectStore

    if not BACKUP_ID.fullmatch(args.backup):
        console.error(f"--backup {args.backup!r}: expected an id like 20261127T020000Z-1a2b3c")
        return EXIT_USAGE
    if not args.target.startswith(("postgresql://", "postgres://")):
        console.error("--target must be a postgresql:// DSN of an empty database")
        return EXIT_USAGE
    console.say(f"restoring {args.backup} into the target database ...")
    store = ObjectStore.open(settings.storage.backup_uri, settings.storage)
    report = asyncio.run(restore_backup(store=store, backup_id=args.backup, target_dsn=args.target))
    if args.json:
        console.print_json(report.as_json())
    else:
        verdict = "verified" if report.ok else f"NOT verified: {list(report.problems)}"
        console.say(f"restored {args.backup} in {report.restore_s:.2f} s: {verdict}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from flows.deployments import reconcile_flow

    console.say(f"reconciling the journal with {settings.exchange.venue} ...")
    document = _run_flow(settings, lambda: reconcile_flow(repair=args.repair))
    if args.json:
        console.print_json(document)
    else:
        console.say(f"run {document['run_id']}: {document['fills_checked']} venue fills checked,"
                    f" breaks {document['break_counts'] or 'none'},"
                    f" repaired {document['repaired']}")  # fmt: skip
        breaks = document["breaks"]
        assert isinstance(breaks, list)
        console.print_table(
            ["kind", "key", "expected", "actual", "runs", "escalated", "repaired"],
            [[b["kind"], b["key"], b["expected"], b["actual"], b["consecutive_runs"],
              b["escalated"], b["repaired"]] for b in breaks],
        )  # fmt: skip
    return EXIT_OK if document["ok"] else EXIT_BREAKS


def _report(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        from flows.reports import list_reports

        rows = asyncio.run(list_reports(settings.db.effective_dsn()))
        if args.json:
            console.print_json(rows)
        else:
            console.print_table(["report", "day", "html", "json"],
                                [[r["report_id"], r["day"], r["html_uri"], r["json_uri"]]
                                 for r in rows])  # fmt: skip
        return EXIT_OK
    if args.day is not None:
        try:
            date.fromisoformat(args.day)
        except ValueError:
            console.error(f"--day {args.day!r}: expected YYYY-MM-DD")
            return EXIT_USAGE
    from flows.deployments import report_flow

    console.say("building the daily report ...")
    document = _run_flow(settings, lambda: report_flow(day=args.day, dry_run=args.dry_run))
    if args.json:
        console.print_json(document)
    else:
        console.say(f"report {document['report_id']}: {document['html_uri']}")
    return EXIT_OK
