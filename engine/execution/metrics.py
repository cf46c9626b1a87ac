"""Prometheus metrics of the exchange adapter, all in one place.

Labels use full words. Counters only go up; a test reads them before and after an action
and compares the difference.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

REQUESTS: Final = Counter(
    "bot4_venue_requests_total",
    "Venue REST requests by outcome (ok, temporary, rate_limited, rejected, unknown_outcome,"
    " operational, circuit_open).",
    ["venue", "endpoint_group", "outcome"],
)
RETRIES: Final = Counter(
    "bot4_venue_retries_total",
    "Retry decisions: retried (a retry was scheduled), recovered (success after retries),"
    " exhausted (gave up: attempts or time budget spent).",
    ["venue", "endpoint_group", "outcome"],
)
BREAKER_TRANSITIONS: Final = Counter(
    "bot4_venue_circuit_transitions_total",
    "Circuit breaker state transitions.",
    ["venue", "endpoint_group", "from_state", "to_state"],
)
BREAKER_OPEN: Final = Gauge(
    "bot4_venue_circuit_open",
    "1 while the circuit breaker of a venue endpoint group is open or half-open.",
    ["venue", "endpoint_group"],
)
USED_WEIGHT: Final = Gauge(
    "bot4_venue_used_weight",
    "Request weight used in the venue's current window, from its response headers.",
    ["venue"],
)
RATE_LIMIT_DELAYS: Final = Counter(
    "bot4_venue_rate_limit_delays_total",
    "Requests delayed by our own pacing (near the weight limit or after a 429).",
    ["venue", "reason"],
)
UNKNOWN_OUTCOMES: Final = Counter(
    "bot4_venue_unknown_outcomes_total",
    "Order sends whose answer was lost, by how they were resolved.",
    ["venue", "resolution"],
)
WEBSOCKET_RECONNECTS: Final = Counter(
    "bot4_venue_websocket_reconnects_total",
    "Websocket stream reconnects.",
    ["venue", "stream"],
)
BOOK_RESYNCS: Final = Counter(
    "bot4_venue_book_resyncs_total",
    "Order book resynchronisations from a REST snapshot, by reason.",
    ["venue", "symbol", "reason"],
)
STREAM_STALE: Final = Counter(
    "bot4_venue_stream_stale_total",
    "Times a market-data stream went stale (no message within its limit).",
    ["venue", "stream"],
)
TRADES_BACKFILLED: Final = Counter(
    "bot4_venue_trades_backfilled_total",
    "Public trades fetched over REST after a websocket reconnect or a trade-id gap.",
    ["venue", "symbol"],
)
TRADES_LOST: Final = Counter(
    "bot4_venue_trades_lost_total",
    "Public trades missed by the stream and older than the venue's recent-trades window"
    " (not recoverable by backfill; on Binance-like venues with per-symbol trade ids).",
    ["venue", "symbol"],
)
DEADMAN_REFRESHES: Final = Counter(
    "bot4_venue_deadman_refreshes_total",
    "Refreshes of the venue dead-man's switch (countdownCancelAll), by outcome.",
    ["venue", "outcome"],
)
