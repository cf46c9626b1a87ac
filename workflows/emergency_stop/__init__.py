"""emergency_stop: halt every engine, cancel every venue order, verify, report."""

from workflows.emergency_stop.models import (
    WORKFLOW_ID,
    EmergencyStopInput,
    EmergencyStopPlan,
    EmergencyStopResult,
    workflow_id,
)
from workflows.emergency_stop.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    STEPS,
    EmergencyStopWorkflow,
)

__all__ = [
    "ID_CONFLICT_POLICY",
    "ID_REUSE_POLICY",
    "STEPS",
    "WORKFLOW_ID",
    "EmergencyStopInput",
    "EmergencyStopPlan",
    "EmergencyStopResult",
    "EmergencyStopWorkflow",
    "workflow_id",
]
