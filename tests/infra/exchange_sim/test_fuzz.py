"""Hypothesis fuzz of REST parameters and websocket frames: clear errors, never a crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.exchange_sim.auth import Authenticator, hmac_hex
from infra.exchange_sim.config import AccountSpec
from infra.exchange_sim.streams import Connection, Hub, handle_market_frame, handle_ws_api_frame
from tests.stubs.exchange_sim import DEMO_KEY, DEMO_SECRET, ThreadedSim, sim_config

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
values = st.one_of(text, st.integers().map(str), st.decimals(allow_nan=True).map(str), st.just(""))
keys = st.sampled_from(
    ["symbol", "side", "type", "timeInForce", "quantity", "price", "newClientOrderId",
     "orderId", "origClientOrderId", "limit", "fromId", "countdownTime", "recvWindow", "x"]
)  # fmt: skip
params = st.dictionaries(keys, values, max_size=8)
routes = st.sampled_from(
    [("POST", "/api/v3/order"), ("GET", "/api/v3/order"), ("DELETE", "/api/v3/order"),
     ("GET", "/api/v3/openOrders"), ("DELETE", "/api/v3/openOrders"), ("GET", "/api/v3/myTrades"),
     ("GET", "/api/v3/allOrders"), ("POST", "/api/v3/countdownCancelAll"),
     ("GET", "/api/v3/depth"), ("GET", "/api/v3/trades"), ("GET", "/api/v3/ticker/24hr")]
)  # fmt: skip


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with (
        ThreadedSim(sim_config(weight_limit_per_minute=10**9)) as sim,
        httpx.Client(base_url=sim.base_url, timeout=10) as client,
    ):
        yield client


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=routes, fields=params, sign=st.booleans())
def test_malformed_rest_params_get_a_clear_error_and_never_crash(
    http: httpx.Client, route: tuple[str, str], fields: dict[str, str], sign: bool
) -> None:
    method, path = route
    fields = dict(fields)
    if sign:
        fields["timestamp"] = str(int(time.time() * 1000))
    query = urlencode(fields)
    if sign:
        query += "&signature=" + hmac_hex(DEMO_SECRET, query)
    response = http.request(method, f"{path}?{query}", headers={"X-MBX-APIKEY": DEMO_KEY})
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["code"], int)
        assert body["msg"]
    assert http.get("/api/v3/ping").json() == {}


frames = st.one_of(
    text,
    st.recursive(
        st.none() | st.booleans() | st.integers() | text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    ).map(json.dumps),
    st.fixed_dictionaries(
        {"method": st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "x"]),
         "params": st.one_of(st.lists(text, max_size=3), text, st.integers()),
         "id": st.one_of(st.integers(), text, st.none(), st.booleans())}
    ).map(json.dumps),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(frame=frames)
def test_malformed_websocket_frames_get_an_answer_and_never_raise(frame: str) -> None:
    conn = Connection(None, account=None)  # type: ignore[arg-type]
    answer = handle_market_frame(conn, frame)
    assert "result" in answer or answer["error"]["msg"]
    hub = Hub(stalled=lambda: False)
    auth = Authenticator(
        [AccountSpec(name="demo", api_key=DEMO_KEY, api_secret=DEMO_SECRET)],
        max_recv_window_ms=60_000,
    )
    api_answer = handle_ws_api_frame(conn, frame, hub, auth, now_ms=int(time.time() * 1000))
    assert api_answer["status"] in (200, 400, 401)
