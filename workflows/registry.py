"""Every workflow and activity the bot4 worker hosts, and its task queue."""

from __future__ import annotations

from typing import Final

from workflows.stack_check.activities import StackCheckActivities
from workflows.stack_check.workflow import StackCheckWorkflow

TASK_QUEUE: Final = "bot4"

WORKFLOWS: Final = (StackCheckWorkflow,)


def activity_methods() -> list[object]:
    """Return the bound activity methods for a worker."""
    stack_check = StackCheckActivities()
    return [stack_check.digest]
