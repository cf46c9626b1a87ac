"""The stack_check workflow: one activity, explicit timeout and retry policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.stack_check.activities import StackCheckActivities
    from workflows.stack_check.models import StackCheckInput, StackCheckResult

STEPS: Final = ("stack_check.digest",)


@workflow.defn(name="stack_check")
class StackCheckWorkflow:
    """Run the digest activity once and return its result."""

    @workflow.run
    async def run(self, request: StackCheckInput) -> StackCheckResult:
        """Execute the round trip."""
        return await workflow.execute_activity_method(
            StackCheckActivities.digest,
            request,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
        )
