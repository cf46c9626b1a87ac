"""Every workflow and activity the bot4 worker hosts, and its task queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bot4.settings import Settings
from workflows.emergency_stop.activities import EmergencyStopActivities, EmergencyStopConfig
from workflows.emergency_stop.workflow import EmergencyStopWorkflow
from workflows.stack_check.activities import StackCheckActivities
from workflows.stack_check.workflow import StackCheckWorkflow

TASK_QUEUE: Final = "bot4"

WORKFLOWS: Final = (StackCheckWorkflow, EmergencyStopWorkflow)


def activity_methods(settings: Settings) -> list[Callable[..., Any]]:
    """Return the bound activity methods for a worker, with clients built from ``settings``."""
    stack_check = StackCheckActivities()
    emergency_stop = EmergencyStopActivities(EmergencyStopConfig.from_settings(settings))
    return [
        stack_check.digest,
        emergency_stop.plan,
        emergency_stop.halt_engines,
        emergency_stop.cancel_venue_orders,
        emergency_stop.verify,
    ]
