"""Websocket streams of the simulator.

Market streams (``/ws``, ``/stream/ws/<n>``), user data by listenKey (``/ws/<listenKey>``)
and the websocket API's signed user data subscription (``/ws-api/v3``).

Each connection has a bounded queue drained by its own writer, so a slow client is dropped
instead of slowing the venue; aiohttp's heartbeat pings every client and drops dead ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import Callable
from typing import Any, Final

import structlog
from aiohttp import WSMsgType, web

from infra.exchange_sim.auth import Authenticator
from infra.exchange_sim.errors import VenueError

log = structlog.get_logger(__name__)

QUEUE_LIMIT: Final = 10_000
STREAM_NAME: Final = re.compile(r"^[a-z0-9]{2,20}@(trade|depth|depth@100ms)$")
MAX_FRAME: Final = 64 * 1024


class Connection:
    """One websocket client and what it listens to."""

    def __init__(self, ws: web.WebSocketResponse, *, account: str | None) -> None:
        self.ws = ws
        self.account = account  # user data of this account goes here
        self.subscription_id: int | None = None  # websocket API user data subscription
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.dead = False

    def close(self) -> None:
        """Mark the connection dead and wake its writer, which closes the socket."""
        self.dead = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait("")

    def send(self, payload: object) -> None:
        """Queue a message; a client too slow to keep up is dropped."""
        if self.dead:
            return
        try:
            self.queue.put_nowait(json.dumps(payload, separators=(",", ":")))
        except asyncio.QueueFull:
            self.close()
            log.warning("websocket_client_too_slow", streams=sorted(self.streams))

    async def write_loop(self) -> None:
        """Send queued messages in order until the connection dies."""
        while True:
            text = await self.queue.get()
            if self.dead:
                break
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.dead = True
        await self.ws.close()


class Hub:
    """Every live connection; the venue publishes through it."""

    def __init__(self, *, stalled: Callable[[], bool]) -> None:
        self.connections: set[Connection] = set()
        self.listen_keys: dict[str, str] = {}
        self._stalled = stalled
        self._next_subscription = 0

    def publish_market(self, stream: str, payload: object) -> None:
        """Send a market event to its subscribers (nothing while streams are stalled)."""
        if self._stalled():
            return
        for conn in self.connections:
            if stream in conn.streams:
                conn.send(payload)

    def subscribers(self, stream: str) -> bool:
        """Whether anyone listens to ``stream``."""
        return any(stream in conn.streams for conn in self.connections)

    def has_user(self, account: str) -> bool:
        """Whether any connection carries ``account``'s user data."""
        return any(conn.account == account for conn in self.connections)

    def publish_user(self, account: str, event: dict[str, Any]) -> None:
        """Send a user data event to every connection of ``account``."""
        for conn in self.connections:
            if conn.account != account:
                continue
            if conn.subscription_id is not None:
                conn.send({"subscriptionId": conn.subscription_id, "event": event})
            else:
                conn.send(event)

    def new_listen_key(self, account: str) -> str:
        """Return the account's listenKey (Binance keeps one per account)."""
        for key, owner in self.listen_keys.items():
            if owner == account:
                return key
        key = secrets.token_urlsafe(48)[:60]
        self.listen_keys[key] = account
        return key

    def close_listen_key(self, key: str) -> None:
        """Forget a listenKey and close its connections."""
        account = self.listen_keys.pop(key, None)
        for conn in self.connections:
            if account is not None and conn.account == account and conn.subscription_id is None:
                conn.close()

    def drop_all(self) -> int:
        """Close every connection (the ``drop_websockets`` fault); return how many."""
        count = len(self.connections)
        for conn in list(self.connections):
            conn.close()
        return count

    def next_subscription_id(self) -> int:
        """Return a fresh websocket API subscription id."""
        self._next_subscription += 1
        return self._next_subscription


def _error(code: int, msg: str, request_id: object) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def handle_market_frame(conn: Connection, text: str) -> dict[str, Any]:  # noqa: PLR0911 - one answer per bad frame
    """Answer one SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS frame; never raises."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return _error(3, "Invalid JSON: expected value at line 1 column 1", None)
    if not isinstance(message, dict):
        return _error(3, "Invalid JSON: expected an object", None)
    request_id = message.get("id")
    if request_id is not None and (
        isinstance(request_id, bool)
        or not isinstance(request_id, (int, str))
        or len(str(request_id)) > 64
    ):
        return _error(3, "Invalid request: 'id' must be an integer or a short string", None)
    method = message.get("method")
    params = message.get("params", [])
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(conn.streams), "id": request_id}
    if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return _error(1, f"Invalid request: unknown method {str(method)[:32]!r}", request_id)
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return _error(2, "Invalid request: 'params' must be a list of stream names", request_id)
    for name in params:
        if not STREAM_NAME.match(name):
            return _error(2, f"Invalid request: unknown stream {name[:64]!r}", request_id)
    if method == "SUBSCRIBE":
        conn.streams.update(params)
    else:
        conn.streams.difference_update(params)
    return {"result": None, "id": request_id}


def handle_ws_api_frame(
    conn: Connection, text: str, hub: Hub, auth: Authenticator, now_ms: int
) -> dict[str, Any]:
    """Answer one websocket API request (user data subscription, ping); never raises."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return {"id": None, "status": 400, "error": {"code": -1100, "msg": "Invalid JSON."}}
    if not isinstance(message, dict):
        return {"id": None, "status": 400, "error": {"code": -1100, "msg": "Invalid JSON."}}
    request_id = message.get("id")
    if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
        request_id = None
    method = message.get("method")
    if method == "ping":
        return {"id": request_id, "status": 200, "result": {}}
    if method != "userDataStream.subscribe.signature":
        error = {"code": -1100, "msg": f"Unknown method {str(method)[:32]!r}."}
        return {"id": request_id, "status": 400, "error": error}
    try:
        account = auth.verify_ws_params(message.get("params"), now_ms)
    except VenueError as e:
        return {"id": request_id, "status": e.status, "error": e.as_json()}
    conn.account = account.name
    conn.subscription_id = hub.next_subscription_id()
    return {"id": request_id, "status": 200, "result": {"subscriptionId": conn.subscription_id}}


def make_ws_handler(
    hub: Hub, auth: Authenticator, *, clock: Callable[[], int], heartbeat_s: float
) -> Callable[[web.Request], Any]:
    """Return the aiohttp handler of every websocket path."""

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        ws_api = path.startswith("/ws-api")
        account = None
        if path.startswith("/ws/"):
            key = path.removeprefix("/ws/")
            account = hub.listen_keys.get(key)
            if account is None:
                raise web.HTTPBadRequest(
                    text=json.dumps({"code": -1125, "msg": "This listenKey does not exist."}),
                    content_type="application/json",
                )
        ws = web.WebSocketResponse(heartbeat=heartbeat_s, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        conn = Connection(ws, account=account)
        hub.connections.add(conn)
        writer = asyncio.create_task(conn.write_loop())
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if ws_api:
                    conn.send(handle_ws_api_frame(conn, msg.data, hub, auth, clock()))
                else:
                    conn.send(handle_market_frame(conn, msg.data))
                if conn.dead:
                    break
        finally:
            hub.connections.discard(conn)
            conn.close()
            await writer
        return ws

    return handler
