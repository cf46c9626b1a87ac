"""The blue_green_deploy workflow: a new release on the idle color, a fenced handoff, a bake.

Steps (:data:`STEPS`, also the runbook's headings): ``plan`` (which color leads, which is
idle, the release loads), ``start_standby`` (the idle color with ``--standby``),
``warm_standby`` (ready, deciding, shadow quotes sampled beside the leader's),
``health_gate`` (ACTIVE, fresh market data, shadow agreement above the threshold),
``handoff`` (optionally approved by a second operator; the old leader stops sending,
cancels and releases the lease, the new one takes epoch + 1; the gap between their orders
is measured from the journal), ``bake`` (rounds of health, journal lag, unknown orders and
PnL drift against the old color's shadow), ``retire_old`` (stop the old color).

Any failed gate, bake round, timeout or operator ``abort`` before ``retire_old`` runs
``rollback``: the new color releases the lease if it leads, the old color acquires it
again and resumes, the new color is stopped. The run then *completes* with
``rolled_back=True`` and the reason, so the operator reads why rather than a stack trace;
only a rollback that itself fails makes the run fail.

Start it with :data:`ID_REUSE_POLICY` and :data:`ID_CONFLICT_POLICY` under
``deploy-<version>`` (:func:`~workflows.blue_green_deploy.models.workflow_id`): a release
version is deployed once, ever; a second start is refused while it runs and afterwards.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.approvals import Approvals, Decision, Progress
    from workflows.blue_green_deploy.activities import DeployActivities
    from workflows.blue_green_deploy.models import (
        STEPS,
        BakeCheckInput,
        HandoffInput,
        HandoffResult,
        HealthInput,
        RetireInput,
        RollbackInput,
        RollbackResult,
        RolloutInput,
        RolloutPlan,
        RolloutResult,
        StartStandbyInput,
        WarmInput,
    )

__all__ = ["ID_CONFLICT_POLICY", "ID_REUSE_POLICY", "STEPS", "BlueGreenDeployWorkflow"]

ID_REUSE_POLICY: Final = WorkflowIDReusePolicy.REJECT_DUPLICATE
ID_CONFLICT_POLICY: Final = WorkflowIDConflictPolicy.FAIL

_QUICK: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
    non_retryable_error_types=["InvalidInput"],
)
_ROLLBACK: Final = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
)
_HEARTBEAT: Final = timedelta(seconds=10)


class GateFailedError(Exception):
    """A gate or a bake round said no (the workflow rolls back; never leaves the run)."""


@workflow.defn(name="blue_green_deploy")
class BlueGreenDeployWorkflow:
    """Deploy a release on the idle color; roll back to the old color on any failure."""

    @workflow.init
    def __init__(self, request: RolloutInput) -> None:
        # from the input, so an update that arrives before ``run`` starts sees the requester
        self.approvals = Approvals(request.requested_by)
        self.step = "starting"
        self.detail = ""

    # --- operator decisions and progress ------------------------------------------------
    @workflow.update
    async def approve(self, decision: Decision) -> str:
        """Approve the waiting guarded step (``handoff``)."""
        return self.approvals.approve(decision)

    @approve.validator
    def _check_approve(self, decision: Decision) -> None:
        self.approvals.check_approve(decision)

    @workflow.update
    async def abort(self, decision: Decision) -> str:
        """Abort the rollout: roll back to the old color at the next check."""
        return self.approvals.abort(decision)

    @abort.validator
    def _check_abort(self, decision: Decision) -> None:
        self.approvals.check_abort(decision)

    @workflow.query
    def progress(self) -> Progress:
        """Return the current step, the approvals and any abort."""
        return Progress(
            step=self.step,
            waiting_for_approval=self.approvals.waiting_for,
            approved=tuple(self.approvals.approved),
            aborted_by=self.approvals.aborted_by,
            detail=self.detail,
        )

    # --- the run --------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: RolloutInput) -> RolloutResult:
        """Run the steps (or return the plan for a dry run); roll back on failure.

        Raises:
            ApplicationError: ``InvalidInput`` (bad thresholds), a ``plan`` refusal
                (nothing was touched), or the rollback's own failure.
        """
        _check_input(request)
        started = workflow.now()
        self.step = "plan"
        plan = await workflow.execute_activity_method(
            DeployActivities.plan,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        result = RolloutResult(
            version=plan.version, dry_run=request.dry_run, plan=plan, started_at=started
        )
        if request.dry_run:
            return result
        agreement: float | None = None
        handoff: HandoffResult | None = None
        bake_rounds, drift = 0, None
        try:
            agreement = await self._prepare(request, plan)
            handoff = await self._handoff(request, plan)
            bake_rounds, drift = await self._bake(request, plan, handoff)
        except (GateFailedError, ActivityError, ApplicationError) as e:
            failed = self.step
            reason = _reason(e)
            workflow.logger.warning("rollout %s: %s failed: %s", plan.version, failed, reason)
            rollback = await self._rollback(plan, f"{failed}: {reason}")
            return replace(
                result,
                rolled_back=True,
                failed_step=failed,
                reason=reason,
                shadow_agreement=agreement,
                handoff=handoff,
                bake_rounds=bake_rounds,
                pnl_drift=drift,
                rollback=rollback,
                approved_by=self._approver(),
                duration_s=_seconds_since(started),
            )
        except asyncio.CancelledError:
            await self._rollback(plan, "the workflow was cancelled")
            raise
        self.step = "retire_old"
        await workflow.execute_activity_method(
            DeployActivities.retire_old,
            RetireInput(color=plan.old.color),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_QUICK,
        )
        self.step = "done"
        return replace(
            result,
            completed=True,
            shadow_agreement=agreement,
            handoff=handoff,
            bake_rounds=bake_rounds,
            pnl_drift=drift,
            approved_by=self._approver(),
            duration_s=_seconds_since(started),
        )

    async def _prepare(self, request: RolloutInput, plan: RolloutPlan) -> float:
        """Start, warm and gate the standby; return its shadow agreement."""
        self.step = "start_standby"
        await workflow.execute_activity_method(
            DeployActivities.start_standby,
            StartStandbyInput(color=plan.new.color, release_path=plan.release_path),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        self.approvals.raise_if_aborted()
        self.step = "warm_standby"
        warm = await workflow.execute_activity_method(
            DeployActivities.warm_standby,
            WarmInput(
                old=plan.old,
                new=plan.new,
                version=plan.version,
                timeout_s=request.warm_timeout_s,
                warm_s=request.warm_s,
                samples=request.shadow_samples,
                tolerance_bps=request.shadow_tolerance_bps,
            ),
            start_to_close_timeout=timedelta(seconds=request.warm_timeout_s + request.warm_s + 30),
            heartbeat_timeout=_HEARTBEAT,
            retry_policy=_QUICK,
        )
        self.approvals.raise_if_aborted()
        self.step = "health_gate"
        health = await workflow.execute_activity_method(
            DeployActivities.health_gate,
            HealthInput(new=plan.new, max_market_data_lag_s=request.max_market_data_lag_s),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        problems = list(health.problems)
        if not warm.agreements and request.min_shadow_agreement > 0:
            problems.append(
                "no shadow sample: the leader wanted no quote while the standby was watched"
                " (paused, REDUCING or HALTED?)"
            )
        elif warm.agreement < request.min_shadow_agreement:
            problems.append(
                f"shadow agreement {warm.agreement:.2f} < {request.min_shadow_agreement:.2f}"
                f" (samples {list(warm.agreements)})"
            )
        self.detail = f"shadow agreement {warm.agreement:.2f}"
        if problems:
            raise GateFailedError("; ".join(problems))
        self.approvals.raise_if_aborted()
        return warm.agreement

    async def _handoff(self, request: RolloutInput, plan: RolloutPlan) -> HandoffResult:
        self.step = "handoff"
        if request.require_approval:
            self.detail = "waiting for a second operator to approve the handoff"
            approver = await self.approvals.wait_for_approval(
                "handoff", within=timedelta(seconds=request.approval_timeout_s)
            )
            self.detail = f"handoff approved by {approver}"
        self.approvals.raise_if_aborted()
        handoff = await workflow.execute_activity_method(
            DeployActivities.handoff,
            HandoffInput(
                old=plan.old,
                new=plan.new,
                old_epoch=plan.old_epoch,
                reason=f"deploy {plan.version}",
                first_order_timeout_s=request.first_order_timeout_s,
            ),
            start_to_close_timeout=timedelta(seconds=request.first_order_timeout_s + 120),
            heartbeat_timeout=_HEARTBEAT,
            retry_policy=_QUICK,
        )
        self.detail = f"epoch {handoff.old_epoch} -> {handoff.new_epoch}, gap {handoff.gap_ms} ms"
        return handoff

    async def _bake(
        self, request: RolloutInput, plan: RolloutPlan, handoff: HandoffResult
    ) -> tuple[int, float | None]:
        """Watch the new leader for ``bake_s``; return (rounds, PnL drift)."""
        self.step = "bake"
        check = BakeCheckInput(
            old=plan.old,
            new=plan.new,
            new_epoch=handoff.new_epoch,
            max_market_data_lag_s=request.max_market_data_lag_s,
            max_journal_lag_s=request.max_journal_lag_s,
            max_unknown_orders=request.max_unknown_orders,
        )
        ends = workflow.now() + timedelta(seconds=request.bake_s)
        rounds, drift, first = 0, None, None
        while True:
            self.approvals.raise_if_aborted()
            rounds += 1
            seen = await workflow.execute_activity_method(
                DeployActivities.bake_check,
                check,
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=_QUICK,
            )
            problems = list(seen.problems)
            if seen.new_pnl is not None and seen.old_pnl is not None:
                if first is None:
                    first = (seen.new_pnl, seen.old_pnl)
                drift = (seen.new_pnl - first[0]) - (seen.old_pnl - first[1])
                if drift < -request.max_pnl_drop:
                    problems.append(f"PnL drift {drift:.2f} below -{request.max_pnl_drop}")
            self.detail = f"bake round {rounds}: {problems or 'healthy'}"
            if problems:
                raise GateFailedError(f"bake round {rounds}: " + "; ".join(problems))
            if workflow.now() >= ends:
                return rounds, drift
            with suppress(TimeoutError):  # an abort ends the wait at once
                await workflow.wait_condition(
                    lambda: self.approvals.aborted_by is not None,
                    timeout=timedelta(seconds=request.bake_interval_s),
                )

    async def _rollback(self, plan: RolloutPlan, reason: str) -> RollbackResult:
        self.step = "rollback"
        self.detail = reason
        return await workflow.execute_activity_method(
            DeployActivities.rollback,
            RollbackInput(old=plan.old, new=plan.new, reason=reason),
            start_to_close_timeout=timedelta(seconds=180),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=_ROLLBACK,
        )

    def _approver(self) -> str | None:
        return self.approvals.approved.get("handoff")


def _check_input(request: RolloutInput) -> None:
    problems = []
    if not 0.0 <= request.min_shadow_agreement <= 1.0:
        problems.append(f"min_shadow_agreement must be in 0..1, got {request.min_shadow_agreement}")
    for name in (
        "warm_timeout_s",
        "shadow_samples",
        "bake_interval_s",
        "first_order_timeout_s",
        "approval_timeout_s",
    ):
        if getattr(request, name) < 1:
            problems.append(f"{name} must be >= 1 (got {getattr(request, name)})")
    for name in ("warm_s", "bake_s", "max_unknown_orders"):
        if getattr(request, name) < 0:
            problems.append(f"{name} must be >= 0 (got {getattr(request, name)})")
    if request.max_pnl_drop < 0 or request.max_market_data_lag_s <= 0:
        problems.append("max_pnl_drop must be >= 0 and max_market_data_lag_s > 0")
    if not PurePosixPath(request.release_path).is_absolute():
        problems.append(f"release_path must be absolute (got {request.release_path!r})")
    if problems:
        raise ApplicationError("; ".join(problems), type="InvalidInput", non_retryable=True)


def _reason(error: BaseException) -> str:
    """Return the innermost message: an activity's own refusal, not the SDK's wrapper."""
    while isinstance(error, ActivityError) and error.cause is not None:
        error = error.cause
    return str(error) or type(error).__name__


def _seconds_since(started: datetime) -> float:
    return round((workflow.now() - started).total_seconds(), 3)
