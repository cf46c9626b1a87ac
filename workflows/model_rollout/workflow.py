"""The model_rollout workflow: verify, shadow, canary, promote (hot swap), bake, or roll back.

Steps (:data:`STEPS`, also the runbook's headings): ``verify_checksum`` (the artifact's
SHA-256 against the registry's, before any engine sees it), ``shadow`` (the leading
engine scores the candidate beside the active model on live events; agreement, drift,
inference latency gated), ``canary`` (the candidate carries a fraction of the live
prediction; the same gates plus health), ``promote`` (hot swap between two decision
batches, journaled with the exact event count; registry candidate → active, previous →
retired), ``bake`` (the promoted model is watched: health, events, unknown orders).

Any failed gate, activity or cancellation runs ``rollback``: the engine drops the
candidate or swaps the previous model back, the version becomes ``rejected`` and a
retired previous version ``active`` again. The run then *completes* with
``rolled_back=True``, the failed step and every measured value; only a rollback that
itself fails makes the run fail. A checksum mismatch is refused before ``shadow``: the
engine never sees the artifact.

Started under ``model-rollout-<version>`` with :data:`ID_REUSE_POLICY` and
:data:`ID_CONFLICT_POLICY`: a version rolls out once, a second start is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.approvals import Approvals, Decision, Progress
    from workflows.model_rollout.activities import ModelRolloutActivities
    from workflows.model_rollout.models import (
        STEPS,
        GateResult,
        ModelPlan,
        ModelRolloutInput,
        ModelRolloutResult,
        ObserveInput,
        RollbackInput,
        RollbackResult,
        StageInput,
        VerifyInput,
        judge,
    )

__all__ = ["ID_CONFLICT_POLICY", "ID_REUSE_POLICY", "STEPS", "ModelRolloutWorkflow"]

ID_REUSE_POLICY: Final = WorkflowIDReusePolicy.REJECT_DUPLICATE
ID_CONFLICT_POLICY: Final = WorkflowIDConflictPolicy.FAIL
BY: Final = "model_rollout"

_QUICK: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
    non_retryable_error_types=["InvalidInput", "ChecksumMismatch", "EngineRefused"],
)
_ROLLBACK: Final = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
)
_HEARTBEAT: Final = timedelta(seconds=30)


class GateFailedError(Exception):
    """A gate said no (the workflow rolls back; never leaves the run)."""


@workflow.defn(name="model_rollout")
class ModelRolloutWorkflow:
    """Roll a registered model version out on the leading engine; roll back on failure."""

    @workflow.init
    def __init__(self, request: ModelRolloutInput) -> None:
        self.approvals = Approvals(request.requested_by)
        self.step = "starting"
        self.detail = ""
        self.gates: list[GateResult] = []

    @workflow.update
    async def abort(self, decision: Decision) -> str:
        """Abort the rollout: roll back at the next check."""
        return self.approvals.abort(decision)

    @abort.validator
    def _check_abort(self, decision: Decision) -> None:
        self.approvals.check_abort(decision)

    @workflow.query
    def progress(self) -> Progress:
        """Return the current step and the last gate's detail."""
        return Progress(
            step=self.step,
            waiting_for_approval=None,
            approved=(),
            aborted_by=self.approvals.aborted_by,
            detail=self.detail,
        )

    @workflow.run
    async def run(self, request: ModelRolloutInput) -> ModelRolloutResult:
        """Run the steps (or return the plan for a dry run); roll back on failure.

        Raises:
            ApplicationError: ``InvalidInput``, a ``plan`` refusal (nothing was touched),
                or the rollback's own failure.
        """
        _check_input(request)
        started = workflow.now()
        self.step = "plan"
        plan = await workflow.execute_activity_method(
            ModelRolloutActivities.plan,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        result = ModelRolloutResult(
            version=plan.version, dry_run=request.dry_run, plan=plan, started_at=started
        )
        if request.dry_run:
            return result
        reason = request.reason or f"model rollout {plan.version} by {request.requested_by}"
        stage = StageInput(
            engine=plan.engine,
            version=plan.version,
            by=request.requested_by,
            reason=reason,
            fraction=request.canary_fraction,
        )
        try:
            self.step = "verify_checksum"
            verify = await workflow.execute_activity_method(
                ModelRolloutActivities.verify_checksum,
                VerifyInput(version=plan.version, by=request.requested_by),
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=_QUICK,
            )
            result = replace(result, verify=verify)
            self.approvals.raise_if_aborted()
            await self._shadow(request, plan, stage)
            await self._canary(request, plan, stage)
            self.approvals.raise_if_aborted()
            self.step = "promote"
            promoted = await workflow.execute_activity_method(
                ModelRolloutActivities.promote,
                stage,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=_QUICK,
            )
            result = replace(
                result,
                promoted_at_event=promoted.events_decided,
                promotion_journaled=promoted.journaled,
                retired=promoted.retired,
            )
            self.detail = f"promoted after event {promoted.events_decided}"
            self.approvals.raise_if_aborted()
            self.step = "bake"
            await self._observe_gate(
                "bake", request, plan, expect="active", period_s=request.bake_s, scores=False
            )
        except (GateFailedError, ActivityError, ApplicationError) as e:
            failed = self.step
            why = _reason(e)
            workflow.logger.warning("model rollout %s: %s failed: %s", plan.version, failed, why)
            rollback = await self._rollback(plan, f"{failed}: {why}", request.requested_by)
            return replace(
                result,
                rolled_back=True,
                failed_step=failed,
                reason=why,
                gates=tuple(self.gates),
                rollback=rollback,
                duration_s=_seconds_since(started),
            )
        except asyncio.CancelledError:
            await self._rollback(plan, "the workflow was cancelled", request.requested_by)
            raise
        self.step = "done"
        return replace(
            result, completed=True, gates=tuple(self.gates), duration_s=_seconds_since(started)
        )

    async def _shadow(self, request: ModelRolloutInput, plan: ModelPlan, stage: StageInput) -> None:
        self.step = "shadow"
        await workflow.execute_activity_method(
            ModelRolloutActivities.start_shadow,
            stage,
            start_to_close_timeout=timedelta(seconds=120),
            retry_policy=_QUICK,
        )
        await self._observe_gate(
            "shadow", request, plan, expect="candidate", period_s=request.shadow_s, scores=True
        )

    async def _canary(self, request: ModelRolloutInput, plan: ModelPlan, stage: StageInput) -> None:
        self.approvals.raise_if_aborted()
        self.step = "canary"
        await workflow.execute_activity_method(
            ModelRolloutActivities.start_canary,
            stage,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_QUICK,
        )
        await self._observe_gate(
            "canary", request, plan, expect="candidate", period_s=request.canary_s, scores=True
        )

    async def _observe_gate(
        self,
        step: str,
        request: ModelRolloutInput,
        plan: ModelPlan,
        *,
        expect: str,
        period_s: int,
        scores: bool,
    ) -> None:
        seen = await workflow.execute_activity_method(
            ModelRolloutActivities.observe,
            ObserveInput(
                engine=plan.engine,
                version=plan.version,
                expect=expect,
                period_s=period_s,
                interval_s=request.check_interval_s,
                max_market_data_lag_s=request.max_market_data_lag_s,
                max_unknown_orders=request.max_unknown_orders,
            ),
            start_to_close_timeout=timedelta(seconds=period_s + 120),
            heartbeat_timeout=max(_HEARTBEAT, timedelta(seconds=3 * request.check_interval_s)),
            retry_policy=_QUICK,
        )
        gate = judge(step, seen, request, scores=scores)
        self.gates.append(gate)
        self.detail = f"{step}: " + ", ".join(f"{m.name}={m.value}" for m in gate.measures)
        if not gate.passed:
            raise GateFailedError(f"{step} gate: " + "; ".join(gate.problems))
        self.approvals.raise_if_aborted()

    async def _rollback(self, plan: ModelPlan, reason: str, by: str) -> RollbackResult:
        self.step = "rollback"
        self.detail = reason
        return await workflow.execute_activity_method(
            ModelRolloutActivities.rollback,
            RollbackInput(
                engine=plan.engine,
                version=plan.version,
                restore=plan.registry_active,
                reason=reason,
                by=by,
            ),
            start_to_close_timeout=timedelta(seconds=120),
            retry_policy=_ROLLBACK,
        )


def _check_input(request: ModelRolloutInput) -> None:
    problems = []
    for name in ("min_agreement", "canary_fraction"):
        if not 0.0 <= getattr(request, name) <= 1.0:
            problems.append(f"{name} must be in 0..1 (got {getattr(request, name)})")
    for name in ("shadow_s", "canary_s", "bake_s", "min_samples", "max_unknown_orders"):
        if getattr(request, name) < 0:
            problems.append(f"{name} must be >= 0 (got {getattr(request, name)})")
    if request.check_interval_s < 1:
        problems.append(f"check_interval_s must be >= 1 (got {request.check_interval_s})")
    for name in (
        "max_relative_drift",
        "max_drift_ticks",
        "max_latency_p99_us",
        "max_market_data_lag_s",
    ):
        if not getattr(request, name) > 0:
            problems.append(f"{name} must be > 0 (got {getattr(request, name)})")
    if problems:
        raise ApplicationError("; ".join(problems), type="InvalidInput", non_retryable=True)


def _reason(error: BaseException) -> str:
    """Return the innermost message: an activity's own refusal, not the SDK's wrapper."""
    while isinstance(error, ActivityError) and error.cause is not None:
        error = error.cause
    return str(error) or type(error).__name__


def _seconds_since(started: datetime) -> float:
    return round((workflow.now() - started).total_seconds(), 3)
