"""The runbooks an operator can run: each one a workflow, its input model and its rules.

The control plane (``/v1/runbooks``, ``bot4 runbook``) reads this registry only: what
may be run, by which least role, with which parameters, under which workflow id. The
markdown of each runbook is ``runbooks/<name>.md`` (``tests/workflows/test_runbooks.py``
enforces the pairing and the step names).

Two input fields are the server's, never the caller's: ``requested_by`` (from the
caller's API key) and ``dry_run`` (a flag of the request).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from workflows.blue_green_deploy import models as blue_green_models
from workflows.blue_green_deploy import workflow as blue_green
from workflows.dr_failover import models as dr_failover_models
from workflows.dr_failover import workflow as dr_failover
from workflows.emergency_stop import models as emergency_stop_models
from workflows.emergency_stop import workflow as emergency_stop
from workflows.liquidation import models as liquidation_models
from workflows.liquidation import workflow as liquidation
from workflows.model_rollout import models as model_rollout_models
from workflows.model_rollout import workflow as model_rollout
from workflows.stack_check import models as stack_check_models
from workflows.stack_check import workflow as stack_check

RUNBOOK_DIR: Final = Path(__file__).resolve().parent.parent / "runbooks"
SERVER_FIELDS: Final = ("requested_by", "dry_run")


@dataclass(frozen=True, kw_only=True)
class Runbook:
    """One runnable runbook.

    Attributes:
        name: the runbook's and the workflow package's stem.
        workflow: the Temporal workflow type.
        input_type: the workflow's input dataclass.
        run_role: least role that may start it (``trader`` for what only lowers risk).
        steps: the workflow's step names, in order.
        guarded_steps: steps that wait for a second operator's approval (when asked).
        workflow_id: the business key of a run (a double start of the same key fails).
        id_reuse_policy: may a closed run's id be used again.
    """

    name: str
    workflow: str
    input_type: type[Any]
    run_role: str
    steps: tuple[str, ...]
    guarded_steps: tuple[str, ...]
    workflow_id: Callable[[Any], str]
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL

    def summary(self) -> str:
        """Return the first paragraph of the runbook's Purpose section."""
        text = self.markdown()
        _, _, after = text.partition("## Purpose")
        paragraph = after.strip().split("\n\n", 1)[0]
        return " ".join(paragraph.split())

    def markdown(self) -> str:
        """Return the runbook's text (a pointer to it when this build does not carry it)."""
        path = RUNBOOK_DIR / f"{self.name}.md"
        try:
            return path.read_text()
        except OSError:  # an installed wheel carries no runbooks/: say where they live
            return f"## Purpose\n\n(runbook text not installed: see runbooks/{self.name}.md)\n"

    def parameters(self) -> list[dict[str, object]]:
        """Describe the parameters a caller may give (not the server's fields)."""
        described = []
        for f in dataclasses.fields(self.input_type):
            if f.name in SERVER_FIELDS:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = None if required or f.default is dataclasses.MISSING else f.default
            described.append(
                {"name": f.name, "type": str(f.type), "required": required, "default": default}
            )
        return described


def _deploy_id(request: blue_green_models.RolloutInput) -> str:
    """``deploy-<release version>``: the manifest is loaded (and so checked) first.

    Raises:
        ReleaseError: the manifest is missing or malformed (a ValueError naming the field).
    """
    from engine.live.release import Release

    release = Release.load(Path(request.release_path))
    return blue_green_models.workflow_id(release.version, dry_run=request.dry_run)


RUNBOOKS: Final[Mapping[str, Runbook]] = {
    r.name: r
    for r in (
        Runbook(
            name="stack_check",
            workflow="stack_check",
            input_type=stack_check_models.StackCheckInput,
            run_role="operator",
            steps=stack_check.STEPS,
            guarded_steps=stack_check.GUARDED_STEPS,
            workflow_id=lambda _: f"stack-check-{uuid.uuid4().hex[:12]}",
        ),
        Runbook(
            name="emergency_stop",
            workflow="emergency_stop",
            input_type=emergency_stop_models.EmergencyStopInput,
            run_role="trader",  # anyone who may trade may stop the desk
            steps=emergency_stop.STEPS,
            guarded_steps=(),
            workflow_id=emergency_stop_models.workflow_id,
            id_reuse_policy=emergency_stop.ID_REUSE_POLICY,
            id_conflict_policy=emergency_stop.ID_CONFLICT_POLICY,
        ),
        Runbook(
            name="blue_green_deploy",
            workflow="blue_green_deploy",
            input_type=blue_green_models.RolloutInput,
            run_role="operator",
            steps=blue_green_models.STEPS,
            guarded_steps=("handoff",),
            workflow_id=_deploy_id,
            id_reuse_policy=blue_green.ID_REUSE_POLICY,  # a version deploys once
            id_conflict_policy=blue_green.ID_CONFLICT_POLICY,
        ),
        Runbook(
            name="model_rollout",
            workflow="model_rollout",
            input_type=model_rollout_models.ModelRolloutInput,
            run_role="operator",
            steps=model_rollout_models.STEPS,
            guarded_steps=(),
            workflow_id=lambda r: model_rollout_models.workflow_id(r.version, dry_run=r.dry_run),
            id_reuse_policy=model_rollout.ID_REUSE_POLICY,  # a version rolls out once
            id_conflict_policy=model_rollout.ID_CONFLICT_POLICY,
        ),
        Runbook(
            name="liquidation",
            workflow="liquidation",
            input_type=liquidation_models.LiquidationInput,
            run_role="trader",  # it only lowers risk; all symbols needs a second operator
            steps=liquidation_models.STEPS,
            guarded_steps=("approve",),  # only for all-symbols runs
            workflow_id=liquidation_models.workflow_id,
            id_reuse_policy=liquidation.ID_REUSE_POLICY,
            id_conflict_policy=liquidation.ID_CONFLICT_POLICY,
        ),
        Runbook(
            name="dr_failover",
            workflow="dr_failover",
            input_type=dr_failover_models.DrFailoverInput,
            run_role="operator",
            steps=dr_failover_models.STEPS,
            guarded_steps=(),
            workflow_id=dr_failover_models.workflow_id,
            id_reuse_policy=dr_failover.ID_REUSE_POLICY,
            id_conflict_policy=dr_failover.ID_CONFLICT_POLICY,
        ),
    )
}
