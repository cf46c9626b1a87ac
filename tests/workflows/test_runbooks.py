"""Every workflow package has its runbook, every runbook its workflow, and each step the
workflow declares (``STEPS`` in its ``workflow`` module) is named in the runbook."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"


def workflow_stems() -> list[str]:
    return sorted(
        p.name
        for p in (ROOT / "workflows").iterdir()
        if p.is_dir() and p.name != "__pycache__" and (p / "workflow.py").exists()
    )


def named_items(markdown: str) -> str:
    """Return the runbook's headings and list items: where a step must be named."""
    lines = markdown.splitlines()
    return "\n".join(line for line in lines if re.match(r"\s*(#+|[-*]|\d+\.)\s", line))


def test_every_workflow_package_has_a_runbook_and_every_runbook_a_package() -> None:
    runbooks = sorted(p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md")
    assert runbooks == workflow_stems()


@pytest.mark.parametrize("stem", workflow_stems())
def test_every_declared_step_is_named_in_the_runbook(stem: str) -> None:
    module = importlib.import_module(f"workflows.{stem}.workflow")
    steps: tuple[str, ...] = module.STEPS
    items = named_items((RUNBOOKS / f"{stem}.md").read_text())
    assert steps
    missing = [step for step in steps if f"`{step}`" not in items]
    assert not missing, f"runbooks/{stem}.md does not name steps {missing}"


@pytest.mark.parametrize("stem", workflow_stems())
def test_every_runbook_is_listed_in_the_index(stem: str) -> None:
    assert f"({stem}.md)" in (RUNBOOKS / "README.md").read_text()
