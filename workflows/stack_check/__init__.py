"""stack_check: the smallest durable round trip, proving the worker and server talk."""

from workflows.stack_check.models import StackCheckInput, StackCheckResult
from workflows.stack_check.workflow import StackCheckWorkflow

__all__ = ["StackCheckInput", "StackCheckResult", "StackCheckWorkflow"]
