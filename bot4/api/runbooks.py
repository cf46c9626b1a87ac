"""Runbooks through the control plane: start, follow, approve and abort their workflows.

The API holds one Temporal client (connected on first use, so the API starts and serves
everything else while Temporal is down). Inputs are validated against the runbook's input
model before anything starts; ``requested_by`` is always the caller's key, so the
workflow's four-eyes check (:mod:`workflows.approvals`) compares real identities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

import structlog
from pydantic import TypeAdapter, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bot4.api.errors import ApiError, ConflictError, NotFoundError, UnavailableError
from workflows.approvals import Decision
from workflows.correlation import CorrelationInterceptor
from workflows.runbooks import RUNBOOKS, SERVER_FIELDS, Runbook

log = structlog.get_logger(__name__)

WORKFLOW_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
CONNECT_TIMEOUT_S: Final = 5.0


class InvalidParametersError(ApiError):
    """The runbook's parameters do not fit its input model (named in the message)."""

    status = 422


RESULT_FETCHES: Final = 8
"""Runs whose result or progress the list reads at once."""
RESULT_TIMEOUT_S: Final = 5.0
_STATE_FILTERS: Final = {
    "running": "ExecutionStatus = 'Running'",
    "closed": "ExecutionStatus != 'Running'",
}


def runbook(name: str) -> Runbook:
    """Return the runbook called ``name``.

    Raises:
        NotFoundError: no such runbook.
    """
    found = RUNBOOKS.get(name)
    if found is None:
        raise NotFoundError(f"no runbook {name!r}; `bot4 runbook list` shows them")
    return found


def build_input(
    book: Runbook, params: Mapping[str, Any], *, requested_by: str, dry_run: bool
) -> Any:
    """Validate ``params`` against the runbook's input model; add the server's fields.

    Raises:
        InvalidParametersError: an unknown, missing or ill-typed parameter (named).
    """
    names = {f.name for f in dataclasses.fields(book.input_type)}
    for key in params:
        if key in SERVER_FIELDS:
            raise InvalidParametersError(
                f"parameter {key!r} is set by the server (the caller's key, the dry-run flag)"
            )
        if key not in names:
            allowed = ", ".join(sorted(names - set(SERVER_FIELDS))) or "none"
            raise InvalidParametersError(
                f"runbook {book.name} has no parameter {key!r} (it takes: {allowed})"
            )
    values = {**params, "requested_by": requested_by, "dry_run": dry_run}
    try:
        return TypeAdapter(book.input_type).validate_python(values)
    except ValidationError as e:
        problems = [
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in e.errors()
        ]
        raise InvalidParametersError(
            f"invalid parameters for runbook {book.name}: " + "; ".join(problems[:5])
        ) from None


