"""liquidation: take symbols out of the strategy, unwind them in child orders, verify flat."""

from workflows.liquidation.models import (
    STEPS,
    LiquidationInput,
    LiquidationPlan,
    LiquidationResult,
    child_prefix,
    workflow_id,
)
from workflows.liquidation.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    LiquidationWorkflow,
)

__all__ = [
    "ID_CONFLICT_POLICY",
    "ID_REUSE_POLICY",
    "STEPS",
    "LiquidationInput",
    "LiquidationPlan",
    "LiquidationResult",
    "LiquidationWorkflow",
    "child_prefix",
    "workflow_id",
]
