"""The operations around the engines: workflows, drills, replication, backups, reconciliation.

Workflows come from the Temporal SDK's metrics in the worker; drills and replication from
the worker's ``bot4_dr_*`` and ``bot4_pg_*`` gauges; backups and reconciliation from the
flow runner; the control plane from the API's ``bot4_api_*``.
Rare events (a workflow, an activity failure) are counted per hour, not per second.
"""

from __future__ import annotations

from infra.grafana import catalog as m
from infra.grafana import states
from infra.grafana.model import Dashboard, Panel, Query, series

RATE = "$__rate_interval"


def build() -> Dashboard:
    """Return the operations dashboard."""
    return Dashboard(
        uid="bot4-operations",
        title="bot4: operations",
        description="Runbook workflows, disaster-recovery drills, replication, backups,"
        " reconciliation and the control API.",
        refresh="1m",
        time_from="now-24h",
        rows=(_workflows(), _latency(), _drills(), _chores(), _control_plane()),
    )


def _quantiles(histogram: str, *, by: tuple[str, ...] = ()) -> tuple[Query, ...]:
    keys = ", ".join((*by, "le"))
    return tuple(
        Query(
            expr=f"histogram_quantile({q}, sum by ({keys}) (rate({histogram}_bucket[{RATE}])))",
            legend=" ".join((f"p{round(q * 100)}", series(*by))).strip(),
        )
        for q in (0.5, 0.99)
    )


def _workflows() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Workflows completed and failed (per hour)",
            description="Runbook workflows the worker finished, by type; a failed one"
            " names its step in bot4 runbook show.",
            queries=(
                Query(
                    expr=f"sum by (workflow_type) (increase({m.WORKFLOW_COMPLETED}[1h]))"
                    " or vector(0)",
                    legend="completed " + series("workflow_type"),
                ),
                Query(
                    expr=f"sum by (workflow_type) (increase({m.WORKFLOW_FAILED}[1h])) or vector(0)",
                    legend="FAILED " + series("workflow_type"),
                ),
            ),
        ),
        Panel(
            title="Activity failures (per hour)",
            description="Failed activity attempts by type; Temporal retries them by their"
            " policy, so a failure is not yet a failed workflow.",
            queries=(
                Query(
                    expr=f"sum by (activity_type) (increase({m.ACTIVITY_FAILED}[1h])) or vector(0)",
                    legend=series("activity_type"),
                ),
            ),
        ),
        Panel(
            title="Worker task slots available",
            description="Free slots per worker type; zero means tasks queue up.",
            queries=(
                Query(
                    expr=f"sum by (worker_type) ({m.TASK_SLOTS_AVAILABLE})",
                    legend=series("worker_type"),
                ),
            ),
        ),
    )


def _latency() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Workflow task schedule-to-start",
            unit=m.TEMPORAL_DURATION_UNIT,
            description="How long workflow tasks wait for the worker: high means the"
            " worker is down or saturated.",
            queries=_quantiles(m.WORKFLOW_TASK_SCHEDULE_TO_START),
        ),
        Panel(
            title="Activity schedule-to-start",
            unit=m.TEMPORAL_DURATION_UNIT,
            description="How long activity tasks wait for the worker.",
            queries=_quantiles(m.ACTIVITY_SCHEDULE_TO_START),
        ),
        Panel(
            title="Workflow duration",
            unit=m.TEMPORAL_DURATION_UNIT,
            description="End-to-end duration of finished workflows, by type.",
            queries=_quantiles(m.WORKFLOW_END_TO_END, by=("workflow_type",)),
        ),
    )


