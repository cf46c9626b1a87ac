"""``GET /metrics`` of the control API: requests by route template, refusals by reason.

Counters of the package's shared API also move with other tests: every check compares
before and after.
"""

from __future__ import annotations

import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bot4.api.conftest import Keys
from tests.stubs.api import Recorder, RunningApi

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(recorder: Recorder, api: RunningApi) -> Samples:
    """Return every sample of ``/metrics`` (no key: Prometheus scrapes without one)."""
    async with recorder.client(api) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_refusals_are_counted_by_reason_and_requests_by_route_template(
    api: RunningApi, keys: Keys, recorder: Recorder
) -> None:
    viewer = await keys.create("viewer", name="metrics-viewer")
    unknown = f"b4_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    before = await scrape(recorder, api)

    async with recorder.client(api) as anonymous:
        assert (await anonymous.get("/v1/status")).status_code == 401
        bad = {"Authorization": "Bearer not-a-key"}
        assert (await anonymous.get("/v1/status", headers=bad)).status_code == 401
        guess = {"Authorization": f"Bearer {unknown}"}
        assert (await anonymous.get("/v1/status", headers=guess)).status_code == 401
    async with recorder.client(api, viewer["key"]) as http:
        assert (await http.get("/v1/audit")).status_code == 403  # operator's route
        assert (await http.get("/v1/engines/blue")).status_code in (200, 502, 503)
        statuses = [(await http.get("/v1/whoami")).status_code for _ in range(12)]
    after = await scrape(recorder, api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    failures = "bot4_api_auth_failures_total"
    assert moved(failures, reason="missing") == 1
    assert moved(failures, reason="malformed") == 1
    assert moved(failures, reason="unknown") == 1
    assert moved(failures, reason="forbidden") == 1
    assert 429 in statuses  # the viewer bucket of this package: 2/s, burst 5
    assert moved("bot4_api_rate_limit_refusals_total", bucket="viewer") == statuses.count(429)
    requests = "bot4_api_requests_total"
    assert moved(requests, method="GET", route="/v1/status", status="401") == 3
    assert moved(requests, method="GET", route="/v1/audit", status="403") == 1
    assert moved(requests, method="GET", route="/v1/whoami", status="200") == statuses.count(200)
    engine_route = {k: v for k, v in after.items() if k[0] == requests}
    assert any(("route", "/v1/engines/{color}") in labels for _, labels in engine_route)
    assert not any(unknown in str(labels) for _, labels in after)  # never the caller's text
    assert value(after, "bot4_api_request_duration_seconds_count", method="GET",
                 route="/v1/status") >= 3  # fmt: skip


async def test_an_unknown_path_is_counted_as_unmatched_not_by_its_text(
    api: RunningApi, recorder: Recorder
) -> None:
    path = f"/v1/no-such-{secrets.token_hex(6)}"
    async with recorder.client(api) as http:
        assert (await http.get(path)).status_code == 401

    after = await scrape(recorder, api)

    assert value(after, "bot4_api_requests_total", method="GET", route="unmatched",
                 status="401") >= 1  # fmt: skip
    assert not any(path in str(labels) for _, labels in after)


async def test_console_files_are_counted_under_one_route(
    api: RunningApi, recorder: Recorder
) -> None:
    async with recorder.client(api) as http:
        assert (await http.get("/")).status_code == 200
        await http.get(f"/console/no-such-{secrets.token_hex(4)}.js")

    after = await scrape(recorder, api)

    assert value(after, "bot4_api_requests_total", method="GET", route="/console",
                 status="200") >= 1  # fmt: skip
    assert not any("no-such-" in str(labels) for _, labels in after)
