"""Alert rules are well formed, name metrics bot4 exports, and point at real runbooks.

A structural check (PyYAML); promtool checks and unit-tests the rules in test_promtool.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "infra" / "prometheus" / "rules").glob("*.yml"))
METRIC = re.compile(r"\b(bot4_[a-z0-9_]+)\b")
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")


def exported_metric_names() -> set[str]:
    """Every ``bot4_...`` name a Python module of the product mentions."""
    names: set[str] = set()
    for folder in ("engine", "workflows", "flows", "bot4", "infra"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(METRIC.findall(path.read_text()))
    return names


def github_anchors(markdown: str) -> set[str]:
    """Return the anchors GitHub gives the headings of a markdown text."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def rules(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [r for group in document["groups"] for r in group["rules"]]


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_every_rule_names_known_metrics_and_carries_severity_and_summary(path: Path) -> None:
    known = exported_metric_names()
    assert rules(path)
    for rule in rules(path):
        assert re.fullmatch(r"Bot4[A-Za-z]+", rule["alert"]), rule
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        named = {HISTOGRAM_SERIES.sub("", m) for m in METRIC.findall(rule["expr"])}
        assert named <= known, rule["expr"]
        assert rule["annotations"]["summary"].strip()


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_every_runbook_url_resolves_to_a_runbook_file_and_section(path: Path) -> None:
    for rule in rules(path):
        url = rule["annotations"]["runbook_url"]
        file, _, anchor = url.partition("#")
        runbook = ROOT / file
        assert file.startswith("runbooks/"), url
        assert runbook.is_file(), url
        if anchor:
            assert anchor in github_anchors(runbook.read_text()), url
