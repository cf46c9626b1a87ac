"""The scheduled disaster-recovery drill: a Temporal schedule the worker keeps in step.

``BOT4_WORKER__DRILL_CRON`` (UTC, empty by default) decides: at start the worker creates
the schedule ``dr-drill`` (or updates it to the current cron, mode and RTO target), or
deletes it when the setting is empty. The schedule starts ``dr_failover`` with
``drill=true`` on the ``bot4`` queue; a drill still running when the next is due is
skipped, never run twice at once. ``temporal schedule list`` and the Temporal UI show it.

What the drills measured is exported by the worker: see
:mod:`workflows.dr_failover.gauges`.
"""

from __future__ import annotations

from typing import Final, Literal

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from bot4.settings import Settings
from workflows.dr_failover.models import WORKFLOW_ID, DrFailoverInput
from workflows.dr_failover.workflow import DrFailoverWorkflow

SCHEDULE_ID: Final = "dr-drill"
Outcome = Literal["created", "updated", "deleted", "absent"]
log = structlog.get_logger(__name__)


def drill_schedule(settings: Settings, task_queue: str) -> Schedule:
    """Return the schedule of ``settings.worker.drill_cron``."""
    worker = settings.worker
    request = DrFailoverInput(mode=worker.drill_mode, drill=True,
                              max_rto_s=worker.drill_max_rto_s, requested_by="schedule",
                              reason=f"scheduled drill ({worker.drill_cron} UTC)")  # fmt: skip
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DrFailoverWorkflow.run, request, id=WORKFLOW_ID, task_queue=task_queue
        ),
        spec=ScheduleSpec(cron_expressions=[worker.drill_cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def sync_drill_schedule(client: Client, settings: Settings, task_queue: str) -> Outcome:
    """Create, update or delete the drill schedule to match the settings."""
    handle = client.get_schedule_handle(SCHEDULE_ID)
    if not settings.worker.drill_cron:
        try:
            await handle.delete()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            return "absent"
        return "deleted"
    schedule = drill_schedule(settings, task_queue)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        return "updated"
    return "created"
