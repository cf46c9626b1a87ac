"""``bot4 dashboards push|render|list``, run as the operator runs them.

No Grafana server is installable here (no registry this machine reaches ships one), so
``tests/stubs/grafana.py`` stands in for it: a small HTTP server implementing the part of
Grafana's HTTP API contract that grafana-client uses for a push (health, folders,
dashboards by uid, save with overwrite and version-mismatch 412, search, 401 on bad
credentials), bound to 127.0.0.1 on a free port and stopped after each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot4.settings import GrafanaSettings, Settings
from tests.stubs.grafana import GrafanaStub
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)
TOKEN = "glsa_cli_test_token_0123456789"


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    with GrafanaStub(token=TOKEN) as stub:
        yield stub


def bot4(home: Path, *args: str, **grafana: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot4 ARGS`` with these Grafana settings and nothing else of ours."""
    settings = Settings(home=home, grafana=GrafanaSettings.model_validate(grafana))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT4_")}
    return subprocess.run(
        [sys.executable, "-m", "bot4", *args],
        env={**env, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def configured(grafana: GrafanaStub, **extra: object) -> dict[str, object]:
    return {"url": grafana.url, "token": SecretStr(TOKEN), "datasource_uid": "prom-main"} | extra


def test_push_creates_the_folder_and_the_three_dashboards_pinned_to_the_datasource(
    grafana: GrafanaStub, tmp_path: Path
) -> None:
    done = bot4(tmp_path, "dashboards", "push", **configured(grafana))

    assert done.returncode == 0, done.stderr
    assert "created folder bot4" in done.stderr
    assert done.stdout.count("created") == 3
    assert set(grafana.dashboards) == {"bot4-overview", "bot4-engine", "bot4-operations"}
    for stored in grafana.dashboards.values():
        assert stored["folderUid"] == "bot4"
        assert "${datasource}" not in json.dumps(stored["dashboard"])
        assert {p["datasource"]["uid"] for p in stored["dashboard"]["panels"]} == {"prom-main"}
    assert TOKEN not in done.stdout + done.stderr


def test_a_changed_dashboard_is_refused_without_overwrite_and_replaced_with_it(
    grafana: GrafanaStub, tmp_path: Path
) -> None:
    assert bot4(tmp_path, "dashboards", "push", **configured(grafana)).returncode == 0
    edited = grafana.dashboards["bot4-engine"]["dashboard"]
    edited |= {"title": "bot4: engine (hand edit)", "version": 2}

    refused = bot4(tmp_path, "dashboards", "push", "--json", **configured(grafana))

    assert refused.returncode == 1
    assert "bot4-engine" in refused.stderr
    assert "--overwrite" in refused.stderr
    report = json.loads(refused.stdout)
    actions = {d["uid"]: d["action"] for d in report["dashboards"]}
    assert actions == {"bot4-overview": "unchanged", "bot4-engine": "refused",
                       "bot4-operations": "unchanged"}  # fmt: skip
    assert grafana.dashboards["bot4-engine"]["dashboard"]["version"] == 2

    replaced = bot4(tmp_path, "dashboards", "push", "--overwrite", "--json", **configured(grafana))

    assert replaced.returncode == 0, replaced.stderr
    engine = next(d for d in json.loads(replaced.stdout)["dashboards"] if d["uid"] == "bot4-engine")
    assert (engine["action"], engine["version"]) == ("updated", 3)
    assert grafana.dashboards["bot4-engine"]["dashboard"]["title"] == "bot4: engine"


def test_a_wrong_token_exits_1_naming_the_url_and_the_setting(
    grafana: GrafanaStub, tmp_path: Path
) -> None:
    done = bot4(tmp_path, "dashboards", "push", **configured(grafana, token="not-the-token"))

    assert done.returncode == 1
    assert grafana.url in done.stderr
    assert "401" in done.stderr
    assert "BOT4_GRAFANA__TOKEN" in done.stderr
    assert "not-the-token" not in done.stdout + done.stderr
    assert grafana.dashboards == {}


def test_a_grafana_that_is_down_exits_1_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there

    done = bot4(tmp_path, "dashboards", "push", url=url, token=SecretStr(TOKEN))

    assert done.returncode == 1
    assert f"cannot reach Grafana at {url}" in done.stderr
    assert "BOT4_GRAFANA__URL" in done.stderr


def test_an_unconfigured_grafana_exits_2_saying_how_to_configure_it(tmp_path: Path) -> None:
    done = bot4(tmp_path, "dashboards", "push")

    assert done.returncode == 2
    assert "Grafana is not configured" in done.stderr
    assert "BOT4_GRAFANA__URL" in done.stderr
    assert "BOT4_GRAFANA__TOKEN" in done.stderr
    assert done.stdout == ""


def test_credentials_in_the_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    done = bot4(tmp_path, "dashboards", "push", url="http://admin:hunter2@127.0.0.1:3000")

    assert done.returncode == 2
    assert "BOT4_GRAFANA__USER" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_render_writes_pinned_json_and_list_shows_what_grafana_holds(
    grafana: GrafanaStub, tmp_path: Path
) -> None:
    out = tmp_path / "rendered"
    rendered = bot4(tmp_path, "dashboards", "render", "--out", str(out),
                    "--datasource-uid", "prom-x", "--json")  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    paths = sorted(Path(p).name for p in json.loads(rendered.stdout))
    assert paths == ["engine.json", "operations.json", "overview.json"]
    overview = json.loads((out / "overview.json").read_text())
    assert overview["panels"][0]["datasource"] == {"type": "prometheus", "uid": "prom-x"}

    bad = bot4(tmp_path, "dashboards", "render", "--out", str(out), "--datasource-uid", "a b")
    assert bad.returncode == 2
    assert "--datasource-uid" in bad.stderr

    assert bot4(tmp_path, "dashboards", "push", **configured(grafana)).returncode == 0
    listed = bot4(tmp_path, "dashboards", "list", "--grafana", "--json", **configured(grafana))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["uid"], r["in_grafana"]) for r in rows] == [
        ("bot4-overview", "bot4"), ("bot4-engine", "bot4"), ("bot4-operations", "bot4"),
    ]  # fmt: skip
