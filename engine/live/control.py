"""The engine's control HTTP server: health, status, metrics and admin actions.

It runs on the safety thread's event loop (:mod:`engine.live.safety`), not the strategy
loop, so it answers — and halts — while the strategy loop is stuck. Routes:

=====================  ==========================================================
``GET /healthz``       200 while the process (and this thread) is alive
``GET /readyz``        200 once :meth:`EngineControl.ready`, else 503
``GET /status``        JSON status of the engine, the gate and the kill switch
``GET /metrics``       Prometheus text of the registry
``POST /admin/<a>``    admin action ``a``; ``Authorization: Bearer <token>``
=====================  ==========================================================

``halt`` runs here, on the safety loop, without the engine (gate to HALTED, cancel all
with the safety thread's own venue client, verify). Every other action is a coroutine of
the engine, run on its loop with ``run_coroutine_threadsafe`` and bounded by
``engine_call_timeout_s``: a stuck loop answers 503, and the halt still works. A body is
checked against the action's fields first (:mod:`engine.live.admin_fields`): a wrong
one is a 400 naming the field, and nothing runs.

Engine actions (:data:`ENGINE_ACTIONS`): pause, resume, drain, release/acquire
leadership, flatten; the model rollout's load_model and model_shadow / canary / promote
/ abort; the liquidation's reduce, restore, child_order, liquidation_check; and for a
database failover ``hold`` / ``unhold`` (an operator condition keeping the engine at
REDUCING) and ``journal_acks`` (what the journal acknowledged since a time).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from engine.dtypes import TRADING_STATE_NAMES
from engine.journal.models import CORRELATION_ID, VALID_CORRELATION_ID
from engine.live.admin_fields import ACTION_FIELDS, COMMON_FIELDS, Field, FieldError, check_fields
from engine.live.gate import TradingGate

log = structlog.get_logger(__name__)

__all__ = [  # the field table lives in engine.live.admin_fields; named here too
    "ACTIONS",
    "ACTION_FIELDS",
    "COMMON_FIELDS",
    "ENGINE_ACTIONS",
    "AdminAnswer",
    "ControlConfig",
    "ControlServer",
    "ControlUnreachableError",
    "EngineControl",
    "Field",
    "HaltAction",
    "HaltResult",
    "post_admin",
]

ENGINE_ACTIONS: Final = (
    "pause",
    "resume",
    "drain",
    "release_leadership",
    "acquire_leadership",
    "load_model",
    "flatten",
    "model_shadow",
    "model_canary",
    "model_promote",
    "model_abort",
    "reduce",
    "restore",
    "child_order",
    "liquidation_check",
    "hold",
    "unhold",
    "journal_acks",
)
ACTIONS: Final = ("halt", *ENGINE_ACTIONS)
_json_response = partial(web.json_response, dumps=partial(json.dumps, default=str))


class EngineControl(Protocol):
    """What the engine process offers its control server.

    ``status`` and ``ready`` are called on the safety thread: they must be thread-safe
    and must not block (return a snapshot the engine keeps up to date). The admin
    coroutines run on the engine's own loop; each returns a JSON-ready result.
    """

    def status(self) -> dict[str, object]:
        """Return the engine's status snapshot.

        Keys: instance, color, release, role, epoch, trading_state, model_version,
        positions, pnl, market_data_lag_s, journal_lag_s, and ``journal``: healthy,
        backlog, failing_since (epoch seconds or None), outages (the latest: started_at,
        ended_at, seconds, failed_attempts, last_error) and acked_total.
        """
        ...

    def ready(self) -> bool:
        """Return whether the engine is warm and may be sent traffic."""
        ...

    async def pause(self, *, by: str, reason: str) -> dict[str, object]:
        """Stop taking new decisions; keep orders and positions."""
        ...

    async def resume(self, *, by: str, reason: str) -> dict[str, object]:
        """Raise the trading state back to ACTIVE and take decisions again."""
        ...

    async def drain(self, *, by: str, reason: str) -> dict[str, object]:
        """Stop opening risk, cancel resting orders, let in-flight ones resolve."""
        ...

    async def release_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        """Stop sending, cancel, and give up the trading lease (a fenced handoff)."""
        ...

    async def acquire_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        """Take the trading lease (a new epoch) if it is free."""
        ...

    async def load_model(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Load and activate model ``version``."""
        ...

    async def flatten(self, *, by: str, reason: str) -> dict[str, object]:
        """Close every position with risk-reducing orders."""
        ...

    async def reduce(
        self, symbols: str, *, lift_halt: int = 0, by: str, reason: str
    ) -> dict[str, object]:
        """Take symbols out of the strategy (no quotes, no takers); report their positions."""
        ...

    async def restore(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        """Give symbols back to the strategy."""
        ...

    async def child_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: str,
        limit_price: str,
        *,
        by: str,
        reason: str,
    ) -> dict[str, object]:
        """Send one reduce-only IOC liquidation child, idempotent by its client id."""
        ...

    async def liquidation_check(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        """Report whether symbols are flat in the journal and at the venue."""
        ...

    async def model_shadow(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Fetch ``version`` (checksum verified) and score it beside the active model."""
        ...

    async def model_canary(
        self, version: str, fraction: float, *, by: str, reason: str
    ) -> dict[str, object]:
        """Let the shadowed candidate carry ``fraction`` of the live prediction."""
        ...

    async def model_promote(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Hot-swap the candidate in as the active model (journaled at an exact event)."""
        ...

    async def model_abort(self, version: str = "", *, by: str, reason: str) -> dict[str, object]:
        """Undo ``version``'s rollout: drop the candidate, or swap the previous model back."""
        ...

    async def hold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        """Hold the engine at REDUCING under operator ``condition`` (idempotent)."""
        ...

    async def unhold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        """End the operator hold ``condition`` (idempotent)."""
        ...

    async def journal_acks(self, since: float, *, by: str, reason: str) -> dict[str, object]:
        """Return the event ids and fill keys the journal acknowledged since ``since``.

        Keys: event_ids, fills (``[venue, symbol, trade_id, side]``), truncated, leader.
        """
        ...


class HaltResult(Protocol):
    """What a halt reports: whether the venue confirmed no open orders, and details."""

    @property
    def verified(self) -> bool:
        """Return whether no open order remained at the venue after the cancel."""
        ...

    def as_json(self) -> dict[str, object]:
        """Return the report as a JSON-ready dict."""
        ...


HaltAction = Callable[[str, str], Awaitable[HaltResult]]
"""``halt(reason, by)`` on the safety loop."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ControlConfig:
    """Where the control server listens and how it guards admin actions.

    Attributes:
        host: bind address (loopback: the control API is the door for people).
        port: bind port; 0 picks a free one (see :attr:`ControlServer.port`).
        token: bearer token of the admin routes.
        engine_call_timeout_s: bound of an admin action on the engine loop.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str
    engine_call_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("token must have at least 16 characters")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535 (got {self.port})")
        if self.engine_call_timeout_s <= 0:
            raise ValueError(
                f"engine_call_timeout_s must be > 0 (got {self.engine_call_timeout_s})"
            )


class ControlServer:
    """The aiohttp server; start and stop it on the safety loop.

    Args:
        config: bind address and token.
        control: the engine.
        engine_loop: the loop admin coroutines run on.
        gate: the trading gate (its state is reported as seen from this thread).
        halt: runs a halt on this loop.
        kill_switch_engaged: tells whether the PostgreSQL flag is engaged (``resume`` is
            refused while it is: the poller would halt the engine again at once).
        extra_status: more fields for ``/status`` (kill switch, last halt).
        registry: what ``/metrics`` exposes.
    """

    def __init__(
        self,
        config: ControlConfig,
        *,
        control: EngineControl,
        engine_loop: asyncio.AbstractEventLoop,
        gate: TradingGate,
        halt: HaltAction,
        kill_switch_engaged: Callable[[], bool] = lambda: False,
        extra_status: Callable[[], dict[str, object]] = dict,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.config = config
        self._control = control
        self._engine_loop = engine_loop
        self._gate = gate
        self._halt = halt
        self._kill_switch_engaged = kill_switch_engaged
        self._extra_status = extra_status
        self._registry = registry
        self._token = config.token.encode()
        self._runner: web.AppRunner | None = None
        self.port = config.port

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            OSError: the address is in use or cannot be bound.
        """
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/admin/{action}", self._admin)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.config.host, self.config.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("control_server_started", url=self.url)

    async def stop(self) -> None:
        """Stop serving."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _json_response({"alive": True})

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready = bool(self._control.ready())
        return _json_response({"ready": ready}, status=200 if ready else 503)

    async def _status(self, _request: web.Request) -> web.Response:
        document = {**self._control.status(), **self._extra_status()}
        # the gate is the authority on lowerings (a halt shows even when the engine's
        # view is stale); the engine's own conditions (venue, journal) may lower it further
        reported = document.get("trading_state")
        state = self._gate.effective
        if reported in TRADING_STATE_NAMES:
            state = max(state, TRADING_STATE_NAMES.index(str(reported)))
        document["trading_state"] = TRADING_STATE_NAMES[state]
        return _json_response(document)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _admin(self, request: web.Request) -> web.Response:
        """Run an admin action under the caller's correlation id (a new one if none).

        The id is bound to every log line of the call and to every journal row it causes
        (the context is copied into the engine loop with the call), and sent back.
        """
        given = request.headers.get("X-Correlation-ID", "")
        correlation_id = given if VALID_CORRELATION_ID.match(given) else uuid.uuid4().hex
        token = CORRELATION_ID.set(correlation_id)
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
                response = await self._admin_action(request)
        finally:
            CORRELATION_ID.reset(token)
        response.headers["X-Correlation-ID"] = correlation_id
        return response

    async def _admin_action(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json_response(
                {"error": "missing or wrong bearer token (header Authorization: Bearer <token>)"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        action = request.match_info["action"]
        if action not in ACTIONS:
            return _json_response(
                {"error": f"unknown action {action!r}", "actions": list(ACTIONS)}, status=404
            )
        try:
            fields = await _payload(request, action)
        except FieldError as e:
            return _json_response({"error": str(e), "action": action}, status=400)
        by = str(fields.get("by", "control_endpoint"))
        reason = str(fields.get("reason", f"{action} requested through the control endpoint"))
        log.warning("admin_action", action=action, by=by, reason=reason)
        if action == "halt":
            result = await self._halt(reason, by)
            return _json_response(result.as_json(), status=200 if result.verified else 502)
        if action == "resume" and self._kill_switch_engaged():
            return _json_response(
                {
                    "error": "the desk kill switch is engaged; disengage it first"
                    " (bot4 engine resume), then resume the engine",
                    "action": action,
                },
                status=409,
            )
        return await self._on_engine_loop(action, self._engine_call(action, fields, by, reason))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not tell how much of a guess was right
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )

    def _engine_call(
        self, action: str, fields: dict[str, object], by: str, reason: str
    ) -> Coroutine[Any, Any, dict[str, object]]:
        method: Callable[..., Coroutine[Any, Any, dict[str, object]]] = getattr(
            self._control, action
        )
        own = {k: v for k, v in fields.items() if k not in COMMON_FIELDS}
        return method(**own, by=by, reason=reason)

    async def _on_engine_loop(
        self, action: str, call: Coroutine[Any, Any, dict[str, object]]
    ) -> web.Response:
        if self._engine_loop.is_closed() or not self._engine_loop.is_running():
            call.close()
            return _json_response(
                {"error": "the engine loop is not running", "action": action}, status=503
            )
        future = asyncio.run_coroutine_threadsafe(call, self._engine_loop)
        timeout_s = self.config.engine_call_timeout_s
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            future.cancel()  # runs as a cancellation once the loop gets to it
            log.error("admin_action_timed_out", action=action, timeout_s=timeout_s)
            return _json_response(
                {
                    "error": f"the engine loop did not complete {action} within {timeout_s} s"
                    " (stuck or busy); the action was cancelled. POST /admin/halt still works.",
                    "action": action,
                },
                status=503,
            )
        except Exception as e:
            log.exception("admin_action_failed", action=action)
            return _json_response(
                {"error": f"{action} failed: {type(e).__name__}: {e}", "action": action},
                status=500,
            )
        return _json_response({"action": action, "result": result})


async def _payload(request: web.Request, action: str) -> dict[str, object]:
    """Return the action's fields (:data:`ACTION_FIELDS`), checked; empty body means none.

    Raises:
        FieldError: not a JSON object, unknown, ill-typed or missing fields.
    """
    raw = await request.read()
    document: object = {}
    if raw.strip():
        try:
            document = json.loads(raw)
        except ValueError as e:
            raise FieldError(f"body is not valid JSON: {e}") from None
    return check_fields(action, document)


class ControlUnreachableError(Exception):
    """Nothing answered at the control URL (not running, wrong port, timed out)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminAnswer:
    """An answer of ``POST /admin/<action>``."""

    status: int
    body: dict[str, object]


async def post_admin(
    base_url: str,
    action: str,
    *,
    token: str,
    payload: Mapping[str, object] | None = None,
    timeout_s: float = 10.0,
) -> AdminAnswer:
    """Call an admin action of an engine's control server (the CLI's client).

    Raises:
        ControlUnreachableError: no connection, or no answer within ``timeout_s``.
    """
    headers = {"Authorization": f"Bearer {token}"}
    # the operation this call belongs to (an API request, a workflow's activity): the
    # engine journals it with the rows the call causes
    correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    if isinstance(correlation_id, str) and VALID_CORRELATION_ID.match(correlation_id):
        headers["X-Correlation-ID"] = correlation_id
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(f"{base_url}/admin/{action}", json=dict(payload or {}), headers=headers) as r,
        ):
            try:
                body = await r.json(content_type=None)
            except ValueError:
                body = {"error": (await r.text())[:500]}
            return AdminAnswer(status=r.status, body=body if isinstance(body, dict) else {})
    except (aiohttp.ClientConnectionError, TimeoutError) as e:
        raise ControlUnreachableError(f"{base_url}: {type(e).__name__}: {e}") from e
