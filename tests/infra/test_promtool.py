"""promtool accepts the stack's configuration and the rules, and the rules' unit tests pass.

promtool comes with Debian's ``prometheus`` package (``make test`` installs it when run as
root). Without it these tests fail, saying so: a skipped rule test would let a broken
alert reach production unnoticed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from infra.prometheus.config import RULES_DIR, stack_config
from tests.stubs.stack import stack_settings

TESTS_DIR = RULES_DIR.parent / "tests"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))
INSTALL = "apt-get install -y --no-install-recommends prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            f"promtool is not installed: install Debian's prometheus package ({INSTALL};"
            " `make test` does it when run as root)"
        )
    return path


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def alert_names() -> set[str]:
    names = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_the_stack_config_passes_promtool_check_config(promtool: str, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(stack_config(stack_settings(tmp_path)))

    done = run(promtool, "check", "config", config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in done.stdout + done.stderr


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_every_rule_file_passes_promtool_check_rules(promtool: str, path: Path) -> None:
    done = run(promtool, "check", "rules", path)

    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_every_rule_unit_test_file_passes_promtool_test_rules(promtool: str, path: Path) -> None:
    done = run(promtool, "test", "rules", path)

    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    """Each alert has a case where it fires and one where it must stay quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])

    assert alert_names() - fires == set(), "alerts never shown firing"
    assert alert_names() - quiet == set(), "alerts never shown quiet"