class Runbooks:
    """Starts and follows runbook workflows on Temporal.

    Args:
        address: Temporal frontend ``host:port``.
        namespace: Temporal namespace.
        task_queue: the worker's task queue.
    """

    def __init__(self, *, address: str, namespace: str, task_queue: str) -> None:
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        """Return the Temporal client, connecting on first use.

        Raises:
            UnavailableError: Temporal cannot be reached.
        """
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        # the interceptor carries each request's correlation id into the
                        # workflow, its activities and the engine calls they make
                        Client.connect(
                            self.address,
                            namespace=self.namespace,
                            interceptors=[CorrelationInterceptor()],
                        ),
                        timeout=CONNECT_TIMEOUT_S,
                    )
                except (RuntimeError, TimeoutError, OSError) as e:
                    raise UnavailableError(
                        f"Temporal at {self.address} does not answer ({type(e).__name__});"
                        " check `bot4 stack status` or BOT4_TEMPORAL__ADDRESS"
                    ) from None
            return self._client

    async def start(self, book: Runbook, request: Any) -> dict[str, object]:
        """Start a run of ``book``; return its workflow id and run id.

        Raises:
            ConflictError: a run with the same business key is running (or, per the
                runbook's policy, has run).
        """
        try:  # before Temporal: a bad input is the caller's to fix, whatever Temporal's state
            workflow_id = book.workflow_id(request)
        except (ValueError, OSError) as e:  # e.g. a release manifest that does not load
            raise InvalidParametersError(f"runbook {book.name}: {e}") from None
        client = await self.client()
        try:
            handle = await client.start_workflow(
                book.workflow,
                request,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=book.id_reuse_policy,
                id_conflict_policy=book.id_conflict_policy,
            )
        except WorkflowAlreadyStartedError:
            raise ConflictError(
                f"runbook {book.name} run {workflow_id} is already running (or may not run"
                f" again); follow it with `bot4 runbook status {workflow_id}`"
            ) from None
        log.info("runbook_started", runbook=book.name, workflow_id=workflow_id)
        return {"runbook": book.name, "workflow_id": workflow_id, "run_id": handle.result_run_id}

    async def status(self, workflow_id: str) -> dict[str, object]:
        """Return a run's status, its progress while it runs, its result once it ended.

        Raises:
            NotFoundError: no such run, or not a runbook's.
        """
        handle = (await self.client()).get_workflow_handle(workflow_id)
        description = await self._describe(workflow_id)
        status = description.status
        document: dict[str, object] = {
            "workflow_id": workflow_id,
            "runbook": description.workflow_type,
            "status": status.name if status is not None else "UNKNOWN",
            "started_at": description.start_time.isoformat(),
            "closed_at": description.close_time.isoformat() if description.close_time else None,
        }
        return document | await _outcome(handle, status)

    async def recent(
        self, *, runbook: str | None = None, state: str = "all", limit: int = 50
    ) -> list[dict[str, object]]:
        """Return the latest runs of the runbooks on this desk's task queue, newest first.

        Each run as :meth:`status` tells it: progress while it runs, result or failure once
        it ended. Only this desk's queue: several desks may share one Temporal.

        Raises:
            UnavailableError: Temporal cannot list the runs.
        """
        types = [runbook] if runbook else sorted({b.workflow for b in RUNBOOKS.values()})
        query = f"TaskQueue = '{self.task_queue}' AND WorkflowType IN ({_quoted(types)})"
        if state in _STATE_FILTERS:
            query += f" AND {_STATE_FILTERS[state]}"
        client = await self.client()
        try:
            executions = [e async for e in client.list_workflows(query, limit=limit)]
        except RPCError as e:
            raise UnavailableError(f"Temporal could not list the runs: {e.message}") from None
        # the dev server's SQL visibility cannot ORDER BY: sort here
        executions.sort(key=lambda e: e.start_time, reverse=True)
        gate = asyncio.Semaphore(RESULT_FETCHES)

        async def described(execution: WorkflowExecution) -> dict[str, object]:
            status = execution.status
            document: dict[str, object] = {
                "workflow_id": execution.id,
                "run_id": execution.run_id,
                "runbook": execution.workflow_type,
                "status": status.name if status is not None else "UNKNOWN",
                "started_at": execution.start_time.isoformat(),
                "closed_at": execution.close_time.isoformat() if execution.close_time else None,
            }
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            async with gate:
                try:
                    return document | await asyncio.wait_for(
                        _outcome(handle, status), RESULT_TIMEOUT_S
                    )
                except (TimeoutError, RPCError) as e:  # one slow run must not fail the list
                    return document | {"detail": f"result not read ({type(e).__name__})"}

        return list(await asyncio.gather(*(described(e) for e in executions)))

    async def decide(self, workflow_id: str, update: str, decision: Decision) -> dict[str, object]:
        """Send ``approve`` or ``abort`` to a running run.

        Raises:
            NotFoundError: no such run.
            ConflictError: the workflow refused the decision (the reason is its words), or
                the run has ended.
        """
        await self._describe(workflow_id)
        handle = (await self.client()).get_workflow_handle(workflow_id)
        try:
            outcome = await handle.execute_update(update, decision)
        except WorkflowUpdateFailedError as e:
            cause = e.cause
            raise ConflictError(f"{update} refused: {getattr(cause, 'message', cause)}") from None
        except RPCError as e:
            if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise ConflictError(f"{update} refused: {e.message}") from None
            raise UnavailableError(f"Temporal refused the {update}: {e.message}") from None
        log.warning("runbook_decision", workflow_id=workflow_id, update=update, by=decision.by)
        return {"workflow_id": workflow_id, update: outcome, "by": decision.by}

    async def _describe(self, workflow_id: str) -> Any:
        if not re.fullmatch(WORKFLOW_ID_PATTERN, workflow_id):
            raise NotFoundError(f"no runbook run {workflow_id!r}")
        handle = (await self.client()).get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise NotFoundError(f"no runbook run {workflow_id!r}") from None
            raise UnavailableError(f"Temporal could not describe the run: {e.message}") from None
        if description.workflow_type not in {b.workflow for b in RUNBOOKS.values()}:
            raise NotFoundError(f"no runbook run {workflow_id!r}")  # not ours to show
        return description


async def _outcome(
    handle: WorkflowHandle[Any, Any], status: WorkflowExecutionStatus | None
) -> dict[str, object]:
    """Return a run's progress (running), result (completed) or failure (otherwise)."""
    if status == WorkflowExecutionStatus.RUNNING:
        try:
            return {"progress": await handle.query("progress")}
        except WorkflowQueryFailedError:  # a runbook without a progress query
            return {"progress": {"detail": "this runbook reports no progress"}}
        except RPCError as e:
            return {"progress": {"detail": e.message}}
    if status == WorkflowExecutionStatus.COMPLETED:
        return {"result": await handle.result()}
    try:
        await handle.result()
    except WorkflowFailureError as e:
        cause = e.cause
        # an activity's own refusal says what to do; the SDK's wrapper does not
        while isinstance(cause, ActivityError) and cause.cause is not None:
            cause = cause.cause
        return {"failure": str(getattr(cause, "message", cause) or e)}
    return {}


def _quoted(names: list[str]) -> str:
    # names come from the registry (or a checked path parameter): no quote inside them
    return ", ".join(f"'{name}'" for name in names)
