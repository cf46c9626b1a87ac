"""blue_green_deploy: a release on the idle color, a fenced handoff, a bake, or a rollback."""

from workflows.blue_green_deploy.client import RolloutAlreadyStartedError, start_rollout
from workflows.blue_green_deploy.models import (
    STEPS,
    RolloutInput,
    RolloutPlan,
    RolloutResult,
    workflow_id,
)
from workflows.blue_green_deploy.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    BlueGreenDeployWorkflow,
)

__all__ = [
    "ID_CONFLICT_POLICY",
    "ID_REUSE_POLICY",
    "STEPS",
    "BlueGreenDeployWorkflow",
    "RolloutAlreadyStartedError",
    "RolloutInput",
    "RolloutPlan",
    "RolloutResult",
    "start_rollout",
    "workflow_id",
]
