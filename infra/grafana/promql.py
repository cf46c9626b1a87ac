"""Read the PromQL of generated dashboards: every expression, every metric name in it.

Tests use it to check that each metric a panel queries is one the processes export, and
that an integration test can run every panel's expression against a real Prometheus.
The name extraction is a small lexer, not a parser: it drops string literals, range
selectors, label matchers and grouping clauses, then every identifier not followed by
``(`` and not a keyword is a metric name. That is exact for the PromQL the builder writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

_STRINGS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACKETS: Final = re.compile(r"\[[^\]]*\]|\{[^}]*\}")
_GROUPING: Final = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENTIFIER: Final = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS: Final = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_LABEL_VALUES: Final = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,")
_VARIABLE: Final = re.compile(r"\$\{?(\w+)\}?")


def metric_names(expr: str) -> set[str]:
    """Return the metric names ``expr`` selects.

    Raises:
        ValueError: ``expr`` is empty.
    """
    if not expr.strip():
        raise ValueError("empty PromQL expression")
    text = _STRINGS.sub(" ", expr)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def instantiate(expr: str, *, rate_interval: str = "1m") -> str:
    """Return ``expr`` as Grafana would send it with every variable at "All".

    ``$__rate_interval`` becomes ``rate_interval``; any other variable (``$color``) is used
    only in regex matchers (``=~"$color"``), where "All" is ``.*``. For running a panel's
    query against Prometheus without Grafana (promtool, the HTTP query API).
    """
    expr = expr.replace("$__rate_interval", rate_interval)
    return _VARIABLE.sub(".*", expr)


def panel_expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(panel title, expression)`` for every query of every panel."""
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            yield panel.get("title", ""), target.get("expr", "")


def variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    """Return the metrics the dashboard's query variables read their values from."""
    names: set[str] = set()
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            names.update(_LABEL_VALUES.findall(str(variable.get("definition", ""))))
    return names


def dashboard_metric_names(dashboard: dict[str, Any]) -> set[str]:
    """Return every metric name the dashboard's panels and variables use."""
    names = variable_metrics(dashboard)
    for _title, expr in panel_expressions(dashboard):
        names |= metric_names(expr)
    return names
