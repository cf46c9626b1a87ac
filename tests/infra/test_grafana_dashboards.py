"""The committed Grafana dashboards are valid, current, and query only exported metrics.

The metric check reads the names from the exporters themselves: the prometheus-client
registries of the engine, its exchange adapter, the flow runner and the control API.
Names the Temporal worker exports (``temporal_*``, ``bot4_dr_*``, ``bot4_pg_*``) are
checked by scraping a real worker in ``test_grafana_worker_metrics.py``.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from infra.grafana import catalog
from infra.grafana.dashboards import FOLDER, generate, render, stale_files, to_text
from infra.grafana.model import DATASOURCE, DATASOURCE_VARIABLE, GRID_WIDTH
from infra.grafana.promql import (
    dashboard_metric_names,
    instantiate,
    metric_names,
    panel_expressions,
)

NAMES = ("overview", "engine", "operations")
WORKER_PREFIXES = ("temporal_", "bot4_dr_", "bot4_pg_")


def committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((FOLDER / f"{name}.json").read_text()) for name in NAMES}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry exposes, also for labelled metrics not yet used."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def registry_names() -> set[str]:
    """Names of the engine's, the adapter's, the flow runner's and the API's registries."""
    from prometheus_client import REGISTRY

    from bot4.api.metrics import ApiMetrics
    from flows.metrics import FlowMetrics

    for module in ("engine.live.metrics", "engine.execution.metrics"):
        importlib.import_module(module)  # importing them registers their metrics

    return (
        exposed_names(REGISTRY)
        | exposed_names(FlowMetrics().registry)
        | exposed_names(ApiMetrics().registry)
    )


def test_committed_dashboards_equal_the_generator_output() -> None:
    generated = generate()
    assert set(generated) == set(NAMES)
    for name in NAMES:
        text = (FOLDER / f"{name}.json").read_text(encoding="utf-8")
        assert text == to_text(generated[name]), (
            f"infra/grafana/{name}.json is stale: .venv/bin/python -m infra.grafana.dashboards"
            " --write"
        )
    assert stale_files() == []


def test_uids_and_titles_are_unique_stable_and_tagged() -> None:
    dashboards = committed()
    uids = [d["uid"] for d in dashboards.values()]
    assert uids == ["bot4-overview", "bot4-engine", "bot4-operations"]
    assert len({d["title"] for d in dashboards.values()}) == len(NAMES)
    for dashboard in dashboards.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
        assert dashboard["id"] is None  # Grafana assigns its own
        assert "bot4" in dashboard["tags"]
        assert dashboard["title"].startswith("bot4")


@pytest.mark.parametrize("name", NAMES)
def test_panel_ids_are_unique_and_every_panel_has_a_datasource_and_a_query(name: str) -> None:
    dashboard = committed()[name]
    panels = dashboard["panels"]
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables[DATASOURCE_VARIABLE]["type"] == "datasource"
    for panel in panels:
        assert panel["title"].strip()
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("name", NAMES)
def test_grid_positions_fit_the_grid_and_never_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in committed()[name]["panels"]:
        grid = panel["gridPos"]
        assert min(grid["w"], grid["h"]) >= 1, panel["title"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_metric_a_dashboard_queries_is_exported() -> None:
    exported = registry_names() | catalog.PROMETHEUS_BUILTIN
    for name, dashboard in committed().items():
        for title, expr in panel_expressions(dashboard):
            names = metric_names(expr)
            assert names, f"{name}/{title}: no metric in {expr!r}"
            unknown = {n for n in names - exported if not n.startswith(WORKER_PREFIXES)}
            assert not unknown, f"{name}/{title}: {sorted(unknown)} is not exported"


def test_the_metric_check_refuses_a_name_nobody_exports() -> None:
    # the check above must be able to fail: a typo'd name is not in the exported set
    exported = registry_names()
    assert catalog.TRADING_STATE in exported
    assert f"{catalog.TICK_TO_DECISION}_bucket" in exported
    assert catalog.BACKUP_AGE in exported
    assert "bot4_engine_trading_states" not in exported


def test_the_catalog_lists_exactly_the_metrics_the_dashboards_use() -> None:
    used: set[str] = set()
    for dashboard in committed().values():
        used |= dashboard_metric_names(dashboard)
    histogram_base = {re.sub(r"_bucket$", "", n) for n in used}
    not_metrics = {"COLOR_LABEL", "ENGINE_JOB", "TEMPORAL_DURATION_UNIT"}
    listed = {
        value
        for key, value in vars(catalog).items()
        if key.isupper() and isinstance(value, str) and key not in not_metrics
    }
    assert listed == histogram_base


def test_the_engine_dashboard_filters_every_engine_query_by_color() -> None:
    dashboard = committed()["engine"]
    for title, expr in panel_expressions(dashboard):
        assert f'{catalog.COLOR_LABEL}=~"$color"' in expr, title
    (color,) = [v for v in dashboard["templating"]["list"] if v["name"] == "color"]
    assert color["definition"] == f"label_values({catalog.TRADING_STATE}, color)"


def test_latency_panels_take_quantiles_of_bucket_rates() -> None:
    dashboard = committed()["engine"]
    latency = {"Tick to decision", "Tick to order", "Order round trip"}
    seen = {title for title, expr in panel_expressions(dashboard) if title in latency}
    assert seen == latency
    for title, expr in panel_expressions(dashboard):
        if title in latency:
            assert re.match(r"histogram_quantile\(0\.(5|99), sum by \(.*le\) \(rate\(", expr)
            assert "_seconds_bucket{" in expr


def test_pinning_a_datasource_replaces_every_reference_and_drops_the_picker() -> None:
    for name, dashboard in render(datasource_uid="prom-main").items():
        text = json.dumps(dashboard)
        assert "${datasource}" not in text, name
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert DATASOURCE_VARIABLE not in names
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prom-main"}
            assert all(t["datasource"]["uid"] == "prom-main" for t in panel["targets"])
    assert render(datasource_uid="") == generate()


def test_metric_names_skips_functions_labels_keywords_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (color, le) (rate(a_bucket{color=~"$color",'
        ' x="up"}[$__rate_interval]))) > bool 0 or on (job) b unless c offset 5m'
        ' or count(ALERTS{alertstate="firing"}) or vector(0) or time() - d'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "ALERTS", "d"}
    with pytest.raises(ValueError, match="empty"):
        metric_names("  ")


def test_every_panel_expression_parses_as_promql(tmp_path: Path) -> None:
    """Prometheus's own parser (promtool) reads each query as Grafana would send it."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool is not installed (apt-get install --no-install-recommends prometheus)"
        )
    expressions = [e for d in committed().values() for _title, e in panel_expressions(d)]
    rules = [
        {"record": f"bot4:grafana_check_{i}", "expr": instantiate(expr)}
        for i, expr in enumerate(expressions)
    ]
    path = tmp_path / "dashboards.rules.yml"
    # JSON is YAML: promtool reads it as a rule file
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))

    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout + done.stderr


def test_instantiate_fills_grafana_variables_as_all() -> None:
    expr = 'rate(x{color=~"$color"}[$__rate_interval])'
    assert instantiate(expr) == 'rate(x{color=~".*"}[1m])'
    assert instantiate(expr, rate_interval="30s") == 'rate(x{color=~".*"}[30s])'
