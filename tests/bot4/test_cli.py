"""The CLI's handling of bad arguments and bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot4", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unknown_command_exits_2_with_usage() -> None:
    done = run_cli("stack", "sideways")
    assert done.returncode == 2
    assert "invalid choice: 'sideways'" in done.stderr


def test_bad_environment_variable_is_named_and_exits_2(tmp_path: object) -> None:
    done = run_cli(
        "stack", "status", env={"BOT4_DB__PRIMARY_PORT": "99999", "BOT4_HOME": str(tmp_path)}
    )
    assert done.returncode == 2
    assert "BOT4_DB__PRIMARY_PORT" in done.stderr
    assert "less than or equal to 65535" in done.stderr
    assert done.stdout == ""


def test_status_of_a_stack_never_started_exits_3(tmp_path: object) -> None:
    done = run_cli("stack", "status", "--json", env={"BOT4_HOME": str(tmp_path)})
    assert done.returncode == 3
    assert '"healthy": false' in done.stdout
