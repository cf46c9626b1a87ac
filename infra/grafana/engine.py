"""One engine up close: latency, order flow, venue trouble, journal, book.

Filtered by the ``color`` variable (All by default). Latency panels show p50 and p99 from
the histograms' buckets: ``histogram_quantile`` over the per-second rate of ``_bucket``,
summed by color and ``le`` first so a quantile never mixes the two engines.
"""

from __future__ import annotations

from infra.grafana import catalog as m
from infra.grafana import states
from infra.grafana.model import Dashboard, Panel, Query, Variable, series

C = m.COLOR_LABEL
RATE = "$__rate_interval"
ONE = f'{C}=~"$color"'  # the selected engines


def build() -> Dashboard:
    """Return the engine dashboard."""
    return Dashboard(
        uid="bot4-engine",
        title="bot4: engine",
        description="Latency, orders, fills, denials, venue faults, journal and book of"
        " the engines (pick a color).",
        variables=(Variable(name="color", label=C, metric=m.TRADING_STATE),),
        refresh="10s",
        time_from="now-1h",
        rows=(_state(), _latency(), _flow(), _venue(), _book()),
    )


def quantiles(histogram: str, *, by: tuple[str, ...] = ()) -> tuple[Query, ...]:
    """Return p50 and p99 of ``histogram`` per color (and ``by`` labels)."""
    keys = ", ".join((C, *by, "le"))
    return tuple(
        Query(
            expr=f"histogram_quantile({q}, sum by ({keys}) "
            f"(rate({histogram}_bucket{{{ONE}}}[{RATE}])))",
            legend=f"p{round(q * 100)} " + series(C, *by),
        )
        for q in (0.5, 0.99)
    )


def _state() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Trading state",
            kind="state-timeline",
            width=12,
            height=5,
            mappings=states.TRADING_STATES,
            description="ACTIVE, REDUCING (only risk-reducing orders) or HALTED (cancels"
            " only), over time.",
            queries=(Query(expr=f"max by ({C}) ({m.TRADING_STATE}{{{ONE}}})", legend=series(C)),),
        ),
        Panel(
            title="Lease epoch",
            kind="stat",
            width=6,
            height=5,
            thresholds=((0, "blue"),),
            description="The fencing token this engine holds; 0: it holds no lease.",
            queries=(Query(expr=f"max by ({C}) ({m.LEASE_EPOCH}{{{ONE}}})", legend=series(C)),),
        ),
        Panel(
            title="Market-data lag",
            kind="stat",
            width=6,
            height=5,
            unit="s",
            thresholds=((0, "green"), (1, "orange"), (5, "red")),
            description="Age of the newest market-data event the strategy has seen.",
            queries=(Query(expr=f"max by ({C}) ({m.MARKET_DATA_LAG}{{{ONE}}})", legend=series(C)),),
        ),
    )


def _latency() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Tick to decision",
            width=6,
            unit="s",
            description="From a market-data event's arrival to the strategy's decision on"
            " it (the numba path).",
            queries=quantiles(m.TICK_TO_DECISION),
        ),
        Panel(
            title="Tick to order",
            width=6,
            unit="s",
            description="From a market-data message's arrival to the order request handed to ccxt.",
            queries=quantiles(m.TICK_TO_ORDER),
        ),
        Panel(
            title="Order round trip",
            width=6,
            unit="s",
            description="From handing an order request to the venue to its"
            " acknowledgement, by action.",
            queries=quantiles(m.ORDER_ROUND_TRIP, by=("action",)),
        ),
        Panel(
            title="Event loop lag",
            width=6,
            unit="s",
            description="How long the safety thread's probe (every 100 ms) waited for the"
            " engine's event loop; a wait over 1 s is a stall (engine_loop_stalled in the"
            " log names the call that held it); the stalls per interval beside it.",
            queries=(
                *quantiles(m.LOOP_LAG),
                Query(
                    expr=f"sum by ({C}) (increase({m.LOOP_STALLS}{{{ONE}}}[{RATE}]))",
                    legend="stalls " + series(C),
                ),
            ),
        ),
    )


def _flow() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Orders by outcome",
            unit="ops",
            description="Orders per second: sent, acknowledged, rejected, cancelled,"
            " unknown_outcome (resolved by client order id, never re-sent blindly).",
            queries=(
                Query(
                    expr=f"sum by (outcome) (rate({m.ORDERS}{{{ONE}}}[{RATE}]))",
                    legend=series("outcome"),
                ),
            ),
        ),
        Panel(
            title="Fills by liquidity",
            unit="ops",
            description="Fills per second by symbol and liquidity (maker, taker).",
            queries=(
                Query(
                    expr=f"sum by (symbol, liquidity) (rate({m.FILLS}{{{ONE}}}[{RATE}]))",
                    legend=series("symbol", "liquidity"),
                ),
            ),
        ),
        Panel(
            title="Risk denials by reason",
            unit="ops",
            description="Decisions the pre-trade risk check denied, per second, by reason.",
            queries=(
                Query(
                    expr=f"sum by (reason) (rate({m.DENIALS}{{{ONE}}}[{RATE}]))",
                    legend=series("reason"),
                ),
            ),
        ),
    )


