"""The dr_failover workflow: move the desk's PostgreSQL primary to the standby, measured.

Switchover (planned): ``preconditions`` (standby streaming, sync, lag under the bound;
refused with nothing changed otherwise) → ``hold_engines`` (gate condition at REDUCING:
nothing new opens while the journal moves) → ``stop_primary`` (clean: the shutdown
checkpoint reaches the standby; the engine's writes start failing and queue) →
``wait_replayed`` (the standby applied that checkpoint: nothing acknowledged is left
behind) → ``promote`` (the standby commits alone until the rejoin) → ``verify`` (a write
probe lands on the new primary through the multi-host DSN, the engine's journal is
healthy with nothing queued, every fact it saw acknowledged is there: the RPO count) →
``release_engines`` → ``rejoin`` (pg_rewind, a base backup as the fallback, then
synchronous again) → ``report``.

Failover (unplanned): ``detect`` (consecutive failed probes within a bound; a primary
that still answers refuses the run) → ``hold_engines`` → ``promote`` → ``verify`` →
``release_engines`` → ``rejoin`` → ``report``.

A failure before the promotion restarts the old primary (it never stopped being the
primary); after it nothing is undone (two primaries would be worse) and the error says
what to do. The holds are released whatever happens. One run at a time: the id is fixed
(:data:`~workflows.dr_failover.models.WORKFLOW_ID`), reusable once a run closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.dr_failover.activities import DrFailoverActivities
    from workflows.dr_failover.models import (
        MODES,
        STEPS,
        ClusterState,
        DetectInput,
        DetectResult,
        DrFailoverInput,
        DrFailoverResult,
        DrPlan,
        HoldInput,
        PromoteResult,
        RejoinInput,
        RejoinResult,
        ReplayInput,
        SteadyState,
        SteadyStateInput,
        StepTiming,
        VerifyInput,
        VerifyResult,
    )

__all__ = ["ID_CONFLICT_POLICY", "ID_REUSE_POLICY", "STEPS", "DrFailoverWorkflow", "DrProgress"]

ID_REUSE_POLICY: Final = WorkflowIDReusePolicy.ALLOW_DUPLICATE
ID_CONFLICT_POLICY: Final = WorkflowIDConflictPolicy.FAIL

_RETRY: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
    non_retryable_error_types=[
        "InvalidInput", "PreconditionFailed", "PrimaryAlive", "PromoteRefused", "SplitBrain",
    ],
)  # fmt: skip

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class DrProgress:
    """What ``progress`` answers while the run goes on."""

    mode: str
    step: str
    done: tuple[StepTiming, ...]


@workflow.defn(name="dr_failover")
class DrFailoverWorkflow:
    """Switch or fail the primary over to the standby and report RTO and RPO."""

    def __init__(self) -> None:
        self._mode = "switchover"
        self._step_name = "plan"
        self._done: list[StepTiming] = []
        self._promoted: PromoteResult | None = None
        self._fault_at: float | None = None  # when the primary stopped taking writes

    @workflow.query
    def progress(self) -> DrProgress:
        """Return the current step and the measured ones."""
        return DrProgress(mode=self._mode, step=self._step_name, done=tuple(self._done))

    async def _step(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        self._step_name = name
        started = workflow.now()
        result = await call()
        self._done.append(StepTiming(
            step=name, ms=int((workflow.now() - started).total_seconds() * 1000)))  # fmt: skip
        return result

    def _activity(
        self, method: Callable[..., Awaitable[T]], *args: object, timeout_s: int = 60
    ) -> Callable[[], Awaitable[T]]:
        return lambda: workflow.execute_activity_method(
            method, args=args, start_to_close_timeout=timedelta(seconds=timeout_s),
            heartbeat_timeout=timedelta(seconds=20), retry_policy=_RETRY,
        )  # fmt: skip

    @workflow.run
    async def run(self, request: DrFailoverInput) -> DrFailoverResult:
        """Run the steps of the mode (a drill around them), or return the plan.

        Raises:
            ApplicationError: ``InvalidInput``, ``PreconditionFailed`` or
                ``SteadyStateNotMet`` (nothing changed), ``PrimaryAlive`` (a failover of a
                primary that answers), ``ProbeFailed``, ``EngineNotRecovered`` or
                ``SplitBrain`` after the promotion.
        """
        if request.mode not in MODES:
            raise ApplicationError(f"mode must be one of {MODES} (got {request.mode!r})",
                                   type="InvalidInput", non_retryable=True)  # fmt: skip
        self._mode = request.mode
        started = workflow.now()
        plan: DrPlan = await self._step(
            "plan", self._activity(DrFailoverActivities.plan, request, timeout_s=30)
        )
        result = DrFailoverResult(
            dry_run=request.dry_run, mode=request.mode, plan=plan, drill=request.drill,
            requested_by=request.requested_by, reason=request.reason, started_at=started,
        )  # fmt: skip
        if request.dry_run:
            return result
        if not request.drill:
            return await self._move(request, plan, result)
        before: SteadyState = await self._step("steady_state_before", self._activity(
            DrFailoverActivities.steady_state, SteadyStateInput()))  # fmt: skip
        if not before.holds:
            raise ApplicationError("drill refused, nothing changed: the steady state does not"
                                   " hold: " + "; ".join(before.problems),
                                   type="SteadyStateNotMet", non_retryable=True)  # fmt: skip
        result = replace(result, hypothesis_before=before)
        try:
            if request.mode == "failover":
                assert plan.cluster.primary is not None  # the steady state says so
                self._fault_at = workflow.now().timestamp()
                await self._step("inject_fault", self._activity(
                    DrFailoverActivities.kill_node, plan.cluster.primary))  # fmt: skip
            result = await self._move(request, plan, result)
        except (ActivityError, ApplicationError) as e:
            failed = replace(result, passed=False, failures=(f"aborted: {_cause(e)}",),
                             steps=tuple(self._done))  # fmt: skip
            await self._store(failed)
            raise
        after: SteadyState = await self._step("steady_state_after", self._activity(
            DrFailoverActivities.steady_state, SteadyStateInput(within_s=60),
            timeout_s=90))  # fmt: skip
        failures = _drill_failures(request, result, after)
        result = replace(result, hypothesis_after=after, passed=not failures,
                         failures=failures)  # fmt: skip
        return await self._store(result)

    async def _store(self, result: DrFailoverResult) -> DrFailoverResult:
        stored: tuple[str, str | None] = await self._step("store_report", self._activity(
            DrFailoverActivities.store_report, result))  # fmt: skip
        return replace(result, report_id=stored[0], report_uri=stored[1], steps=tuple(self._done))

    async def _move(
        self, request: DrFailoverInput, plan: DrPlan, result: DrFailoverResult
    ) -> DrFailoverResult:
        """Move the primary (switchover or failover), verify, release, rejoin; report."""
        started = result.started_at
        detect: DetectResult | None = None
        if request.mode == "switchover":
            old, new = await self._switchover(request)
        else:
            old, new, detect = await self._failover(request, plan.cluster)
        promoted = self._promoted
        assert promoted is not None  # both modes promote or raise
        try:
            verify: VerifyResult = await self._step("verify", self._activity(
                DrFailoverActivities.verify,
                VerifyInput(new_primary=new, run_started_epoch=plan.started_at_epoch,
                            acks_since_epoch=plan.started_at_epoch - request.rpo_window_s),
                timeout_s=120))  # fmt: skip
        finally:
            await self._release(request)
        rejoin: RejoinResult | None = None
        if request.rejoin:
            rejoin = await self._step("rejoin", self._activity(
                DrFailoverActivities.rejoin, RejoinInput(old=old, new_primary=new),
                timeout_s=300))  # fmt: skip
        self._step_name = "report"
        degraded = None if rejoin is None else int(
            (workflow.now().timestamp() - promoted.promoted_at_epoch) * 1000)  # fmt: skip
        # RTO as the engine saw it; an engine that had nothing to write while the primary
        # moved saw no outage: then the journal's unwritable window, measured by the probe
        writable_at = verify.writable_at_epoch
        unwritable = None if self._fault_at is None or writable_at is None else round(
            max(0.0, writable_at - self._fault_at), 3)  # fmt: skip
        rto, source = (verify.rto_s, "engine") if verify.rto_s is not None else (
            unwritable, "database")  # fmt: skip
        return replace(
            result, old_primary=old, new_primary=new, rto_s=rto, rto_source=source,
            db_unwritable_s=unwritable,
            rpo_events=verify.rpo_events, verify=verify, rejoin=rejoin, detect=detect,
            degraded_ms=degraded, steps=tuple(self._done),
            duration_ms=int((workflow.now() - started).total_seconds() * 1000),
        )  # fmt: skip

    async def _switchover(self, request: DrFailoverInput) -> tuple[str, str]:
        state: ClusterState = await self._step("preconditions", self._activity(
            DrFailoverActivities.preconditions, request.max_lag_bytes))  # fmt: skip
        old, new = state.primary, state.standby
        if old is None or new is None:  # preconditions refuse that; never promote blind
            raise ApplicationError(f"no primary/standby pair: {state.roles}",
                                   type="PreconditionFailed", non_retryable=True)  # fmt: skip
        await self._hold(request)
        try:
            self._fault_at = workflow.now().timestamp()
            stop = await self._step("stop_primary", self._activity(
                DrFailoverActivities.stop_primary, old))  # fmt: skip
            await self._step("wait_replayed", self._activity(
                DrFailoverActivities.wait_replayed,
                ReplayInput(standby=new, lsn=stop.final_lsn)))  # fmt: skip
            self._promoted = await self._step("promote", self._activity(
                DrFailoverActivities.promote, new))  # fmt: skip
        except (ActivityError, ApplicationError):
            # not promoted: the old primary is still the primary; bring it back
            await workflow.execute_activity_method(
                DrFailoverActivities.start_node, old,
                start_to_close_timeout=timedelta(seconds=60), retry_policy=_RETRY,
            )  # fmt: skip
            await self._release(request)
            raise
        return old, new

    async def _failover(
        self, request: DrFailoverInput, cluster: ClusterState
    ) -> tuple[str, str, DetectResult]:
        standby = cluster.standby or next(
            (n for n, role in cluster.roles.items() if role == "standby"), None)  # fmt: skip
        if standby is None:
            raise ApplicationError(f"no standby to promote (roles: {cluster.roles})",
                                   type="PreconditionFailed", non_retryable=True)  # fmt: skip
        old = next(n for n in cluster.roles if n != standby)
        if self._fault_at is None:  # unplanned: it died before the run; the run's start
            self._fault_at = workflow.now().timestamp()  # bounds the window from below
        detect = await self._step("detect", self._activity(
            DrFailoverActivities.detect,
            DetectInput(primary=old, probes=request.detect_probes,
                        interval_ms=request.detect_interval_ms,
                        within_s=request.detect_within_s),
            timeout_s=request.detect_within_s + 30))  # fmt: skip
        await self._hold(request)
        try:
            self._promoted = await self._step("promote", self._activity(
                DrFailoverActivities.promote, standby))  # fmt: skip
        except (ActivityError, ApplicationError):
            await self._release(request)
            raise
        return old, standby, detect

    async def _hold(self, request: DrFailoverInput) -> None:
        await self._step(
            "hold_engines",
            self._activity(
                DrFailoverActivities.hold_engines,
                HoldInput(hold=True, reason=request.reason, requested_by=request.requested_by),
            ),
        )

    async def _release(self, request: DrFailoverInput) -> None:
        await self._step(
            "release_engines",
            self._activity(
                DrFailoverActivities.hold_engines,
                HoldInput(hold=False, reason=request.reason, requested_by=request.requested_by),
            ),
        )


def _cause(error: BaseException) -> str:
    """Return the innermost message of an activity failure (what the operator must read)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)


def _drill_failures(
    request: DrFailoverInput, result: DrFailoverResult, after: SteadyState
) -> tuple[str, ...]:
    """Say why a drill that ran to its end failed (empty: it passed)."""
    failures = []
    if result.rpo_events != 0:
        failures.append(f"RPO {result.rpo_events} acknowledged facts missing on the new primary")
    if result.rto_s is None:
        failures.append("no RTO measured (no engine outage, no probe window)")
    elif result.rto_s > request.max_rto_s:
        failures.append(f"RTO {result.rto_s:.3f} s over the {request.max_rto_s} s target")
    if request.rejoin and result.rejoin is None:
        failures.append("the old primary did not rejoin")
    if not after.holds:
        failures.append("steady state after: " + "; ".join(after.problems))
    return tuple(failures)
