"""The liquidation workflow: take symbols out of the strategy and unwind them, durably.

Steps (:data:`STEPS`, also the runbook's headings): ``plan`` (the leader, the symbols,
their journaled positions; all a dry run returns), ``approve`` (an all-symbols run waits
for a second operator; never the requester), ``reduce`` (the leader stops quoting the
symbols and reports the positions to unwind; after an emergency stop it also lifts the
halt to REDUCING), ``unwind`` (one long activity: reduce-only IOC children through the
leader, TWAP or participation-capped, priced inside the band of the live book's mid;
heartbeats every slice and resumes from its heartbeat after a worker crash), ``verify``
(flat in the journal, nothing open at the venue, balances equal the journal's baseline
plus its fills), ``report`` (filled, remaining, shortfall against the arrival mid).

Children's client ids are ``liq-<10 hex of sha256(workflow id/run id)>-<symbol>-<slice>``:
a retried slice reuses its id and the engine never sends an id twice. At the deadline the
unwind stops and the run *completes* with what remains (``flat`` False): an operator reads
a report, not a stack trace. Nothing is compensated: an unwind only lowers risk; the
symbols stay out of the strategy until an operator gives them back (``restore``).

Start it with :data:`ID_REUSE_POLICY` and :data:`ID_CONFLICT_POLICY` under
``liquidate-<all | symbols>`` (:func:`~workflows.liquidation.models.workflow_id`): a second
liquidation of the same symbols is refused while one runs, allowed once it ended.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.approvals import Approvals, Decision, Progress
    from workflows.heartbeat import SHORT_HEARTBEAT_TIMEOUT
    from workflows.liquidation.activities import LiquidationActivities
    from workflows.liquidation.models import (
        STEPS,
        ChildFills,
        LiquidationInput,
        LiquidationResult,
        ReduceInput,
        SymbolPosition,
        UnwindInput,
        UnwindResult,
        VerifyInput,
        VerifyResult,
        check_input,
        child_prefix,
    )

__all__ = ["ID_CONFLICT_POLICY", "ID_REUSE_POLICY", "STEPS", "LiquidationWorkflow"]

ID_REUSE_POLICY: Final = WorkflowIDReusePolicy.ALLOW_DUPLICATE
ID_CONFLICT_POLICY: Final = WorkflowIDConflictPolicy.FAIL
VERIFY_ROUNDS: Final = 5

_QUICK: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=30,  # ~2 min: an engine restart or a takeover fits
    non_retryable_error_types=["InvalidInput"],
)
_UNWIND: Final = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=3),
    maximum_attempts=0,  # bounded by schedule_to_close: the deadline plus a margin
    non_retryable_error_types=["InvalidInput"],
)
_HEARTBEAT: Final = timedelta(seconds=6)


@workflow.defn(name="liquidation")
class LiquidationWorkflow:
    """Unwind the positions of some (or all) symbols; report what remains."""

    @workflow.init
    def __init__(self, request: LiquidationInput) -> None:
        self.approvals = Approvals(request.requested_by)
        self.step = "starting"
        self.detail = ""

    # --- operator decisions and progress ------------------------------------------------
    @workflow.update
    async def approve(self, decision: Decision) -> str:
        """Approve the waiting guarded step (a second operator, not the requester)."""
        return self.approvals.approve(decision)

    @approve.validator
    def _check_approve(self, decision: Decision) -> None:
        self.approvals.check_approve(decision)

    @workflow.update
    async def abort(self, decision: Decision) -> str:
        """Stop the run (the unwind stops after its current child; nothing is undone)."""
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

    @workflow.run
    async def run(self, request: LiquidationInput) -> LiquidationResult:
        """Run the steps, or return the plan for a dry run.

        Raises:
            ApplicationError: ``InvalidInput``, ``Aborted``, ``ApprovalTimeout``.
        """
        try:
            check_input(request)
        except ValueError as e:
            raise ApplicationError(str(e), type="InvalidInput", non_retryable=True) from None
        started = workflow.now()
        self.step = "plan"
        plan = await workflow.execute_activity_method(
            LiquidationActivities.plan, request,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,
        )  # fmt: skip
        if request.dry_run:
            return LiquidationResult(dry_run=True, requested_by=request.requested_by,
                                     plan=plan, started_at=started)  # fmt: skip
        approver = None
        if plan.needs_approval:
            self.step = "approve"
            self.detail = "waiting for a second operator to approve liquidating every symbol"
            approver = await self.approvals.wait_for_approval(
                "approve", within=timedelta(seconds=request.approval_timeout_s)
            )
            self.detail = f"approved by {approver}"
        self.approvals.raise_if_aborted()
        self.step = "reduce"
        reduced = await workflow.execute_activity_method(
            LiquidationActivities.reduce,
            ReduceInput(symbols=plan.symbols, lift_halt=request.lift_halt,
                        by=request.requested_by, reason=request.reason),
            start_to_close_timeout=timedelta(seconds=60), retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,
        )  # fmt: skip
        self.step = "unwind"
        unwind = await self._unwind(request, reduced.positions)
        self.step = "verify"
        verified = await self._verify(plan.symbols, unwind)
        self.step = "report"
        info = workflow.info()
        fills = await workflow.execute_activity_method(
            LiquidationActivities.child_fills, child_prefix(f"{info.workflow_id}/{info.run_id}"),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=_QUICK,
            heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,
        )  # fmt: skip
        remaining = tuple(
            SymbolPosition(symbol=s.symbol, qty=s.remaining, mid=s.arrival_mid)
            for s in unwind.symbols if Decimal(s.remaining) != 0
        )  # fmt: skip
        self.detail = f"flat: {verified.flat}; stopped: {unwind.stopped}"
        return LiquidationResult(
            dry_run=False, requested_by=request.requested_by, plan=plan, started_at=started,
            approved_by=approver, unwind=unwind, verify=verified,
            flat=verified.flat and not remaining, remaining=remaining,
            shortfall_bps=shortfall_bps(unwind, {f.symbol: f for f in fills}),
            duration_ms=int((workflow.now() - started).total_seconds() * 1000),
        )  # fmt: skip

    async def _unwind(
        self, request: LiquidationInput, positions: tuple[SymbolPosition, ...]
    ) -> UnwindResult:
        info = workflow.info()
        handle = workflow.start_activity_method(
            LiquidationActivities.unwind,
            UnwindInput(
                child_prefix=child_prefix(f"{info.workflow_id}/{info.run_id}"),
                positions=positions,
                deadline_at=workflow.now() + timedelta(seconds=request.deadline_s),
                mode=request.mode, max_participation=request.max_participation,
                band_bps=request.band_bps, slice_interval_ms=request.slice_interval_ms,
                by=request.requested_by,
            ),
            schedule_to_close_timeout=timedelta(seconds=request.deadline_s + 300),
            heartbeat_timeout=_HEARTBEAT,
            retry_policy=_UNWIND,
        )  # fmt: skip
        await workflow.wait_condition(
            lambda: handle.done() or self.approvals.aborted_by is not None
        )
        if not handle.done():
            handle.cancel()  # the activity sees it at its next heartbeat
            self.approvals.raise_if_aborted()
        return await handle

    async def _verify(self, symbols: tuple[str, ...], unwind: UnwindResult) -> VerifyResult:
        """Ask until flat (fills and balances may lag a moment), at most VERIFY_ROUNDS."""
        verified = None
        for _ in range(VERIFY_ROUNDS):
            verified = await workflow.execute_activity_method(
                LiquidationActivities.verify, VerifyInput(symbols=symbols),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=_QUICK,
                heartbeat_timeout=SHORT_HEARTBEAT_TIMEOUT,
            )  # fmt: skip
            if verified.flat or unwind.stopped != "done":
                break
            await workflow.sleep(timedelta(seconds=1))
        assert verified is not None
        return verified


def shortfall_bps(unwind: UnwindResult, fills: dict[str, ChildFills]) -> float | None:
    """Return the implementation shortfall against the arrival mid, in bps of notional.

    Positive is a cost: sold below (or bought above) the mid when the unwind began.
    """
    cost = Decimal(0)
    notional = Decimal(0)
    for leg in unwind.symbols:
        f = fills.get(leg.symbol)
        mid = Decimal(leg.arrival_mid or "0")
        if f is None or mid <= 0:
            continue
        qty, value = Decimal(f.qty), Decimal(f.notional)
        sign = 1 if leg.side == "sell" else -1
        cost += sign * (mid * qty - value)
        notional += mid * qty
    if notional == 0:
        return None
    return round(float(cost / notional * 10_000), 3)
