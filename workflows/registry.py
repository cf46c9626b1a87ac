"""Every workflow and activity the bot4 worker hosts, and its task queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bot4.settings import Settings
from workflows.blue_green_deploy.activities import DeployActivities, DeployConfig
from workflows.blue_green_deploy.workflow import BlueGreenDeployWorkflow
from workflows.dr_failover.activities import DrFailoverActivities, DrFailoverConfig
from workflows.dr_failover.workflow import DrFailoverWorkflow
from workflows.emergency_stop.activities import EmergencyStopActivities, EmergencyStopConfig
from workflows.emergency_stop.workflow import EmergencyStopWorkflow
from workflows.liquidation.activities import LiquidationActivities, LiquidationConfig
from workflows.liquidation.workflow import LiquidationWorkflow
from workflows.model_rollout.activities import ModelRolloutActivities, ModelRolloutConfig
from workflows.model_rollout.workflow import ModelRolloutWorkflow
from workflows.stack_check.activities import StackCheckActivities
from workflows.stack_check.workflow import StackCheckWorkflow

TASK_QUEUE: Final = "bot4"

WORKFLOWS: Final = (
    StackCheckWorkflow,
    EmergencyStopWorkflow,
    BlueGreenDeployWorkflow,
    ModelRolloutWorkflow,
    LiquidationWorkflow,
    DrFailoverWorkflow,
)


def activity_methods(settings: Settings) -> list[Callable[..., Any]]:
    """Return the bound activity methods for a worker, with clients built from ``settings``."""
    stack_check = StackCheckActivities()
    emergency_stop = EmergencyStopActivities(EmergencyStopConfig.from_settings(settings))
    return [
        *deploy_activities(DeployActivities(DeployConfig.from_settings(settings))),
        *model_rollout_activities(
            ModelRolloutActivities(ModelRolloutConfig.from_settings(settings))
        ),
        *liquidation_activities(LiquidationActivities(LiquidationConfig.from_settings(settings))),
        *dr_failover_activities(DrFailoverActivities(DrFailoverConfig.from_settings(settings))),
        stack_check.digest,
        emergency_stop.plan,
        emergency_stop.halt_engines,
        emergency_stop.cancel_venue_orders,
        emergency_stop.verify,
    ]


def deploy_activities(deploy: DeployActivities) -> list[Callable[..., Any]]:
    """Return the bound activity methods of blue_green_deploy (tests build their own)."""
    return [
        deploy.plan,
        deploy.start_standby,
        deploy.warm_standby,
        deploy.health_gate,
        deploy.handoff,
        deploy.bake_check,
        deploy.retire_old,
        deploy.rollback,
    ]


def model_rollout_activities(rollout: ModelRolloutActivities) -> list[Callable[..., Any]]:
    """Return the bound activity methods of model_rollout (tests build their own)."""
    return [
        rollout.plan,
        rollout.verify_checksum,
        rollout.start_shadow,
        rollout.start_canary,
        rollout.promote,
        rollout.observe,
        rollout.rollback,
    ]


def liquidation_activities(liquidation: LiquidationActivities) -> list[Callable[..., Any]]:
    """Return the bound activity methods of liquidation (tests build their own)."""
    return [
        liquidation.plan,
        liquidation.reduce,
        liquidation.unwind,
        liquidation.child_fills,
        liquidation.verify,
    ]


def dr_failover_activities(failover: DrFailoverActivities) -> list[Callable[..., Any]]:
    """Return the bound activity methods of dr_failover (tests build their own)."""
    return [
        failover.plan,
        failover.preconditions,
        failover.hold_engines,
        failover.stop_primary,
        failover.start_node,
        failover.wait_replayed,
        failover.detect,
        failover.promote,
        failover.verify,
        failover.rejoin,
        failover.steady_state,
        failover.kill_node,
        failover.store_report,
    ]
