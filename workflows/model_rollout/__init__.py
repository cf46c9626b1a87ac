"""model_rollout: verify, shadow, canary, hot-swap promote, bake, or roll back a model."""

from workflows.model_rollout.client import (
    ModelRolloutAlreadyStartedError,
    start_model_rollout,
)
from workflows.model_rollout.models import (
    STEPS,
    ModelPlan,
    ModelRolloutInput,
    ModelRolloutResult,
    workflow_id,
)
from workflows.model_rollout.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    ModelRolloutWorkflow,
)

__all__ = [
    "ID_CONFLICT_POLICY",
    "ID_REUSE_POLICY",
    "STEPS",
    "ModelPlan",
    "ModelRolloutAlreadyStartedError",
    "ModelRolloutInput",
    "ModelRolloutResult",
    "ModelRolloutWorkflow",
    "start_model_rollout",
    "workflow_id",
]
