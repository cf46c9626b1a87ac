"""Every metric name the dashboards query, in one place.

The dashboards never spell a metric name themselves: they build their expressions from
these constants, so a rename in the code is one edit here (and
``tests/infra/test_grafana_dashboards.py`` fails until it is made: it checks every name an
expression uses against what the processes really export).

Where each family comes from:

- ``bot4_engine_*``: the engine, ``engine/live/metrics.py`` (prometheus-client, the engine's
  control ``/metrics``); ``bot4_venue_*``: its exchange adapter,
  ``engine/execution/metrics.py``, on the same endpoint. The engine's color comes from the
  scrape target's labels (:data:`COLOR_LABEL`), not from a label of its own.
- ``bot4_backup_*``, ``bot4_reconciliation_*``: the flow runner, ``flows/metrics.py``.
- ``bot4_dr_*``, ``bot4_pg_*``: the Temporal worker's SDK meter,
  ``workflows/dr_failover/gauges.py``.
- ``bot4_api_*``: the control API, ``bot4/api/metrics.py``.
- ``temporal_*``: the Temporal SDK's own Prometheus exporter in the worker
  (``workflows/worker.py``), named by the worker's ``PrometheusConfig``; checked by
  scraping a real worker (``tests/infra/test_grafana_worker_metrics.py``).
- ``up`` and ``ALERTS``: written by Prometheus itself (scrape health, alert state).
"""

from __future__ import annotations

from typing import Final

# Labels the scrape configuration (infra/prometheus/prometheus.yml) attaches: an engine
# exports no color of its own, and blue-green keeps one engine target down by design.
COLOR_LABEL: Final = "color"
ENGINE_JOB: Final = "engine"

# --- engine (engine/live/metrics.py) ----------------------------------------------------
TICK_TO_DECISION: Final = "bot4_engine_tick_to_decision_seconds"  # histogram
TICK_TO_ORDER: Final = "bot4_engine_tick_to_order_seconds"  # histogram
ORDER_ROUND_TRIP: Final = "bot4_engine_order_round_trip_seconds"  # histogram, by action
ORDERS: Final = "bot4_engine_orders_total"  # by symbol, side, outcome
FILLS: Final = "bot4_engine_fills_total"  # by symbol, side, liquidity
DENIALS: Final = "bot4_engine_denials_total"  # by reason
ENGINE_RETRIES: Final = "bot4_engine_retries_total"  # by operation
ENGINE_RECONNECTS: Final = "bot4_engine_reconnects_total"  # by connection
ENGINE_RESYNCS: Final = "bot4_engine_resyncs_total"  # by subject, reason
CIRCUIT_BREAKER_STATE: Final = "bot4_engine_circuit_breaker_state"  # 0 closed 1 half 2 open
POSITION: Final = "bot4_engine_position_lots"  # by symbol, in the venue's lots
PNL: Final = "bot4_engine_pnl"  # by kind
TRADING_STATE: Final = "bot4_engine_trading_state"  # 0 ACTIVE 1 REDUCING 2 HALTED
LEASE_EPOCH: Final = "bot4_engine_lease_epoch"  # 0 when the engine holds no lease
KILL_SWITCH_ENGAGED: Final = "bot4_engine_kill_switch_engaged"
MARKET_DATA_LAG: Final = "bot4_engine_market_data_lag_seconds"
JOURNAL_LAG: Final = "bot4_engine_journal_lag_seconds"
LOOP_LAG: Final = "bot4_engine_loop_lag_seconds"  # histogram: the safety thread's probes
LOOP_STALLS: Final = "bot4_engine_loop_stalls_total"  # probes that waited over a second

# --- exchange adapter (engine/execution/metrics.py) ------------------------------------
VENUE_REQUESTS: Final = "bot4_venue_requests_total"  # by venue, endpoint_group, outcome
VENUE_RETRIES: Final = "bot4_venue_retries_total"  # by venue, endpoint_group, outcome
VENUE_CIRCUIT_TRANSITIONS: Final = "bot4_venue_circuit_transitions_total"
VENUE_WEBSOCKET_RECONNECTS: Final = "bot4_venue_websocket_reconnects_total"  # by stream
VENUE_BOOK_RESYNCS: Final = "bot4_venue_book_resyncs_total"  # by symbol, reason

# --- chores (flows/metrics.py) -----------------------------------------------------------
BACKUP_AGE: Final = "bot4_backup_newest_verified_age_seconds"  # +Inf: none verified
RECONCILIATION_BREAKS: Final = "bot4_reconciliation_breaks"  # by kind
RECONCILIATION_ESCALATED: Final = "bot4_reconciliation_escalated_breaks"
RECONCILIATION_AGE: Final = "bot4_reconciliation_last_run_age_seconds"

# --- drills and replication (workflows/dr_failover/gauges.py) ---------------------------
DRILL_RTO: Final = "bot4_dr_last_drill_rto_seconds"
DRILL_RPO: Final = "bot4_dr_last_drill_rpo_events"
DRILL_PASSED_AT: Final = "bot4_dr_last_passed_drill_timestamp_seconds"
PG_PRIMARY_UP: Final = "bot4_pg_primary_up"
PG_SYNC_STANDBYS: Final = "bot4_pg_sync_standbys"
PG_REPLICATION_LAG: Final = "bot4_pg_replication_lag_bytes"

# --- Temporal SDK, in the worker -------------------------------------------------------
# The worker's PrometheusConfig asks for Prometheus conventions (counters_total_suffix,
# unit_suffix, durations_as_seconds); with the SDK's defaults these would lose their
# _total / _seconds and the histograms would be in milliseconds.
WORKFLOW_COMPLETED: Final = "temporal_workflow_completed_total"  # by workflow_type
WORKFLOW_FAILED: Final = "temporal_workflow_failed_total"  # by workflow_type
WORKFLOW_END_TO_END: Final = "temporal_workflow_endtoend_latency_seconds"  # histogram
ACTIVITY_FAILED: Final = "temporal_activity_execution_failed_total"  # by activity_type
WORKFLOW_TASK_SCHEDULE_TO_START: Final = (
    "temporal_workflow_task_schedule_to_start_latency_seconds"  # histogram
)
ACTIVITY_SCHEDULE_TO_START: Final = "temporal_activity_schedule_to_start_latency_seconds"
TASK_SLOTS_AVAILABLE: Final = "temporal_worker_task_slots_available"  # by worker_type
TEMPORAL_DURATION_UNIT: Final = "s"  # of the SDK's histograms ("ms" with its defaults)

# --- control API (bot4/api/metrics.py) ----------------------------------------------------
API_REQUESTS: Final = "bot4_api_requests_total"  # by method, route, status
API_DURATION: Final = "bot4_api_request_duration_seconds"  # histogram, by method, route
API_AUTH_FAILURES: Final = "bot4_api_auth_failures_total"  # by reason
API_RATE_LIMITED: Final = "bot4_api_rate_limit_refusals_total"  # by bucket

# --- written by Prometheus itself -------------------------------------------------------
UP: Final = "up"
ALERTS: Final = "ALERTS"
PROMETHEUS_BUILTIN: Final = frozenset({UP, ALERTS})
