"""dr_failover: switch or fail the desk's PostgreSQL primary over to its standby, measured."""

from workflows.dr_failover.models import (
    STEPS,
    WORKFLOW_ID,
    DrFailoverInput,
    DrFailoverResult,
    workflow_id,
)
from workflows.dr_failover.workflow import ID_CONFLICT_POLICY, ID_REUSE_POLICY, DrFailoverWorkflow

__all__ = [
    "ID_CONFLICT_POLICY",
    "ID_REUSE_POLICY",
    "STEPS",
    "WORKFLOW_ID",
    "DrFailoverInput",
    "DrFailoverResult",
    "DrFailoverWorkflow",
    "workflow_id",
]
