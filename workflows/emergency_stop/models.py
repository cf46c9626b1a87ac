"""Input, step payloads and result of the emergency_stop workflow.

Frozen keyword-only dataclasses (the SDK's default converter carries them); durations in
integer milliseconds, because an emergency stop takes about a second and ``timedelta``
does not serialize.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

WORKFLOW_ID: Final = "emergency-stop"
"""The business key of a real stop: two operators clicking at once start one run."""


@dataclass(frozen=True, kw_only=True)
class EmergencyStopInput:
    """What the operator asks for.

    Attributes:
        reason: why the desk stops (required; written to the kill-switch row).
        requested_by: who asked (the kill-switch row's ``changed_by``).
        dry_run: return the plan only: no flag, no halt, no cancel.
        liquidate: once the stop is verified, start the ``liquidation`` runbook over every
            symbol (it waits for a second operator's approval, then lifts the halt to
            REDUCING and unwinds; see runbooks/liquidation.md).
        liquidation_deadline_s: the chained liquidation's deadline.
    """

    reason: str
    requested_by: str = "unknown"
    dry_run: bool = False
    liquidate: bool = False
    liquidation_deadline_s: int = 600


def workflow_id(request: EmergencyStopInput) -> str:
    """Return the workflow id: the fixed business key, or a unique one for a dry run.

    A dry run has no side effects, so it must never hold the key a real stop needs.
    """
    return f"{WORKFLOW_ID}-plan-{uuid.uuid4().hex[:12]}" if request.dry_run else WORKFLOW_ID


@dataclass(frozen=True, kw_only=True)
class EngineEndpoint:
    """One engine's control server."""

    color: str
    url: str


@dataclass(frozen=True, kw_only=True)
class EmergencyStopPlan:
    """What a run would touch (the dry run's answer, and the first step of a real run)."""

    engines: tuple[EngineEndpoint, ...]
    symbols: tuple[str, ...]
    venue: str
    kill_switch: str


@dataclass(frozen=True, kw_only=True)
class HaltEnginesInput:
    """Who halts, and why."""

    reason: str
    requested_by: str


@dataclass(frozen=True, kw_only=True)
class EngineHalt:
    """What one engine's control endpoint answered to ``POST /admin/halt``."""

    color: str
    url: str
    reached: bool
    halted: bool
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class HaltEnginesResult:
    """The kill-switch write and every engine's answer."""

    kill_switch_engaged: bool
    kill_switch_error: str
    engines: tuple[EngineHalt, ...]


@dataclass(frozen=True, kw_only=True)
class SymbolCount:
    """A count of orders for one symbol."""

    symbol: str
    orders: int


@dataclass(frozen=True, kw_only=True)
class CancelOrdersResult:
    """What ``cancel_all`` canceled at the venue, per symbol."""

    canceled: tuple[SymbolCount, ...]

    @property
    def total(self) -> int:
        """Return the number of canceled orders."""
        return sum(s.orders for s in self.canceled)


@dataclass(frozen=True, kw_only=True)
class VerifyInput:
    """Which engines must report HALTED (the ones that answered the halt)."""

    engines: tuple[EngineEndpoint, ...]


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What the venue, the engines and PostgreSQL say after the stop."""

    open_orders: tuple[SymbolCount, ...]
    engines_not_halted: tuple[str, ...]
    kill_switch_engaged: bool

    @property
    def open_orders_left(self) -> int:
        """Return the open orders left at the venue over every symbol."""
        return sum(s.orders for s in self.open_orders)

    @property
    def ok(self) -> bool:
        """Tell whether the stop holds: nothing open, every reached engine halted, flag set."""
        return (
            self.open_orders_left == 0
            and not self.engines_not_halted
            and (self.kill_switch_engaged)
        )


@dataclass(frozen=True, kw_only=True)
class EmergencyStopResult:
    """The report of the ``report`` step (or the plan alone, for a dry run)."""

    dry_run: bool
    reason: str
    requested_by: str
    plan: EmergencyStopPlan
    started_at: datetime
    kill_switch_engaged: bool = False
    engines_halted: tuple[str, ...] = ()
    engines_unreachable: tuple[str, ...] = ()
    orders_canceled: int = 0
    open_orders_left: int = 0
    verify_rounds: int = 0
    duration_ms: int = 0
    liquidation_workflow_id: str | None = None
