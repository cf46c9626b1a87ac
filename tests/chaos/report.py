"""The chaos suite's lines in pytest's output: the seed first, each scenario's outcome last.

Wired from ``tests/conftest.py`` (loaded by every run, also under xdist's controller,
which does not load this folder's conftest). The outcomes travel as the tests'
``user_properties``, so they reach the controller from xdist workers too.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from tests.chaos.scenarios import ChaosSettings

PROPERTY: Final = "chaos"


def _selected(config: pytest.Config) -> bool:
    args = [str(a).rstrip("/") for a in config.args]
    return any("chaos" in a or a in ("tests", ".") for a in args)


def header(config: pytest.Config) -> list[str]:
    """Return the seed line (when the chaos suite is part of the run)."""
    if not _selected(config):
        return []
    try:
        chaos = ChaosSettings.from_env()
    except ValueError as e:
        return [f"chaos: {e}"]
    return [
        f"chaos: seed {chaos.seed}, scenarios {chaos.indices() if chaos.only else chaos.count}"
        f" (reproduce one: BOT4_CHAOS_SEED={chaos.seed} BOT4_CHAOS_ONLY=<index>"
        " pytest tests/chaos)"
    ]


def summary(reporter: Any) -> None:
    """Write one line per chaos scenario that ran: faults, outcome, time, verdict."""
    lines = []
    for reports in reporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            lines += [value for name, value in report.user_properties if name == PROPERTY]
    if not lines:
        return
    chaos = ChaosSettings.from_env()
    reporter.write_sep("=", f"chaos scenarios of seed {chaos.seed}")
    for line in sorted(lines, key=lambda text: int(text.split()[0].lstrip("#"))):
        reporter.write_line(line)
