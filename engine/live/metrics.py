"""Prometheus metrics of the live engine, all in one place.

The engine updates them; the control server's ``/metrics`` exposes them (with the
adapter's ``bot4_venue_*`` metrics, which live in :mod:`engine.execution.metrics`). Labels
use full words. One engine runs per process, so the instance and color come from the
scrape target's labels, not from labels here.

Histogram buckets are chosen for what each measures: tick-to-decision is a numba path
(microseconds to a few milliseconds); an order round trip is a venue REST call
(milliseconds to seconds); a halt must finish within one second.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from engine.live.gate import GateChange, TradingGate

TICK_TO_DECISION: Final = Histogram(
    "bot4_engine_tick_to_decision_seconds",
    "From a market-data event's arrival to the strategy's decision on it.",
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1),
)
TICK_TO_ORDER: Final = Histogram(
    "bot4_engine_tick_to_order_seconds",
    "From a market-data message's arrival to the order request handed to ccxt.",
    buckets=(5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0),
)
ORDER_ROUND_TRIP: Final = Histogram(
    "bot4_engine_order_round_trip_seconds",
    "From handing an order request to the venue to its acknowledgement, by action.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HALT_DURATION: Final = Histogram(
    "bot4_engine_halt_seconds",
    "From a halt request to verified cancel-all at the venue, by the path that asked.",
    ["path"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LOOP_LAG: Final = Histogram(
    "bot4_engine_loop_lag_seconds",
    "How long a probe posted to the engine's event loop waited to run (every 100 ms).",
    buckets=(5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
LOOP_STALLS: Final = Counter(
    "bot4_engine_loop_stalls_total",
    "Times the engine's event loop did not run a probe within a second (engine_loop_stalled).",
)

ORDERS: Final = Counter(
    "bot4_engine_orders_total",
    "Orders by outcome (sent, acknowledged, rejected, cancelled, unknown_outcome).",
    ["symbol", "side", "outcome"],
)
FILLS: Final = Counter(
    "bot4_engine_fills_total",
    "Fills received, by liquidity (maker, taker).",
    ["symbol", "side", "liquidity"],
)
DENIALS: Final = Counter(
    "bot4_engine_denials_total",
    "Decisions the pre-trade risk check denied, by deny reason.",
    ["reason"],
)
RETRIES: Final = Counter(
    "bot4_engine_retries_total",
    "Engine-level retries (journal writes, lease renewals, resolutions), by operation.",
    ["operation"],
)
RECONNECTS: Final = Counter(
    "bot4_engine_reconnects_total",
    "Reconnects of the engine's own connections (database, kill_switch, market_data).",
    ["connection"],
)
RESYNCS: Final = Counter(
    "bot4_engine_resyncs_total",
    "Resynchronisations of engine state (book, positions, open orders), by reason.",
    ["subject", "reason"],
)
HALTS: Final = Counter(
    "bot4_engine_halts_total",
    "Halts executed, by path (control, kill_switch, engine) and verification outcome.",
    ["path", "outcome"],
)
KILL_SWITCH_READ_FAILURES: Final = Counter(
    "bot4_engine_kill_switch_read_failures_total",
    "Polls of the PostgreSQL kill-switch flag that failed (connection or query).",
)

CIRCUIT_BREAKER_STATE: Final = Gauge(
    "bot4_engine_circuit_breaker_state",
    "Circuit breaker state per venue endpoint group: 0 closed, 1 half-open, 2 open.",
    ["endpoint_group"],
)
POSITION: Final = Gauge(
    "bot4_engine_position_lots",
    "The strategy's position in lots (the venue's lot size of the symbol), by symbol.",
    ["symbol"],
)
PNL: Final = Gauge(
    "bot4_engine_pnl",
    "Profit and loss since the engine started, in the quote currency, by kind (mark_to_market).",
    ["kind"],
)
TRADING_STATE: Final = Gauge(
    "bot4_engine_trading_state",
    "Trading state: 0 ACTIVE, 1 REDUCING, 2 HALTED.",
)
EPOCH: Final = Gauge(
    "bot4_engine_lease_epoch",
    "Epoch (fencing token) of the trading lease this engine holds; 0 when it holds none.",
)
KILL_SWITCH_ENGAGED: Final = Gauge(
    "bot4_engine_kill_switch_engaged",
    "1 while the desk's PostgreSQL kill-switch flag was last read as engaged.",
)
KILL_SWITCH_AGE: Final = Gauge(
    "bot4_engine_kill_switch_read_age_seconds",
    "Seconds since the kill-switch flag was last read successfully.",
)
MARKET_DATA_LAG: Final = Gauge(
    "bot4_engine_market_data_lag_seconds",
    "Age of the newest market-data event the strategy has seen.",
)
JOURNAL_LAG: Final = Gauge(
    "bot4_engine_journal_lag_seconds",
    "Age of the oldest journal event not yet committed to PostgreSQL.",
)


def track_gate(gate: TradingGate) -> None:
    """Keep ``bot4_engine_trading_state`` equal to ``gate``'s state from now on.

    The gauge is set at once and then on every change, on the changing thread (the
    gauge is thread-safe), so a halt shows in ``/metrics`` even while the strategy
    loop is stuck.
    """
    TRADING_STATE.set(gate.state)

    def update(change: GateChange) -> None:
        TRADING_STATE.set(change.after)

    gate.on_change(update)
