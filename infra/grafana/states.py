"""Value mappings and thresholds shared by the dashboards: state codes shown as words.

The codes are the ones the exporters document (``engine/live/metrics.py``): trading state
0 ACTIVE, 1 REDUCING, 2 HALTED; circuit breaker 0 closed, 1 half-open, 2 open.
"""

from __future__ import annotations

from typing import Final

from infra.grafana.model import Mapping

TRADING_STATES: Final = (
    Mapping(value=0, text="ACTIVE", color="green"),
    Mapping(value=1, text="REDUCING", color="orange"),
    Mapping(value=2, text="HALTED", color="red"),
)
BREAKER_STATES: Final = (
    Mapping(value=0, text="closed", color="green"),
    Mapping(value=1, text="half-open", color="orange"),
    Mapping(value=2, text="OPEN", color="red"),
)
ROLES: Final = (
    Mapping(value=0, text="standby", color="blue"),
    Mapping(value=1, text="leader", color="green"),
)
UP: Final = (
    Mapping(value=0, text="DOWN", color="red"),
    Mapping(value=1, text="up", color="green"),
)
ENGAGED: Final = (
    Mapping(value=0, text="released", color="green"),
    Mapping(value=1, text="ENGAGED", color="red"),
)

# (from value, color): green below the first limit, then orange, then red
ZERO_IS_GOOD: Final = ((0, "green"), (1, "red"))
HOURS_26: Final = 26 * 3600  # the backup alert's limit: a day's backup plus slack
DAYS_8: Final = 8 * 86_400  # the drill alert's limit: weekly drills plus a day
