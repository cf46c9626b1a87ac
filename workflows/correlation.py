"""Correlation ids through Temporal: API request → workflow → activities → engine calls.

The control API binds a correlation id to each request (structlog contextvars). This
interceptor carries it on:

- **client** (the API, the CLI, demos): ``start_workflow`` and signals (approve, abort)
  get a ``bot4-correlation-id`` header with the id bound where the call is made;
- **workflow**: the header of its start (or of the signal being handled) becomes the id
  of everything the workflow does; a run started without one (a schedule's) takes its
  workflow id, so its activities still share one id;
- **activity**: the header of its scheduling is bound to every log line the activity
  writes (with the workflow id and the activity's name), and to every engine control
  call it makes (``post_admin`` sends it as ``X-Correlation-ID``, and the engine journals
  it with the rows the call causes).

Headers are part of the workflow history, so replays see the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, Protocol

import structlog
import temporalio.activity
import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.worker
import temporalio.workflow

HEADER: Final = "bot4-correlation-id"
#: what an id may look like when it comes from outside (the API's and the engine's rule)
VALID_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

#: the id inside a workflow (structlog's contextvars are not for workflow code)
_WORKFLOW_ID: ContextVar[str | None] = ContextVar("bot4_workflow_correlation_id", default=None)


def current_correlation_id() -> str | None:
    """Return the correlation id bound to this context (log context or workflow)."""
    bound = structlog.contextvars.get_contextvars().get("correlation_id")
    if isinstance(bound, str) and bound:
        return bound
    return _WORKFLOW_ID.get()


class _WithHeaders(Protocol):
    headers: Mapping[str, temporalio.api.common.v1.Payload]


def _put(
    target: _WithHeaders, value: str | None, converter: temporalio.converter.PayloadConverter
) -> None:
    if value:
        target.headers = {**target.headers, HEADER: converter.to_payload(value)}


def _read(source: _WithHeaders, converter: temporalio.converter.PayloadConverter) -> str | None:
    payload = source.headers.get(HEADER)
    if payload is None:
        return None
    value = converter.from_payload(payload, str)
    return value if isinstance(value, str) and VALID_ID.match(value) else None


@contextmanager
def _in_workflow(value: str | None) -> Iterator[None]:
    token = _WORKFLOW_ID.set(value or temporalio.workflow.info().workflow_id)
    try:
        yield
    finally:
        _WORKFLOW_ID.reset(token)


class CorrelationInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Carries the correlation id; give it to ``Client.connect(interceptors=...)``.

    The client's starts and signals then carry the id, and so do the workflows and
    activities of a worker built on that client.
    """

    def __init__(self) -> None:
        self._converter = temporalio.converter.default().payload_converter

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        """Header the client's starts and signals."""
        return _ClientOutbound(next, self._converter)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        """Bind the id of each activity's header to its logs and engine calls."""
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        """Read the id of a workflow's start and signals; header its activities."""
        return _WorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    def __init__(
        self,
        next: temporalio.client.OutboundInterceptor,
        converter: temporalio.converter.PayloadConverter,
    ) -> None:
        super().__init__(next)
        self._converter = converter

    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        _put(input, current_correlation_id(), self._converter)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        _put(input, current_correlation_id(), self._converter)
        await super().signal_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        info = temporalio.activity.info()
        value = _read(input, temporalio.activity.payload_converter()) or info.workflow_id
        with structlog.contextvars.bound_contextvars(
            correlation_id=value, workflow_id=info.workflow_id, activity=info.activity_type
        ):
            return await self.next.execute_activity(input)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        self.next.init(_WorkflowOutbound(outbound))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        with _in_workflow(_read(input, temporalio.workflow.payload_converter())):
            return await self.next.execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        with _in_workflow(_read(input, temporalio.workflow.payload_converter())):
            await self.next.handle_signal(input)


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        _put(input, _WORKFLOW_ID.get(), temporalio.workflow.payload_converter())
        return self.next.start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        _put(input, _WORKFLOW_ID.get(), temporalio.workflow.payload_converter())
        return self.next.start_local_activity(input)
