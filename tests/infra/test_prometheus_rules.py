"""Alert rules are well formed, name metrics bot4 exports, and point at real runbooks.

A structural check (PyYAML); ``promtool check rules`` arrives with the Prometheus issue.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "infra" / "prometheus" / "rules").glob("*.yml"))
METRIC = re.compile(r"\b(bot4_[a-z0-9_]+)\b")


def exported_metric_names() -> set[str]:
    """Every ``bot4_...`` name a Python module of the product mentions."""
    names: set[str] = set()
    for folder in ("engine", "workflows", "flows", "bot4", "infra"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(METRIC.findall(path.read_text()))
    return names


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_every_rule_names_known_metrics_and_an_existing_runbook(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    rules = [r for group in document["groups"] for r in group["rules"]]
    assert rules
    known = exported_metric_names()
    for rule in rules:
        assert re.fullmatch(r"Bot4[A-Za-z]+", rule["alert"]), rule
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        assert set(METRIC.findall(rule["expr"])) <= known, rule["expr"]
        runbook = ROOT / rule["annotations"]["runbook_url"]
        assert runbook.is_file(), rule["annotations"]["runbook_url"]
        assert rule["annotations"]["summary"].strip()
