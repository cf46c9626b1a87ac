"""Input, step payloads and result of the blue_green_deploy workflow.

Frozen keyword-only dataclasses (the SDK's default converter carries them); durations as
``*_s``. Every threshold of the gates and the bake lives in :class:`RolloutInput` with a
permissive default, so a desk tightens them per release rather than per code change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

WORKFLOW_ID_PREFIX: Final = "deploy-"
STEPS: Final = (
    "plan",
    "start_standby",
    "warm_standby",
    "health_gate",
    "handoff",
    "bake",
    "retire_old",
)
"""The steps in order (also the runbook's headings); ``rollback`` compensates any of them."""


def workflow_id(version: str, *, dry_run: bool = False) -> str:
    """Return the business key ``deploy-<version>`` (a dry run gets a unique plan id).

    A dry run has no side effects, so it must never hold the key a real rollout needs.
    """
    base = f"{WORKFLOW_ID_PREFIX}{version}"
    return f"{base}-plan-{uuid.uuid4().hex[:12]}" if dry_run else base


@dataclass(frozen=True, kw_only=True)
class RolloutInput:
    """What the operator asks for.

    Attributes:
        release_path: absolute path of the new release manifest (read by the worker and
            the new engine: both must see the same file).
        requested_by: who asked; may not approve the guarded ``handoff`` step.
        reason: free text for the journal and the audit trail.
        dry_run: return the plan only: nothing started, stopped or handed over.
        require_approval: ``handoff`` waits for a second operator's ``approve`` update.
        approval_timeout_s: how long ``handoff`` waits for that approval (then rolls back).
        warm_timeout_s: how long the new color may take to start and become ready.
        warm_s: how long the standby is watched beside the leader (shadow samples).
        shadow_samples: how many shadow-agreement samples are taken over ``warm_s``.
        shadow_tolerance_bps: a leader quote is matched when the standby wants the same
            symbol and side within this many basis points of the leader's price (default
            25: the standby starts flat, so its inventory skew differs from the leader's by
            some ticks; 25 bps still refuses a release that quotes far from the leader).
        min_shadow_agreement: share (0..1) of the leader's desired quotes the standby must
            match, averaged over the samples. Default 0.5: permissive, because the
            standby knows the journal's positions only from its own start and its
            inventory skew may differ from the leader's.
        max_market_data_lag_s: the health gate's and the bake's market-data lag bound.
        max_journal_lag_s: the bake's bound on the new leader's journal backlog age.
        max_unknown_orders: the bake's bound on orders of unknown outcome.
        max_pnl_drop: the bake fails when the new leader's PnL change falls more than this
            (quote currency) below the old color's shadow PnL change over the same time.
        first_order_timeout_s: how long the new leader may take to send its first order.
        bake_s: how long the new leader is watched before the old color is retired.
        bake_interval_s: seconds between bake checks.
    """

    release_path: str
    requested_by: str = "unknown"
    reason: str = ""
    dry_run: bool = False
    require_approval: bool = False
    approval_timeout_s: int = 3600
    warm_timeout_s: int = 120
    warm_s: int = 5
    shadow_samples: int = 5
    shadow_tolerance_bps: float = 25.0
    min_shadow_agreement: float = 0.5
    max_market_data_lag_s: float = 5.0
    max_journal_lag_s: float = 2.0
    max_unknown_orders: int = 2
    max_pnl_drop: float = 1000.0
    first_order_timeout_s: int = 60
    bake_s: int = 60
    bake_interval_s: int = 2


@dataclass(frozen=True, kw_only=True)
class EngineEndpoint:
    """One color: its control server and its lease holder name (instance)."""

    color: str
    url: str
    instance: str = ""


@dataclass(frozen=True, kw_only=True)
class RolloutPlan:
    """What a rollout would do (the dry run's answer, and the first step of a real run)."""

    version: str
    release_path: str
    old: EngineEndpoint
    new: EngineEndpoint
    old_release: str
    old_epoch: int
    steps: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StartStandbyInput:
    """Which color to start, with which release."""

    color: str
    release_path: str


@dataclass(frozen=True, kw_only=True)
class StartStandbyResult:
    """The process that runs the new color (``reused``: it already ran, after a retry)."""

    pid: int
    reused: bool


@dataclass(frozen=True, kw_only=True)
class WarmInput:
    """Wait for the standby to be ready, then sample shadow agreement beside the leader."""

    old: EngineEndpoint
    new: EngineEndpoint
    version: str
    timeout_s: int
    warm_s: int
    samples: int
    tolerance_bps: float


@dataclass(frozen=True, kw_only=True)
class WarmResult:
    """How long the standby took, and each sample's agreement (0..1)."""

    ready_after_s: float
    agreements: tuple[float, ...]

    @property
    def agreement(self) -> float:
        """Return the mean agreement over the samples (0 without samples)."""
        return sum(self.agreements) / len(self.agreements) if self.agreements else 0.0


@dataclass(frozen=True, kw_only=True)
class HealthInput:
    """What the health gate checks on the standby."""

    new: EngineEndpoint
    max_market_data_lag_s: float


@dataclass(frozen=True, kw_only=True)
class HealthResult:
    """The standby's problems (empty: healthy) and the leader's PnL before the handoff."""

    problems: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class HandoffInput:
    """Move the lease from ``old`` to ``new``; ``old_epoch`` is the epoch the plan saw."""

    old: EngineEndpoint
    new: EngineEndpoint
    old_epoch: int
    reason: str
    first_order_timeout_s: int


@dataclass(frozen=True, kw_only=True)
class HandoffResult:
    """The fenced handoff as the journal recorded it.

    ``gap_ms`` is the time from the old leader's last ``order_new`` to the new leader's
    first (journal ``recorded_at``); None when one of them sent nothing.
    """

    old_epoch: int
    new_epoch: int
    duration_ms: int
    gap_ms: float | None
    old_last_order: str | None
    new_first_order: str | None
    old_last_order_at: datetime | None
    new_first_order_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class BakeCheckInput:
    """One bake round: the new leader's health and PnL against the old color's."""

    old: EngineEndpoint
    new: EngineEndpoint
    new_epoch: int
    max_market_data_lag_s: float
    max_journal_lag_s: float
    max_unknown_orders: int


@dataclass(frozen=True, kw_only=True)
class BakeCheck:
    """What one round saw (``problems`` empty: healthy)."""

    problems: tuple[str, ...]
    new_pnl: float | None
    old_pnl: float | None


@dataclass(frozen=True, kw_only=True)
class RetireInput:
    """The color to stop once the new one has baked."""

    color: str


@dataclass(frozen=True, kw_only=True)
class RollbackInput:
    """Give leadership back to ``old``, stop ``new``."""

    old: EngineEndpoint
    new: EngineEndpoint
    reason: str


@dataclass(frozen=True, kw_only=True)
class RollbackResult:
    """Who leads after the rollback, at which epoch, and whether the new color stopped."""

    old_leads: bool
    old_epoch: int | None
    new_stopped: bool
    actions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RolloutResult:
    """The report of a rollout: completed, rolled back (and why), or the plan alone."""

    version: str
    dry_run: bool
    plan: RolloutPlan | None
    started_at: datetime
    completed: bool = False
    rolled_back: bool = False
    failed_step: str | None = None
    reason: str = ""
    shadow_agreement: float | None = None
    handoff: HandoffResult | None = None
    bake_rounds: int = 0
    pnl_drift: float | None = None
    rollback: RollbackResult | None = None
    approved_by: str | None = None
    duration_s: float = 0.0
