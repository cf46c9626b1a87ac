"""The stack_check workflow: one activity, explicit timeout and retry policy.

With ``require_approval`` its one step is guarded: it waits for a second operator's
approval (never the requester's), and an abort ends it — the smallest proof that the
runbook machinery of :mod:`workflows.approvals` works through a real server.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.approvals import Approvals, Decision, Progress
    from workflows.stack_check.activities import StackCheckActivities
    from workflows.stack_check.models import StackCheckInput, StackCheckResult

STEPS: Final = ("stack_check.digest",)
GUARDED_STEPS: Final = ("stack_check.digest",)
APPROVAL_WAIT: Final = timedelta(hours=1)


@workflow.defn(name="stack_check")
class StackCheckWorkflow:
    """Run the digest activity once (after an approval when asked) and return its result."""

    @workflow.init
    def __init__(self, request: StackCheckInput) -> None:
        # from the input, before any update can be validated against the requester
        self.approvals = Approvals(requester=request.requested_by)
        self.step = "starting"

    @workflow.run
    async def run(self, request: StackCheckInput) -> StackCheckResult:
        """Execute the round trip."""
        if request.dry_run:
            self.step = "done"
            return StackCheckResult(dry_run=True)
        approved_by = ""
        if request.require_approval:
            self.step = "awaiting approval"
            approved_by = await self.approvals.wait_for_approval(STEPS[0], within=APPROVAL_WAIT)
        self.step = STEPS[0]
        result = await workflow.execute_activity_method(
            StackCheckActivities.digest,
            request,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
        )
        self.step = "done"
        return replace(result, approved_by=approved_by)

    @workflow.query
    def progress(self) -> Progress:
        """Where the run is, and what it waits for."""
        return Progress(
            step=self.step,
            waiting_for_approval=self.approvals.waiting_for,
            approved=tuple(self.approvals.approved),
            aborted_by=self.approvals.aborted_by,
        )

    @workflow.update
    async def approve(self, decision: Decision) -> str:
        """A second operator approves the waiting step."""
        return self.approvals.approve(decision)

    @approve.validator
    def _check_approve(self, decision: Decision) -> None:
        self.approvals.check_approve(decision)

    @workflow.update
    async def abort(self, decision: Decision) -> str:
        """Stop the run at its next check (here: while it waits for approval)."""
        return self.approvals.abort(decision)

    @abort.validator
    def _check_abort(self, decision: Decision) -> None:
        self.approvals.check_abort(decision)
