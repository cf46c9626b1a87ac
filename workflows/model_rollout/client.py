"""Start a model rollout from Python (the control API and the CLI use this)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.model_rollout.models import ModelRolloutInput, ModelRolloutResult, workflow_id
from workflows.model_rollout.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    ModelRolloutWorkflow,
)


class ModelRolloutAlreadyStartedError(Exception):
    """This version was already rolled out (or is rolling out): register a new one.

    Attributes:
        workflow_id: the id of the rollout that holds the version.
    """

    def __init__(self, message: str, *, workflow_id: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


async def start_model_rollout(
    client: Client, request: ModelRolloutInput, *, task_queue: str | None = None
) -> WorkflowHandle[ModelRolloutWorkflow, ModelRolloutResult]:
    """Start the rollout of ``request.version`` under ``model-rollout-<version>``.

    Raises:
        ModelRolloutAlreadyStartedError: a rollout of this version runs or ran already.
    """
    if task_queue is None:
        from workflows.registry import TASK_QUEUE

        task_queue = TASK_QUEUE
    wid = workflow_id(request.version, dry_run=request.dry_run)
    try:
        return await client.start_workflow(
            ModelRolloutWorkflow.run,
            request,
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=ID_REUSE_POLICY,
            id_conflict_policy=ID_CONFLICT_POLICY,
        )
    except WorkflowAlreadyStartedError as e:
        raise ModelRolloutAlreadyStartedError(
            f"model {request.version} was already rolled out or is rolling out (workflow"
            f" {wid}); a version rolls out once: register a new version",
            workflow_id=wid,
        ) from e
