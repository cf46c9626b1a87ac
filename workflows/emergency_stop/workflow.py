"""The emergency_stop workflow: halt every engine, cancel every order, verify, report.

Steps (``STEPS``, also the runbook's headings): ``halt_engines`` (PostgreSQL flag + each
engine's ``POST /admin/halt``), ``cancel_venue_orders`` (cancel all per symbol),
``verify`` (nothing open, reached engines HALTED, flag engaged; cancel again and re-check
up to ``VERIFY_ROUNDS`` times), ``report`` (the typed result). Nothing is compensated: a
stop only lowers risk, and undoing it is the operator's deliberate ``bot4 engine resume``.

Start it with :data:`ID_REUSE_POLICY` and :data:`ID_CONFLICT_POLICY` under
:func:`~workflows.emergency_stop.models.workflow_id`: one id, ``emergency-stop``, reusable
once a run has closed (the desk may need a second stop tomorrow) but failing a start while
one runs (a double click, or two operators, get the running stop, not a second one). A
per-minute id would let two stops run side by side across a minute boundary.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.emergency_stop.activities import EmergencyStopActivities
    from workflows.emergency_stop.models import (
        EmergencyStopInput,
        EmergencyStopResult,
        EngineEndpoint,
        HaltEnginesInput,
        VerifyInput,
        VerifyResult,
    )
    from workflows.heartbeat import SHORT_HEARTBEAT_TIMEOUT
    from workflows.liquidation.models import LiquidationInput
    from workflows.liquidation.models import workflow_id as liquidation_workflow_id

STEPS: Final = ("halt_engines", "cancel_venue_orders", "verify", "report")
VERIFY_ROUNDS: Final = 3
ID_REUSE_POLICY: Final = WorkflowIDReusePolicy.ALLOW_DUPLICATE
ID_CONFLICT_POLICY: Final = WorkflowIDConflictPolicy.FAIL

_QUICK: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
)


@workflow.defn(name="emergency_stop")
class EmergencyStopWorkflow:
    """Stop the desk; fail loudly when the venue still shows open orders."""

    @workflow.run
    async def run(self, request: EmergencyStopInput) -> EmergencyStopResult:
        """Run the steps, or return the plan for a dry run.

        Raises:
            ApplicationError: ``InvalidInput`` (no reason), or ``EmergencyStopNotVerified``
                when orders stay open or a reached engine is not HALTED after every round.
        """
        if not request.reason.strip():
            raise ApplicationError(
                "reason must not be empty: say why the desk stops",
                type="InvalidInput",
                non_retryable=True,
            )
        started = workflow.now()
        plan = await workflow.execute_activity_method(
            EmergencyStopActivities.plan,
            request,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,  # a dead worker: retried in seconds
        )
        if request.dry_run:
            return EmergencyStopResult(
                dry_run=True,
                reason=request.reason,
                requested_by=request.requested_by,
                plan=plan,
                started_at=started,
            )
        workflow.logger.warning("emergency stop: halt_engines (%s)", request.reason)
        halted = await workflow.execute_activity_method(
            EmergencyStopActivities.halt_engines,
            HaltEnginesInput(reason=request.reason, requested_by=request.requested_by),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,  # a dead worker: retried in seconds
        )
        reached = tuple(
            EngineEndpoint(color=e.color, url=e.url) for e in halted.engines if e.reached
        )
        canceled, verified, rounds = 0, None, 0
        while rounds < VERIFY_ROUNDS:
            rounds += 1
            result = await workflow.execute_activity_method(
                EmergencyStopActivities.cancel_venue_orders,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=_QUICK,
            )
            canceled += result.total
            verified = await self._verify(reached)
            if verified.ok:
                break
            workflow.logger.warning("emergency stop: verify round %d failed: %s", rounds, verified)
            await workflow.sleep(timedelta(seconds=1))
        assert verified is not None
        if not verified.ok:
            raise ApplicationError(
                f"not verified after {rounds} rounds: {verified.open_orders_left} orders open,"
                f" engines not halted {list(verified.engines_not_halted)},"
                f" kill switch engaged {verified.kill_switch_engaged}",
                verified,
                type="EmergencyStopNotVerified",
                non_retryable=True,
            )
        liquidation = await self._chain_liquidation(request) if request.liquidate else None
        return EmergencyStopResult(  # report
            liquidation_workflow_id=liquidation,
            dry_run=False,
            reason=request.reason,
            requested_by=request.requested_by,
            plan=plan,
            started_at=started,
            kill_switch_engaged=verified.kill_switch_engaged,
            engines_halted=tuple(e.color for e in halted.engines if e.halted),
            engines_unreachable=tuple(e.color for e in halted.engines if not e.reached),
            orders_canceled=canceled,
            open_orders_left=verified.open_orders_left,
            verify_rounds=rounds,
            duration_ms=int((workflow.now() - started).total_seconds() * 1000),
        )

    async def _chain_liquidation(self, request: EmergencyStopInput) -> str:
        """Start the all-symbols liquidation as an abandoned child; return its id.

        Abandoned: it outlives this run (it waits for a second operator's approval first).
        Started only after the stop is verified, and with ``lift_halt``: the liquidation
        disengages the kill switch and raises the leader from HALTED to REDUCING itself,
        after the approval, with every symbol out of the strategy.
        """
        child = LiquidationInput(
            all_symbols=True, lift_halt=True, deadline_s=request.liquidation_deadline_s,
            reason=f"after emergency stop: {request.reason}", requested_by=request.requested_by,
        )  # fmt: skip
        wid = liquidation_workflow_id(child)
        await workflow.start_child_workflow(
            "liquidation", child, id=wid, parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )  # fmt: skip
        workflow.logger.warning("emergency stop: liquidation %s started", wid)
        return wid

    async def _verify(self, engines: tuple[EngineEndpoint, ...]) -> VerifyResult:
        return await workflow.execute_activity_method(
            EmergencyStopActivities.verify,
            VerifyInput(engines=engines),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,  # a dead worker: retried in seconds
        )
