"""A tiny builder of Grafana dashboard JSON: panels, rows of panels, dashboards.

Only what bot4's dashboards use: ``stat``, ``timeseries`` and ``state-timeline`` panels
over PromQL, value mappings and thresholds, a datasource template variable and query
variables. Panels are laid out in rows, left to right, so no ``gridPos`` is written by
hand; ids are assigned in order, so the JSON is stable from one generation to the next.

Every panel and query names its datasource through the ``${datasource}`` template
variable; :func:`infra.grafana.dashboards.with_datasource` pins a concrete datasource uid
when a dashboard is rendered for a given Grafana.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

GRID_WIDTH: Final = 24  # Grafana's grid is 24 columns wide
DATASOURCE_VARIABLE: Final = "datasource"
DATASOURCE: Final[dict[str, str]] = {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"}
SCHEMA_VERSION: Final = 39  # Grafana 10.4+; newer Grafanas migrate it on load
TAG: Final = "bot4"

PanelKind = Literal["stat", "timeseries", "state-timeline"]
Json = dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Query:
    """One PromQL expression of a panel and how its series are named."""

    expr: str
    legend: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Mapping:
    """Show ``value`` as ``text`` in ``color`` (a state code as a word)."""

    value: int
    text: str
    color: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Panel:
    """One panel: a title, what it shows, and how wide and tall it is on the grid."""

    title: str
    queries: tuple[Query, ...]
    kind: PanelKind = "timeseries"
    description: str = ""
    unit: str = "short"
    width: int = 8
    height: int = 8
    mappings: tuple[Mapping, ...] = ()
    # (from value, color) steps; the first step's value is ignored (it is the base)
    thresholds: tuple[tuple[float, str], ...] = ((0, "green"),)
    decimals: int | None = None
    min_value: float | None = None
    #: what the panel says while its series does not exist yet (Grafana's "No data")
    no_value: str | None = None

    def to_json(self, *, panel_id: int, x: int, y: int) -> Json:
        """Return the panel's JSON at grid position ``x``, ``y``."""
        defaults: Json = {
            "unit": self.unit,
            "mappings": [_mapping(m, i) for i, m in enumerate(self.mappings)],
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": color, "value": None if i == 0 else value}
                    for i, (value, color) in enumerate(self.thresholds)
                ],
            },
            "color": {"mode": "palette-classic" if self._palette() else "thresholds"},
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.min_value is not None:
            defaults["min"] = self.min_value
        if self.no_value is not None:
            defaults["noValue"] = self.no_value
        if self.kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": False,
            }
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": dict(DATASOURCE),
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "targets": [self._target(q, i) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self._options(),
        }

    def _palette(self) -> bool:
        # a time series of several lines reads best in distinct colors; states and single
        # figures are colored by their mappings and thresholds
        return self.kind == "timeseries" and not self.mappings

    def _target(self, query: Query, index: int) -> Json:
        instant = self.kind == "stat"  # a stat shows the latest value: no range needed
        return {
            "refId": chr(ord("A") + index),
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "instant": instant,
            "range": not instant,
        }

    def _options(self) -> Json:
        if self.kind == "stat":
            return {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "value_and_name",
            }
        legend = {"displayMode": "list", "placement": "bottom", "showLegend": True}
        if self.kind == "state-timeline":
            return {
                "legend": legend,
                "showValue": "auto",
                "mergeValues": True,
                "tooltip": {"mode": "single", "sort": "none"},
            }
        return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}


def _mapping(mapping: Mapping, index: int) -> Json:
    return {
        "type": "value",
        "options": {
            str(mapping.value): {"text": mapping.text, "color": mapping.color, "index": index}
        },
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Variable:
    """A query template variable: the values of ``label`` on ``metric`` (multi, with All)."""

    name: str
    label: str
    metric: str

    def to_json(self) -> Json:
        """Return the variable's JSON; "All" matches any value, or none (``.*``)."""
        query = f"label_values({self.metric}, {self.label})"
        return {
            "name": self.name,
            "label": self.label.capitalize(),
            "type": "query",
            "datasource": dict(DATASOURCE),
            "definition": query,
            "query": {"query": query, "refId": f"{self.name}-values"},
            "refresh": 2,  # on time range change: a new engine color shows up by itself
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "sort": 1,
            "hide": 0,
            "regex": "",
        }


def datasource_variable() -> Json:
    """Return the ``datasource`` variable: the viewer picks any Prometheus datasource."""
    return {
        "name": DATASOURCE_VARIABLE,
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "options": [],
        "refresh": 1,
        "regex": "",
        "hide": 0,
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Dashboard:
    """A dashboard: stable uid and title, rows of panels laid out top to bottom."""

    uid: str
    title: str
    description: str
    rows: tuple[tuple[Panel, ...], ...]
    variables: tuple[Variable, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"
    tags: tuple[str, ...] = field(default=(TAG,))

    def to_json(self) -> Json:
        """Return the dashboard's JSON model (``id`` null: Grafana assigns its own)."""
        return {
            "id": None,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "utc",
            "editable": True,
            "graphTooltip": 1,  # shared crosshair: line up a spike across panels
            "schemaVersion": SCHEMA_VERSION,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "annotations": {"list": []},
            "links": [
                {
                    "title": "bot4 dashboards",
                    "type": "dashboards",
                    "tags": [TAG],
                    "asDropdown": True,
                    "includeVars": False,
                    "keepTime": True,
                }
            ],
            "templating": {"list": [datasource_variable(), *(v.to_json() for v in self.variables)]},
            "panels": self._panels(),
        }

    def _panels(self) -> list[Json]:
        panels: list[Json] = []
        y = 0
        for row in self.rows:
            x, tallest = 0, 0
            for panel in row:
                if x + panel.width > GRID_WIDTH:  # wrap: the row continues below
                    y, x, tallest = y + tallest, 0, 0
                panels.append(panel.to_json(panel_id=len(panels) + 1, x=x, y=y))
                x += panel.width
                tallest = max(tallest, panel.height)
            y += tallest
        return panels


def series(*labels: str) -> str:
    """Return a legend that names each series by ``labels``' values (``{{color}} ...``)."""
    return " ".join("{{" + label + "}}" for label in labels)
