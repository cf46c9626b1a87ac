"""The Prefect flows of the chores, and the deployments ``bot4 flows serve`` serves.

Flows are thin: the logic lives in :mod:`flows.backups`, :mod:`flows.reconciliation`
and :mod:`flows.reports`; a flow orchestrates tasks with retries and returns the JSON of
the typed report (also stored in PostgreSQL). All flows are async: a sync flow costs
about a second at exit here.

Settings: a flow run is an entry point. The served runs (subprocesses of the runner)
read ``BOT4_*`` from the environment the launcher gave the runner; a process that runs a
flow in-process (the CLI, a test) binds its own :class:`Settings` with
:func:`bind_settings` first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, Final

import asyncpg
from prefect import flow, task

from bot4.settings import Settings

FLOW_NAMES: Final = ("backup", "reconcile", "report")
DEPLOYMENT: Final = "scheduled"

_bound: Settings | None = None


def bind_settings(settings: Settings) -> None:
    """Make ``settings`` the settings of flows run in this process."""
    global _bound  # noqa: PLW0603 - one process-wide binding, set by entry points only
    _bound = settings


def current_settings() -> Settings:
    """Return the bound settings, else build them from the environment."""
    return _bound if _bound is not None else Settings()


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Return the environment a Prefect client process of this stack needs."""
    from infra.stack.prefect_server import prefect_client_env

    home = settings.home / "prefect-client"
    home.mkdir(parents=True, exist_ok=True)
    return prefect_client_env(api_url=settings.prefect.effective_api_url(), home=str(home))


@contextmanager
def stack_prefect(settings: Settings) -> Iterator[None]:
    """Run flows inside this block against the stack's Prefect server.

    Prefect reads the environment once, when it is imported: the server's URL is also set
    as a temporary Prefect setting, so the order of imports does not matter.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    environment = prefect_environment(settings)
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)
    try:
        with temporary_settings(updates={PREFECT_API_URL: environment["PREFECT_API_URL"]}):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- backup -------------------------------------------------------------------------


@task(name="pg-dump-upload", retries=2, retry_delay_seconds=[5, 30])
async def backup_task() -> dict[str, Any]:
    """Dump the database and upload it with its manifest."""
    from flows.backups import take_backup
    from flows.objstore import ObjectStore

    settings = current_settings()
    store = ObjectStore.open(settings.storage.backup_uri, settings.storage)
    report = await take_backup(
        dsn=settings.db.effective_dsn(), store=store, database=settings.db.database
    )
    return report.as_json()


@task(name="restore-test", retries=1, retry_delay_seconds=[10])
async def restore_test_task(backup_id: str) -> dict[str, Any]:
    """Restore the backup into a scratch server and compare it with its manifest."""
    from flows.backups import restore_test
    from flows.objstore import ObjectStore

    settings = current_settings()
    store = ObjectStore.open(settings.storage.backup_uri, settings.storage)
    report = await restore_test(dsn=settings.db.effective_dsn(), store=store, backup_id=backup_id)
    return report.as_json()


@task(name="retention", retries=2, retry_delay_seconds=[5, 30])
async def retention_task(dry_run: bool) -> dict[str, Any]:
    """Apply the retention policy (N daily, M weekly, never the newest verified)."""
    from flows.backups import apply_retention
    from flows.objstore import ObjectStore

    settings = current_settings()
    store = ObjectStore.open(settings.storage.backup_uri, settings.storage)
    report = await apply_retention(
        dsn=settings.db.effective_dsn(), store=store, keep_daily=settings.flows.keep_daily,
        keep_weekly=settings.flows.keep_weekly, dry_run=dry_run,
    )  # fmt: skip
    return report.as_json()


@flow(name="backup", log_prints=False)
async def backup_flow(dry_run: bool = False) -> dict[str, Any]:
    """Back up, restore-test the backup, apply retention (``dry_run``: only plan retention)."""
    if dry_run:
        return {"dry_run": True, "retention": await retention_task(True)}
    backup = await backup_task()
    tested = await restore_test_task(str(backup["backup_id"]))
    retention = await retention_task(False)
    return {"dry_run": False, "backup": backup, "restore_test": tested, "retention": retention,
            "ok": bool(tested["ok"])}  # fmt: skip


# -- reconciliation -----------------------------------------------------------------


@task(name="reconcile-venue", retries=2, retry_delay_seconds=[10, 60])
async def reconcile_task(repair: bool) -> dict[str, Any]:
    """Compare journal and venue; store the run and its breaks."""
    from engine.execution import open_session
    from flows.reconciliation import ReconcileConfig, reconcile

    settings = current_settings()
    config = ReconcileConfig(
        venue=settings.exchange.venue, symbols=settings.exchange.symbols,
        quantity_tolerance=settings.flows.quantity_tolerance,
        price_tolerance=settings.flows.price_tolerance,
        escalate_after_runs=settings.flows.escalate_after_runs,
        settle_s=settings.flows.settle_s,
    )  # fmt: skip
    session = await open_session(settings.exchange)
    try:
        async with asyncpg.create_pool(settings.db.effective_dsn(), min_size=1, max_size=3) as pool:
            report = await reconcile(pool, session, config=config, repair=repair)
    finally:
        await session.close()
    return report.as_json()


@flow(name="reconcile", log_prints=False)
async def reconcile_flow(repair: bool = False) -> dict[str, Any]:
    """Reconcile the journal with the venue; ``repair`` journals missing fills (audited)."""
    return await reconcile_task(repair)


# -- reports ------------------------------------------------------------------------


@task(name="daily-report", retries=2, retry_delay_seconds=[10, 60])
async def report_task(day: str | None, dry_run: bool) -> dict[str, Any]:
    """Render the daily report of ``day`` (default: yesterday, UTC) and store it."""
    from flows.objstore import ObjectStore
    from flows.reports import build_daily_report

    settings = current_settings()
    the_day = date.fromisoformat(day) if day else date.today() - timedelta(days=1)
    store = ObjectStore.open(settings.flows.reports_uri, settings.storage)
    report = await build_daily_report(
        dsn=settings.db.effective_dsn(), store=store, day=the_day,
        venue=settings.exchange.venue, dry_run=dry_run,
    )  # fmt: skip
    return report.as_json()


@flow(name="report", log_prints=False)
async def report_flow(day: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Build the daily report (HTML with charts, and JSON) into the object store."""
    return await report_task(day, dry_run)


FLOWS: Final[dict[str, Any]] = {
    "backup": backup_flow,
    "reconcile": reconcile_flow,
    "report": report_flow,
}


def schedules(settings: Settings) -> dict[str, Any]:
    """Return each flow's Prefect schedule: its cron (UTC), or every ``flows.interval_s``."""
    from prefect.schedules import Cron, Interval

    if settings.flows.interval_s is not None:
        every = timedelta(seconds=settings.flows.interval_s)
        return {name: Interval(every, timezone="UTC") for name in FLOW_NAMES}
    return {
        "backup": Cron(settings.flows.backup_cron, timezone="UTC"),
        "reconcile": Cron(settings.flows.reconcile_cron, timezone="UTC"),
        "report": Cron(settings.flows.report_cron, timezone="UTC"),
    }
