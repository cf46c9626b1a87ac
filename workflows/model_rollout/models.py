"""Input, step payloads and result of the model_rollout workflow.

Frozen keyword-only dataclasses (the SDK's default converter carries them); durations as
``*_s``. Every gate threshold is an input with a default, and the result carries every
gate's measured value beside its limit, so an operator reads why a version passed or not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

WORKFLOW_ID_PREFIX: Final = "model-rollout-"
STEPS: Final = ("verify_checksum", "shadow", "canary", "promote", "bake")
"""The steps in order (also the runbook's headings); ``rollback`` compensates any of them."""


def workflow_id(version: str, *, dry_run: bool = False) -> str:
    """Return the business key ``model-rollout-<version>`` (a dry run gets a unique id)."""
    base = f"{WORKFLOW_ID_PREFIX}{version}"
    return f"{base}-plan-{uuid.uuid4().hex[:12]}" if dry_run else base


@dataclass(frozen=True, kw_only=True)
class ModelRolloutInput:
    """What the operator asks for.

    Attributes:
        version: the registered model version to roll out (state ``registered``).
        requested_by: who asked (recorded in the registry and the journal).
        reason: free text for the registry, the journal and the audit trail.
        dry_run: return the plan only: nothing fetched into an engine, nothing changed.
        shadow_s: how long the candidate is scored beside the active model.
        canary_s: how long the candidate carries ``canary_fraction`` of the prediction.
        canary_fraction: share (0..1] of the live prediction the candidate carries in
            the canary (linear models; 0 skips the canary's live part but not its checks).
        bake_s: how long the promoted model is watched before the rollout completes.
        check_interval_s: seconds between health checks inside shadow, canary and bake.
        min_samples: fewest shadow scores for the gate to judge (too few: fail).
        min_agreement: least share of scores where candidate and active agree in sign
            (or are within 0.05 tick of each other).
        max_relative_drift: most mean |candidate - active| / mean |active|.
        max_drift_ticks: most mean |candidate - active| in ticks.
        max_latency_p99_us: most p99 candidate inference latency in microseconds.
        max_market_data_lag_s: the engine's market data must be fresher than this.
        max_unknown_orders: most orders of unknown outcome during canary and bake.
    """

    version: str
    requested_by: str = "unknown"
    reason: str = ""
    dry_run: bool = False
    shadow_s: int = 60
    canary_s: int = 60
    canary_fraction: float = 0.1
    bake_s: int = 60
    check_interval_s: int = 5
    min_samples: int = 20
    min_agreement: float = 0.8
    max_relative_drift: float = 0.5
    max_drift_ticks: float = 1000.0
    max_latency_p99_us: float = 1000.0
    max_market_data_lag_s: float = 5.0
    max_unknown_orders: int = 0


@dataclass(frozen=True, kw_only=True)
class EngineEndpoint:
    """The engine the rollout acts on (the lease holder): its control URL and name."""

    color: str
    url: str
    instance: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelPlan:
    """What the rollout will do, before anything is touched."""

    version: str
    engine: EngineEndpoint
    engine_model: str  # the model the engine runs now
    registry_active: str | None  # the registry's active version (None: the release's model)
    sha256: str
    artifact_uri: str
    state: str
    steps: tuple[str, ...] = STEPS


@dataclass(frozen=True, kw_only=True)
class VerifyInput:
    """Fetch and verify ``version``'s artifact."""

    version: str
    by: str


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """The digest the registry holds and the one the artifact's weights have."""

    sha256: str
    artifact_sha256: str
    artifact_uri: str


@dataclass(frozen=True, kw_only=True)
class StageInput:
    """Move the engine and the registry to a stage (shadow, canary or promote)."""

    engine: EngineEndpoint
    version: str
    by: str
    reason: str
    fraction: float = 0.0


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """The engine's answer and what the registry now says."""

    state: str
    events_decided: int | None = None  # at the swap, for the model changes
    journaled: bool | None = None
    retired: str | None = None  # promote: the registry version that was active


@dataclass(frozen=True, kw_only=True)
class ObserveInput:
    """Watch the engine for ``period_s``; ``expect`` is ``candidate`` or ``active``."""

    engine: EngineEndpoint
    version: str
    expect: str
    period_s: int
    interval_s: int
    max_market_data_lag_s: float
    max_unknown_orders: int


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What the engine showed over the period (scores of the candidate, health)."""

    rounds: int
    problems: tuple[str, ...]
    samples: int = 0
    agreement: float | None = None
    mean_abs_drift_ticks: float | None = None
    relative_drift: float | None = None
    latency_p50_us: float | None = None
    latency_p99_us: float | None = None
    events_advanced: int = 0
    orders_during: int | None = None


@dataclass(frozen=True, kw_only=True)
class Measure:
    """One gate measure: the value seen, the bound and whether it held."""

    name: str
    value: float | None
    limit: float
    bound: str  # "min" or "max"
    passed: bool


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """One gate's verdict with every measured value."""

    step: str
    passed: bool
    measures: tuple[Measure, ...] = ()
    problems: tuple[str, ...] = ()
    seen: Observation | None = None  # everything measured, gated or not (latency p50...)


@dataclass(frozen=True, kw_only=True)
class RollbackInput:
    """Undo ``version``'s rollout on the engine and in the registry."""

    engine: EngineEndpoint
    version: str
    restore: str | None  # the registry version to make active again (None: none)
    reason: str
    by: str


@dataclass(frozen=True, kw_only=True)
class RollbackResult:
    """What the rollback did."""

    undone: str | None  # shadow, canary, promoted, or None (nothing had reached the engine)
    engine_model: str | None  # the model the engine runs after the rollback
    state: str  # the version's registry state (rejected)
    restored: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRolloutResult:
    """How the rollout ended; ``gates`` holds every measured value."""

    version: str
    dry_run: bool
    plan: ModelPlan
    started_at: datetime
    completed: bool = False
    rolled_back: bool = False
    failed_step: str | None = None
    reason: str | None = None
    verify: VerifyResult | None = None
    gates: tuple[GateResult, ...] = ()
    promoted_at_event: int | None = None
    promotion_journaled: bool | None = None
    retired: str | None = None
    rollback: RollbackResult | None = None
    duration_s: float | None = None


def judge(step: str, seen: Observation, request: ModelRolloutInput, *, scores: bool) -> GateResult:
    """Return the gate of ``step`` over an observation (``scores``: judge the candidate)."""
    measures: list[Measure] = []
    problems = list(seen.problems)

    def at_least(name: str, value: float | None, limit: float) -> None:
        ok = value is not None and value >= limit
        measures.append(Measure(name=name, value=value, limit=limit, bound="min", passed=ok))
        if not ok:
            problems.append(f"{name} {value} < {limit}")

    def at_most(name: str, value: float | None, limit: float) -> None:
        ok = value is not None and value <= limit
        measures.append(Measure(name=name, value=value, limit=limit, bound="max", passed=ok))
        if not ok:
            problems.append(f"{name} {value} > {limit}")

    at_least("events_advanced", float(seen.events_advanced), 1.0)
    if scores:
        at_least("samples", float(seen.samples), float(request.min_samples))
        at_least("agreement", seen.agreement, request.min_agreement)
        at_most("relative_drift", seen.relative_drift, request.max_relative_drift)
        at_most("mean_abs_drift_ticks", seen.mean_abs_drift_ticks, request.max_drift_ticks)
        at_most("latency_p99_us", seen.latency_p99_us, request.max_latency_p99_us)
    return GateResult(
        step=step,
        passed=not problems,
        measures=tuple(measures),
        problems=tuple(problems),
        seen=seen,
    )
