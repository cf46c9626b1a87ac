"""Activities of the stack_check workflow."""

from __future__ import annotations

import hashlib
import os

from temporalio import activity

from workflows.stack_check.models import StackCheckInput, StackCheckResult


class StackCheckActivities:
    """Holds no clients: the check only proves an activity ran on a worker."""

    @activity.defn(name="stack_check.digest")
    async def digest(self, request: StackCheckInput) -> StackCheckResult:
        """Hash the token on the worker (idempotent: same input, same digest)."""
        return StackCheckResult(
            token_sha256=hashlib.sha256(request.token.encode()).hexdigest(),
            worker_pid=os.getpid(),
            attempts=activity.info().attempt,
        )
