"""Input, step payloads and result of the dr_failover workflow.

Frozen keyword-only dataclasses (the SDK's default converter carries them). Durations
are integer milliseconds where they are measured (``*_ms``) and seconds where an operator
sets them (``*_s``); RTO is reported in seconds with millisecond resolution.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

WORKFLOW_ID: Final = "dr-failover"
"""One database failover at a time: a second start while one runs fails."""
MODES: Final = ("switchover", "failover")
SWITCHOVER_STEPS: Final = (
    "plan", "preconditions", "hold_engines", "stop_primary", "wait_replayed", "promote",
    "verify", "release_engines", "rejoin", "report",
)  # fmt: skip
FAILOVER_STEPS: Final = (
    "plan", "detect", "hold_engines", "promote", "verify", "release_engines", "rejoin",
    "report",
)  # fmt: skip
DRILL_STEPS: Final = ("steady_state_before", "inject_fault", "steady_state_after",
                      "store_report")  # fmt: skip
STEPS: Final = tuple(dict.fromkeys(SWITCHOVER_STEPS + FAILOVER_STEPS + DRILL_STEPS))
HOLD_CONDITION: Final = "dr_failover"
"""The engine gate condition a run holds (REDUCING) while the database moves."""


@dataclass(frozen=True, kw_only=True)
class DrFailoverInput:
    """What the operator asks for.

    Attributes:
        mode: ``switchover`` (planned: the primary is healthy and stopped cleanly) or
            ``failover`` (the primary is gone: confirmed down by probes, then replaced).
        max_lag_bytes: a switchover refuses when the standby's replay lag is larger.
        detect_probes: consecutive failed probes that confirm a primary down (failover).
        detect_interval_ms: time between probes.
        detect_within_s: the bound of detection: a primary still answering after this
            long refuses the failover (it is not gone; run a switchover instead).
        rejoin: rebuild the old primary as the new synchronous standby (pg_rewind, a
            fresh base backup as the fallback) at the end.
        rpo_window_s: events and fills the engine saw acknowledged this long before the
            run started are checked on the new primary too (the RPO count).
        drill: a drill: the steady-state hypothesis (a leader trading ACTIVE with a
            healthy journal, replication synchronous) is checked first (not met: refused,
            nothing changed) and again at the end; a failover drill kills the primary
            itself (``inject_fault``); the drill report is stored (PostgreSQL
            ``dr_drills`` and the reports object store) whether it passed or not.
        max_rto_s: a drill with a longer RTO fails (the run still completes).
        reason: why (the audit trail and the report).
        requested_by: who asked (the control plane fills it from the caller's key).
        dry_run: return the plan only; change nothing.
    """

    mode: str = "switchover"
    max_lag_bytes: int = 16 * 1024 * 1024
    detect_probes: int = 3
    detect_interval_ms: int = 200
    detect_within_s: int = 30
    rejoin: bool = True
    rpo_window_s: int = 60
    drill: bool = False
    max_rto_s: float = 10.0
    reason: str = "dr failover"
    requested_by: str = "unknown"
    dry_run: bool = False


def workflow_id(request: DrFailoverInput) -> str:
    """Return the workflow id: the fixed business key, or a unique one for a dry run."""
    return f"{WORKFLOW_ID}-plan-{uuid.uuid4().hex[:12]}" if request.dry_run else WORKFLOW_ID


@dataclass(frozen=True, kw_only=True)
class ClusterState:
    """The pair as the activities found it (roles, replication)."""

    roles: dict[str, str]
    primary: str | None
    standby: str | None
    streaming: bool
    sync_state: str | None
    lag_bytes: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SteadyState:
    """The drill's hypothesis, measured: what holds and what does not."""

    leader: str | None
    trading_state: str | None
    journal_healthy: bool
    replication_sync: bool
    problems: tuple[str, ...]

    @property
    def holds(self) -> bool:
        """Whether the desk is in its steady state."""
        return not self.problems


@dataclass(frozen=True, kw_only=True)
class SteadyStateInput:
    """How long to wait for the hypothesis to hold (0: check once)."""

    within_s: int = 0


@dataclass(frozen=True, kw_only=True)
class DrPlan:
    """What a run would do (the dry run's answer, and the first step of a real run)."""

    mode: str
    steps: tuple[str, ...]
    cluster: ClusterState
    engines: tuple[str, ...]
    leader: str | None
    started_at_epoch: float


@dataclass(frozen=True, kw_only=True)
class HoldInput:
    """Hold (or release) every answering engine's gate at REDUCING for this run."""

    hold: bool
    reason: str
    requested_by: str


@dataclass(frozen=True, kw_only=True)
class HoldResult:
    """Which engines answered."""

    held: tuple[str, ...]
    unreachable: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StopPrimaryResult:
    """The old primary's clean stop: its last checkpoint, which the standby must replay."""

    node: str
    final_lsn: str
    stopped_at_epoch: float


@dataclass(frozen=True, kw_only=True)
class ReplayInput:
    """Wait until ``standby`` replayed ``lsn``."""

    standby: str
    lsn: str
    timeout_s: int = 30


@dataclass(frozen=True, kw_only=True)
class DetectInput:
    """Confirm the primary down with a bound."""

    primary: str
    probes: int
    interval_ms: int
    within_s: int


@dataclass(frozen=True, kw_only=True)
class DetectResult:
    """How long the probes took to confirm the primary gone."""

    primary: str
    detected_in_ms: int


@dataclass(frozen=True, kw_only=True)
class PromoteResult:
    """The standby is primary now (accepting commits alone until the rejoin)."""

    node: str
    promote_ms: int
    promoted_at_epoch: float


@dataclass(frozen=True, kw_only=True)
class VerifyInput:
    """Check the new primary takes writes, the engine follows, and count the RPO."""

    new_primary: str
    run_started_epoch: float
    acks_since_epoch: float
    timeout_s: int = 60


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """The write probe, the engine's view and the RPO count."""

    probe_ok: bool
    engine: str | None
    engine_journal_healthy: bool
    rto_s: float | None
    outage_started_epoch: float | None
    events_checked: int
    fills_checked: int
    events_missing: int
    fills_missing: int
    acks_truncated: bool
    # last, with a default: histories recorded before it existed still decode (replay)
    writable_at_epoch: float | None = None

    @property
    def rpo_events(self) -> int:
        """Acknowledged facts missing on the new primary (events and fills)."""
        return self.events_missing + self.fills_missing


@dataclass(frozen=True, kw_only=True)
class RejoinInput:
    """Rebuild ``old`` as the synchronous standby of ``new_primary``."""

    old: str
    new_primary: str
    timeout_s: int = 120


@dataclass(frozen=True, kw_only=True)
class RejoinResult:
    """How the old primary came back, and when replication was synchronous again."""

    node: str
    method: str
    rejoin_ms: int
    sync_ms: int


@dataclass(frozen=True, kw_only=True)
class StepTiming:
    """One step's measured duration."""

    step: str
    ms: int


@dataclass(frozen=True, kw_only=True)
class DrFailoverResult:
    """The report (or the plan alone, for a dry run)."""

    dry_run: bool
    mode: str
    plan: DrPlan
    requested_by: str
    reason: str
    started_at: datetime
    old_primary: str | None = None
    new_primary: str | None = None
    rto_s: float | None = None
    rto_source: str | None = None
    db_unwritable_s: float | None = None
    rpo_events: int | None = None
    verify: VerifyResult | None = None
    rejoin: RejoinResult | None = None
    detect: DetectResult | None = None
    degraded_ms: int | None = None
    steps: tuple[StepTiming, ...] = ()
    duration_ms: int = 0
    drill: bool = False
    hypothesis_before: SteadyState | None = None
    hypothesis_after: SteadyState | None = None
    passed: bool | None = None
    failures: tuple[str, ...] = ()
    report_id: str | None = None
    report_uri: str | None = None