def _drills() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Last drill RTO",
            kind="stat",
            width=4,
            height=5,
            unit="s",
            thresholds=((0, "green"), (10, "red")),
            description="Recovery time of the last failover drill, as the engine saw it.",
            queries=(Query(expr=m.DRILL_RTO, legend="RTO"),),
            no_value="no drill yet",
        ),
        Panel(
            title="Last drill RPO",
            kind="stat",
            width=4,
            height=5,
            thresholds=states.ZERO_IS_GOOD,
            description="Acknowledged journal facts the last drill found missing (must"
            " be 0: replication is synchronous).",
            queries=(Query(expr=m.DRILL_RPO, legend="missing facts"),),
        ),
        Panel(
            title="Since the last passed drill",
            kind="stat",
            width=4,
            height=5,
            unit="s",
            thresholds=((0, "green"), (states.DAYS_8, "red")),
            description="Run one with bot4 drill failover --wait, or schedule them with"
            " BOT4_WORKER__DRILL_CRON.",
            queries=(Query(expr=f"time() - {m.DRILL_PASSED_AT}", legend="age"),),
        ),
        Panel(
            title="Journal primary",
            kind="stat",
            width=4,
            height=5,
            mappings=states.UP,
            description="Whether the journal database's primary answered the worker.",
            queries=(Query(expr=m.PG_PRIMARY_UP, legend="primary"),),
        ),
        Panel(
            title="Synchronous standbys",
            kind="stat",
            width=4,
            height=5,
            thresholds=((0, "red"), (1, "green")),
            description="Standbys streaming synchronously; 0: commits are acknowledged"
            " without a copy (rejoin the old primary).",
            queries=(Query(expr=m.PG_SYNC_STANDBYS, legend="standbys"),),
        ),
        Panel(
            title="Replication lag",
            kind="stat",
            width=4,
            height=5,
            unit="bytes",
            thresholds=((0, "green"), (16 * 1024 * 1024, "red")),
            description="WAL the standby has not replayed yet; a switchover refuses above 16 MiB.",
            queries=(Query(expr=m.PG_REPLICATION_LAG, legend="lag"),),
        ),
    )


def _chores() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Newest verified backup age",
            unit="s",
            thresholds=((0, "green"), (states.HOURS_26, "red")),
            description="Age of the newest backup whose restore test passed; the alert"
            " fires past 26 h (bot4 backup).",
            queries=(Query(expr=m.BACKUP_AGE, legend="age"),),
        ),
        Panel(
            title="Reconciliation breaks by kind",
            description="Unrepaired breaks of the latest run (missing fill, unknown order,"
            " quantity mismatch, ...); bot4 reconcile --repair journals missing fills.",
            queries=(
                Query(expr=f"sum by (kind) ({m.RECONCILIATION_BREAKS})", legend=series("kind")),
                Query(expr=m.RECONCILIATION_ESCALATED, legend="escalated"),
            ),
        ),
        Panel(
            title="Since the last reconciliation",
            unit="s",
            thresholds=((0, "green"), (states.HOURS_26, "red")),
            description="Age of the latest reconciliation run (nightly by default).",
            queries=(Query(expr=m.RECONCILIATION_AGE, legend="age"),),
        ),
    )


def _control_plane() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Control API requests by status",
            unit="reqps",
            width=6,
            description="Requests per second the control API answered, by status code.",
            queries=(
                Query(
                    expr=f"sum by (status) (rate({m.API_REQUESTS}[{RATE}]))",
                    legend=series("status"),
                ),
            ),
        ),
        Panel(
            title="Control API latency",
            unit="s",
            width=6,
            description="From a request's arrival to its answer, audit row included.",
            queries=_quantiles(m.API_DURATION),
        ),
        Panel(
            title="API authentication failures",
            width=6,
            description="Requests refused for their key, by reason, in each interval; a"
            " spike of unknown keys is someone guessing.",
            queries=(
                Query(
                    expr=f"sum by (reason) (increase({m.API_AUTH_FAILURES}[{RATE}]))",
                    legend=series("reason"),
                ),
            ),
        ),
        Panel(
            title="API rate-limit refusals",
            width=6,
            description="Requests refused with 429, by token bucket, in each interval.",
            queries=(
                Query(
                    expr=f"sum by (bucket) (increase({m.API_RATE_LIMITED}[{RATE}]))",
                    legend=series("bucket"),
                ),
            ),
        ),
    )
