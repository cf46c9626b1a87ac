"""The desk at a glance: is anything wrong right now, and where to look next.

Top row: what the engines do (state, role, lease, kill switch); then money and market
data; then the order flow and the venue; then the platform around the engines (scrape
targets, alerts, backups, reconciliation, drills). Each figure links, by its panel title,
to the engine or operations dashboard that explains it.
"""

from __future__ import annotations

from infra.grafana import catalog as m
from infra.grafana import states
from infra.grafana.model import Dashboard, Panel, Query, series

C = m.COLOR_LABEL
RATE = "$__rate_interval"


def build() -> Dashboard:
    """Return the overview dashboard."""
    return Dashboard(
        uid="bot4-overview",
        title="bot4: desk overview",
        description="Desk health at a glance: engines, money, order flow, platform.",
        rows=(_engines(), _money(), _flow(), _platform()),
    )


def _engines() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Trading state by color",
            kind="stat",
            width=6,
            height=4,
            mappings=states.TRADING_STATES,
            description="ACTIVE trades; REDUCING only reduces risk; HALTED only cancels."
            " Only an operator raises it again (bot4 engine resume).",
            queries=(Query(expr=f"max by ({C}) ({m.TRADING_STATE})", legend=series(C)),),
        ),
        Panel(
            title="Role by color",
            kind="stat",
            width=6,
            height=4,
            mappings=states.ROLES,
            description="Leader: holds the trading lease (epoch > 0). The other color runs"
            " as a warm standby.",
            queries=(Query(expr=f"max by ({C}) ({m.LEASE_EPOCH} > bool 0)", legend=series(C)),),
        ),
        Panel(
            title="Leader epoch",
            kind="stat",
            width=4,
            height=4,
            thresholds=((0, "blue"),),
            description="Fencing token of the trading lease; it grows on every handoff.",
            queries=(Query(expr=f"max({m.LEASE_EPOCH})", legend="epoch"),),
        ),
        Panel(
            title="Engines holding the lease",
            kind="stat",
            width=4,
            height=4,
            thresholds=((0, "red"), (1, "green"), (2, "red")),
            description="Exactly one: none means nobody trades, two means fencing failed.",
            queries=(Query(expr=f"count({m.LEASE_EPOCH} > 0) or vector(0)", legend="leaders"),),
        ),
        Panel(
            title="Desk kill switch",
            kind="stat",
            width=4,
            height=4,
            mappings=states.ENGAGED,
            description="The PostgreSQL kill-switch flag as the engines last read it.",
            queries=(Query(expr=f"max({m.KILL_SWITCH_ENGAGED})", legend="kill switch"),),
        ),
    )


def _money() -> tuple[Panel, ...]:
    return (
        Panel(
            title="PnL (quote currency)",
            description="Profit and loss by kind, per engine color.",
            queries=(Query(expr=f"sum by ({C}, kind) ({m.PNL})", legend=series(C, "kind")),),
        ),
        Panel(
            title="Positions (lots)",
            description="The strategy's position per symbol and engine color, in the venue's lots.",
            queries=(
                Query(expr=f"sum by ({C}, symbol) ({m.POSITION})", legend=series(C, "symbol")),
            ),
        ),
        Panel(
            title="Market-data lag",
            unit="s",
            thresholds=((0, "green"), (1, "orange"), (5, "red")),
            description="Age of the newest market-data event the strategy has seen.",
            queries=(Query(expr=f"max by ({C}) ({m.MARKET_DATA_LAG})", legend=series(C)),),
        ),
    )


def _flow() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Orders by outcome",
            unit="ops",
            width=6,
            description="Orders per second by outcome (sent, acknowledged, rejected, ...).",
            queries=(
                Query(
                    expr=f"sum by (outcome) (rate({m.ORDERS}[{RATE}]))", legend=series("outcome")
                ),
            ),
        ),
        Panel(
            title="Fills by symbol",
            unit="ops",
            width=6,
            description="Fills per second by symbol.",
            queries=(
                Query(expr=f"sum by (symbol) (rate({m.FILLS}[{RATE}]))", legend=series("symbol")),
            ),
        ),
        Panel(
            title="Circuit breakers",
            kind="stat",
            width=6,
            mappings=states.BREAKER_STATES,
            description="Per venue endpoint group; open means sends fail fast and the"
            " engine lowers itself to REDUCING.",
            queries=(
                Query(
                    expr=f"max by ({C}, endpoint_group) ({m.CIRCUIT_BREAKER_STATE})",
                    legend=series(C, "endpoint_group"),
                ),
            ),
        ),
        Panel(
            title="Journal lag",
            unit="s",
            width=6,
            thresholds=((0, "green"), (1, "orange"), (5, "red")),
            description="Age of the oldest journal event not yet committed to PostgreSQL:"
            " the journal's backlog. The engine cannot record, so it stops trading.",
            queries=(Query(expr=f"max by ({C}) ({m.JOURNAL_LAG})", legend=series(C)),),
        ),
    )


def _platform() -> tuple[Panel, ...]:
    return (
        Panel(
            title="Scrape targets",
            kind="stat",
            width=8,
            height=6,
            mappings=states.UP,
            description="Every job Prometheus scrapes: DOWN means its metrics (and likely"
            " the process) are gone. The engine job is up while one color answers:"
            " blue-green keeps the other one stopped by design.",
            queries=(
                Query(
                    expr=f'min by (job) ({m.UP}{{job!="{m.ENGINE_JOB}"}})'
                    f' or max by (job) ({m.UP}{{job="{m.ENGINE_JOB}"}})',
                    legend=series("job"),
                ),
            ),
        ),
        Panel(
            title="Firing alerts",
            kind="stat",
            width=4,
            height=6,
            thresholds=states.ZERO_IS_GOOD,
            description="Alerts firing now; each names its runbook.",
            queries=(
                Query(
                    expr=f'count({m.ALERTS}{{alertstate="firing"}}) or vector(0)', legend="firing"
                ),
            ),
        ),
        Panel(
            title="Newest verified backup",
            kind="stat",
            width=4,
            height=6,
            unit="s",
            thresholds=((0, "green"), (states.HOURS_26, "red")),
            description="Age of the newest backup whose restore test passed (Infinity:"
            " none). bot4 backup runs one now.",
            queries=(Query(expr=m.BACKUP_AGE, legend="age"),),
        ),
        Panel(
            title="Reconciliation breaks",
            kind="stat",
            width=4,
            height=6,
            thresholds=states.ZERO_IS_GOOD,
            description="Unrepaired breaks of the latest reconciliation (bot4 reconcile).",
            queries=(Query(expr=f"sum({m.RECONCILIATION_BREAKS})", legend="breaks"),),
        ),
        Panel(
            title="Last drill RTO",
            kind="stat",
            width=4,
            height=6,
            unit="s",
            thresholds=((0, "green"), (10, "red")),
            description="Recovery time the last failover drill measured, as the engine"
            " saw it (bot4 drill failover).",
            queries=(Query(expr=m.DRILL_RTO, legend="RTO"),),
            no_value="no drill yet",
        ),
    )
