"""schemathesis fuzzes every route of the OpenAPI document against the running API.

For every generated request (valid and invalid data): with a valid admin key the API never
answers 5xx; without a key, or with a well-formed but unknown key, the very same request is
refused with 401 — nothing gets past authorization without a valid key. Both engines run
(real control servers, stub engines) so that engine routes have something to reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode

from engine.dtypes import ACTIVE, HALTED
from engine.live.control import ControlConfig, ControlServer
from engine.live.gate import TradingGate
from tests.bot4.api.conftest import Keys
from tests.stubs.api import Recorder, RunningApi, ServerSecrets
from tests.stubs.engine_control import StubEngine

pytestmark = pytest.mark.timeout(300)
PUBLIC = {"/healthz", "/v1/openapi.json"}
EXAMPLES = 12


# schemathesis' pytest integration (schema.parametrize) needs pytest < 9.2 (it reads
# request.node._nodeid) and its requests transport fails with this urllib3; its case
# generation works: each operation gets a Hypothesis test of its own, sent with httpx.


class _Halt:
    verified = True

    def as_json(self) -> dict[str, object]:
        return {"verified": True}


@contextlib.contextmanager
def engines_on_a_thread(api: RunningApi, token: str) -> Iterator[None]:
    """Serve blue and green control endpoints from a thread (the test itself is sync)."""
    loop = asyncio.new_event_loop()
    servers: list[ControlServer] = []

    async def start() -> None:
        for port in (api.settings.engine.blue_control_port, api.settings.engine.green_control_port):
            gate = TradingGate(ACTIVE)

            async def halt(reason: str, by: str, gate: TradingGate = gate) -> _Halt:
                gate.lower(HALTED, reason=reason, by=by)
                return _Halt()

            server = ControlServer(ControlConfig(port=port, token=token), control=StubEngine(),
                                   engine_loop=loop, gate=gate, halt=halt)  # fmt: skip
            await server.start()
            servers.append(server)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def running_engines(api: RunningApi, server_secrets: ServerSecrets) -> Iterator[None]:
    with engines_on_a_thread(api, server_secrets.engine_token):
        yield


def _send(http: httpx.Client, case: Any, api: RunningApi, authorization: str | None) -> Any:
    """Send a case with httpx (schemathesis serializes it; its requests transport does not
    work with this environment's urllib3)."""
    kwargs = case.as_transport_kwargs(base_url=api.url)
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    # the API declares no cookies, so schemathesis generates none
    return http.request(
        kwargs["method"], kwargs["url"], headers=headers, params=kwargs.get("params"), **body
    )


def _check(
    case: Any, *, http: httpx.Client, api: RunningApi, keys: Keys, recorder: Recorder
) -> None:
    valid = _send(http, case, api, f"Bearer {keys.admin}")
    recorder.add(f"{case.method} {case.path} [admin]", valid.status_code, valid.headers, valid.text)
    assert valid.status_code < 500, f"{case.method} {case.path}: {valid.status_code} {valid.text}"
    if valid.status_code == 201 and "key" in valid.json():
        keys.issued.append(valid.json()["key"])  # a key the fuzzer made: shown once, tracked
    if case.path in PUBLIC:
        return
    unknown = f"b4_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    for label, authorization in (("no key", None), ("unknown key", f"Bearer {unknown}")):
        refused = _send(http, case, api, authorization)
        recorder.add(f"{case.method} {case.path} [{label}]", refused.status_code,
                     refused.headers, refused.text)  # fmt: skip
        assert refused.status_code == 401, (
            f"{case.method} {case.path} with {label}: {refused.status_code} {refused.text}"
        )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_survives_fuzzing_and_admits_no_one_without_a_valid_key(
    mode: GenerationMode, api: RunningApi, keys: Keys, recorder: Recorder, running_engines: None
):
    document = httpx.get(f"{api.url}/v1/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == len([m for path in document["paths"].values() for m in path])

    fuzzed = []
    with httpx.Client(timeout=30) as http:
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def fuzz(case: Any) -> None:
                _check(case, http=http, api=api, keys=keys, recorder=recorder)

            try:
                fuzz()
            except Unsatisfiable:  # no parameters, no body: nothing can be invalid
                assert mode is GenerationMode.NEGATIVE
                continue
            fuzzed.append(f"{operation.method.upper()} {operation.path}")
    # every operation with an input got invalid input too
    assert len(fuzzed) >= (len(operations) if mode is GenerationMode.POSITIVE else 15), fuzzed


HOSTILE = [
    b'{"reason": "\\ud800 lone surrogate"}',
    b'{"reason": "nul \\u0000 inside"}',
    b'{"\\ud800": 1, "reason": "field name"}',
    b'{"reason": "ok", "color": "blue\\u0000"}',
    b"\xff\xfe not utf-8",
    b'{"reason": ' + b"[" * 5000 + b"]" * 5000 + b"}",
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_never_breaks_the_api_or_the_audit_log(
    body: bytes, api: RunningApi, keys: Keys, recorder: Recorder
):
    headers = {"Authorization": f"Bearer {keys.admin}", "Content-Type": "application/json"}
    with httpx.Client(base_url=api.url, timeout=30) as http:
        for path in ("/v1/halt", "/v1/keys/0123456789abcdef/revoke", "/v1/nowhere\ud7ff"):
            answer = http.post(path, content=body, headers=headers)
            recorder.add(f"POST {path} [hostile]", answer.status_code, answer.headers, answer.text)
            assert answer.status_code < 500, (path, answer.status_code, answer.text)
        # the audit log kept every one of them and still verifies
        report = http.get("/v1/audit/verify", headers=headers).json()
    assert report["ok"] is True