def _venue() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Retries",
            unit="ops",
            width=6,
            description="Engine retries (journal, lease, resolutions) and venue retry"
            " decisions (retried, recovered, exhausted), per second.",
            queries=(
                Query(
                    # none counted yet means none happened: 0, not an empty panel
                    expr=f"sum by (operation) (rate({m.ENGINE_RETRIES}{{{ONE}}}[{RATE}]))"
                    " or vector(0)",
                    legend="engine " + series("operation"),
                ),
                Query(
                    expr=f"sum by (endpoint_group, outcome) "
                    f"(rate({m.VENUE_RETRIES}{{{ONE}}}[{RATE}]))",
                    legend="venue " + series("endpoint_group", "outcome"),
                ),
            ),
        ),
        Panel(
            title="Reconnects",
            width=6,
            description="Reconnects of the engine's connections and of the venue's"
            " websocket streams, in each interval.",
            queries=(
                Query(
                    expr=f"sum by (connection) (increase({m.ENGINE_RECONNECTS}{{{ONE}}}[{RATE}]))"
                    " or vector(0)",
                    legend=series("connection"),
                ),
                Query(
                    expr=f"sum by (stream) "
                    f"(increase({m.VENUE_WEBSOCKET_RECONNECTS}{{{ONE}}}[{RATE}])) or vector(0)",
                    legend="websocket " + series("stream"),
                ),
            ),
        ),
        Panel(
            title="Resyncs",
            width=6,
            description="Engine state resynchronisations and order book resyncs from a"
            " REST snapshot, in each interval.",
            queries=(
                Query(
                    expr=f"sum by (subject, reason) "
                    f"(increase({m.ENGINE_RESYNCS}{{{ONE}}}[{RATE}]))",
                    legend=series("subject", "reason"),
                ),
                Query(
                    expr=f"sum by (symbol, reason) "
                    f"(increase({m.VENUE_BOOK_RESYNCS}{{{ONE}}}[{RATE}])) or vector(0)",
                    legend="book " + series("symbol", "reason"),
                ),
            ),
        ),
        Panel(
            title="Venue requests by outcome",
            unit="reqps",
            width=6,
            description="Venue REST requests per second by endpoint group and outcome; a"
            " storm of temporary errors opens the circuit breaker.",
            queries=(
                Query(
                    expr=f"sum by (endpoint_group, outcome) "
                    f"(rate({m.VENUE_REQUESTS}{{{ONE}}}[{RATE}]))",
                    legend=series("endpoint_group", "outcome"),
                ),
            ),
        ),
    )


def _book() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Circuit breaker state",
            kind="state-timeline",
            width=12,
            height=6,
            mappings=states.BREAKER_STATES,
            description="Per venue endpoint group: closed, half-open (probing), OPEN"
            " (sends fail fast, the engine lowers itself to REDUCING).",
            queries=(
                Query(
                    expr=f"max by ({C}, endpoint_group) ({m.CIRCUIT_BREAKER_STATE}{{{ONE}}})",
                    legend=series(C, "endpoint_group"),
                ),
            ),
        ),
        Panel(
            title="Circuit breaker transitions",
            width=12,
            height=6,
            description="Transitions of the venue circuit breakers, in each interval.",
            queries=(
                Query(
                    expr=f"sum by (endpoint_group, to_state) "
                    f"(increase({m.VENUE_CIRCUIT_TRANSITIONS}{{{ONE}}}[{RATE}]))",
                    legend=series("endpoint_group") + " to " + series("to_state"),
                ),
            ),
        ),
        Panel(
            title="Journal lag",
            unit="s",
            thresholds=((0, "green"), (1, "orange"), (5, "red")),
            description="Age of the oldest journal event not yet committed: the backlog"
            " PostgreSQL has not taken yet.",
            queries=(Query(expr=f"max by ({C}) ({m.JOURNAL_LAG}{{{ONE}}})", legend=series(C)),),
        ),
        Panel(
            title="Positions (lots)",
            description="The strategy's position per symbol, in the venue's lots.",
            queries=(
                Query(
                    expr=f"sum by ({C}, symbol) ({m.POSITION}{{{ONE}}})", legend=series(C, "symbol")
                ),
            ),
        ),
        Panel(
            title="PnL (quote currency)",
            description="Profit and loss by kind.",
            queries=(
                Query(expr=f"sum by ({C}, kind) ({m.PNL}{{{ONE}}})", legend=series(C, "kind")),
            ),
        ),
    )
