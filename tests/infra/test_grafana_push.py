"""Pushing dashboards with grafana-client, against a stand-in for Grafana's HTTP API.

No Grafana server is installable here (no registry this machine reaches ships one), so
these tests run grafana-client over real HTTP against ``tests/stubs/grafana.py``, which
implements the part of Grafana's API contract a push uses: health, folders, dashboards by
uid, save with overwrite and version-mismatch (412), search, and 401 on bad credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from grafana_client.client import GrafanaClientError

from infra.grafana.dashboards import render
from infra.grafana.push import (
    GrafanaAuthError,
    GrafanaProvisioner,
    GrafanaTarget,
    GrafanaUnreachableError,
    push_dashboards,
)
from tests.stubs.grafana import GrafanaStub
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(60)
TOKEN = "glsa_stub_token_0123456789"


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    with GrafanaStub(token=TOKEN) as stub:
        yield stub


def dashboards(datasource_uid: str = "prom-main") -> list[dict[str, Any]]:
    return list(render(datasource_uid=datasource_uid).values())


def test_push_creates_the_folder_and_every_dashboard_pinned_to_the_datasource(
    grafana: GrafanaStub,
) -> None:
    target = GrafanaTarget(url=grafana.url, token=TOKEN, folder_uid="desk", folder_title="Desk")

    report = push_dashboards(target, dashboards(), overwrite=False)

    assert report.ok
    assert report.folder_created
    assert report.grafana_version == grafana.version
    assert [(o.uid, o.action, o.version) for o in report.outcomes] == [
        ("bot4-overview", "created", 1),
        ("bot4-engine", "created", 1),
        ("bot4-operations", "created", 1),
    ]
    assert grafana.folders["desk"]["title"] == "Desk"
    for uid, stored in grafana.dashboards.items():
        assert stored["folderUid"] == "desk", uid
        text = json.dumps(stored["dashboard"])
        assert "${datasource}" not in text
        for panel in stored["dashboard"]["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prom-main"}
    assert report.outcomes[0].url == f"{grafana.url}/d/bot4-overview/bot4-desk-overview"


def test_pushing_the_same_dashboards_again_changes_nothing(grafana: GrafanaStub) -> None:
    target = GrafanaTarget(url=grafana.url, token=TOKEN)
    push_dashboards(target, dashboards(), overwrite=False)
    grafana.requests.clear()

    again = push_dashboards(target, dashboards(), overwrite=False)

    assert again.ok
    assert not again.folder_created
    assert {o.action for o in again.outcomes} == {"unchanged"}
    assert ("POST", "/api/dashboards/db") not in grafana.requests
    assert all(s["dashboard"]["version"] == 1 for s in grafana.dashboards.values())


def test_a_dashboard_edited_in_grafana_is_refused_without_overwrite_and_replaced_with_it(
    grafana: GrafanaStub,
) -> None:
    target = GrafanaTarget(url=grafana.url, token=TOKEN)
    push_dashboards(target, dashboards(), overwrite=False)
    edited = grafana.dashboards["bot4-engine"]["dashboard"]
    edited["title"] = "bot4: engine (edited by hand)"
    edited["version"] = 2

    refused = push_dashboards(target, dashboards(), overwrite=False)

    actions = {o.uid: o for o in refused.outcomes}
    assert not refused.ok
    assert actions["bot4-engine"].action == "refused"
    assert actions["bot4-engine"].version == 2
    assert "version 2" in actions["bot4-engine"].reason
    assert actions["bot4-overview"].action == "unchanged"
    assert grafana.dashboards["bot4-engine"]["dashboard"]["title"].endswith("(edited by hand)")

    replaced = push_dashboards(target, dashboards(), overwrite=True)

    assert replaced.ok
    actions = {o.uid: o for o in replaced.outcomes}
    assert (actions["bot4-engine"].action, actions["bot4-engine"].version) == ("updated", 3)
    assert grafana.dashboards["bot4-engine"]["dashboard"]["title"] == "bot4: engine"


def test_a_changed_generator_output_is_refused_until_overwrite(grafana: GrafanaStub) -> None:
    target = GrafanaTarget(url=grafana.url, token=TOKEN)
    push_dashboards(target, dashboards("prom-old"), overwrite=False)

    refused = push_dashboards(target, dashboards("prom-new"), overwrite=False)
    assert {o.action for o in refused.outcomes} == {"refused"}
    replaced = push_dashboards(target, dashboards("prom-new"), overwrite=True)

    assert {(o.action, o.version) for o in replaced.outcomes} == {("updated", 2)}
    panel = grafana.dashboards["bot4-overview"]["dashboard"]["panels"][0]
    assert panel["datasource"]["uid"] == "prom-new"


def test_a_dashboard_created_by_someone_else_meanwhile_is_refused_by_grafana(
    grafana: GrafanaStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = GrafanaTarget(url=grafana.url, token=TOKEN)
    push_dashboards(target, dashboards("prom-a")[:1], overwrite=False)
    with GrafanaProvisioner(target) as provisioner:
        # it was not there when we looked: the save races the other writer
        def not_found(uid: str) -> None:
            error: Any = GrafanaClientError  # grafana-client is untyped
            raise error(404, {"message": "Dashboard not found"}, "Not found")

        monkeypatch.setattr(provisioner.api.dashboard, "get_dashboard", not_found)
        outcome = provisioner.push(dashboards("prom-b")[0], overwrite=False)

    assert outcome.action == "refused"
    assert "changed by someone else" in outcome.reason
    assert "412" in outcome.reason
    assert grafana.dashboards["bot4-overview"]["dashboard"]["version"] == 1


def test_basic_auth_is_accepted_like_a_token() -> None:
    with GrafanaStub(basic=("deployer", "s3cret-pass")) as grafana:
        target = GrafanaTarget(url=grafana.url + "/", basic=("deployer", "s3cret-pass"))
        report = push_dashboards(target, dashboards(), overwrite=False)
        found = GrafanaProvisioner(target)
        try:
            listed = found.search(tag="bot4")
        finally:
            found.close()
    assert report.ok
    assert {d["uid"] for d in listed} == {"bot4-overview", "bot4-engine", "bot4-operations"}


def test_a_wrong_token_is_a_clear_auth_error_and_creates_nothing(grafana: GrafanaStub) -> None:
    target = GrafanaTarget(url=grafana.url, token="wrong-token-0000")

    with pytest.raises(GrafanaAuthError) as caught:
        push_dashboards(target, dashboards(), overwrite=False)

    message = str(caught.value)
    assert grafana.url in message
    assert "401" in message
    assert "BOT4_GRAFANA__TOKEN" in message
    assert "wrong-token-0000" not in message
    assert grafana.folders == {}
    assert grafana.dashboards == {}


def test_a_grafana_that_is_down_is_named_by_its_url() -> None:
    url = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there

    with pytest.raises(GrafanaUnreachableError) as caught:
        push_dashboards(GrafanaTarget(url=url, token=TOKEN), dashboards(), overwrite=False)

    message = str(caught.value)
    assert f"cannot reach Grafana at {url}" in message
    assert "Connection refused" in message
    assert "BOT4_GRAFANA__URL" in message
