"""Start a rollout from Python (the control API and the CLI use this, not raw ids)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.blue_green_deploy.models import RolloutInput, RolloutResult, workflow_id
from workflows.blue_green_deploy.workflow import (
    ID_CONFLICT_POLICY,
    ID_REUSE_POLICY,
    BlueGreenDeployWorkflow,
)

if TYPE_CHECKING:
    from engine.live.release import Release


class RolloutAlreadyStartedError(Exception):
    """This release version was already deployed (or is being deployed): bump the version.

    Attributes:
        workflow_id: the id of the rollout that holds the version (``deploy-<version>``).
    """

    def __init__(self, message: str, *, workflow_id: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


async def start_rollout(
    client: Client, request: RolloutInput, *, task_queue: str | None = None
) -> WorkflowHandle[BlueGreenDeployWorkflow, RolloutResult]:
    """Start the rollout of ``request.release_path`` under ``deploy-<version>``.

    The manifest is loaded here first, so a bad file is refused before anything starts.

    Raises:
        ReleaseError: the manifest does not load (names the field).
        RolloutAlreadyStartedError: a rollout of this version runs or ran already.
    """
    if task_queue is None:
        from workflows.registry import TASK_QUEUE

        task_queue = TASK_QUEUE
    path, release = await asyncio.to_thread(_load, request.release_path)
    request = replace(request, release_path=str(path))
    wid = workflow_id(release.version, dry_run=request.dry_run)
    try:
        return await client.start_workflow(
            BlueGreenDeployWorkflow.run,
            request,
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=ID_REUSE_POLICY,
            id_conflict_policy=ID_CONFLICT_POLICY,
        )
    except WorkflowAlreadyStartedError as e:
        raise RolloutAlreadyStartedError(
            f"release {release.version} was already rolled out or is rolling out (workflow"
            f" {wid}); a version deploys once: give the release a new version",
            workflow_id=wid,
        ) from e


def _load(release_path: str) -> tuple[Path, Release]:
    """Return the absolute path (the worker and the engine must find it) and the release."""
    from engine.live.release import Release

    path = Path(release_path).absolute()
    return path, Release.load(path)
