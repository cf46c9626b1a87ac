"""The CLI as a client of the control API: keys, audit, status, and its error messages."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.bot4.api.conftest import Keys
from tests.stubs.api import RunningApi, cli_env, run_bot4
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(120)


async def test_bootstrap_is_local_refused_twice_and_forced_into_a_0600_file(
    api: RunningApi, keys: Keys, tmp_path: Path
):
    path = tmp_path / "second-admin.key"
    env = cli_env(api.settings, BOT4_API__KEY_FILE=str(path))
    refused = await run_bot4(env, "keys", "bootstrap")
    assert refused.returncode == 1
    assert "a usable admin key exists" in refused.stderr
    assert not path.exists()

    forced = await run_bot4(env, "keys", "bootstrap", "--force", "--name", "break-glass", "--json")
    assert forced.returncode == 0, forced.stderr
    document = json.loads(forced.stdout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    keys.issued.append(key)
    assert key not in forced.stdout + forced.stderr  # written to the file only
    assert (document["role"], document["name"], document["key_file"]) == (
        "admin", "break-glass", str(path),
    )  # fmt: skip
    # the CLI now uses that file: the API knows the key as the new admin
    whoami = await run_bot4(env, "keys", "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["id"] == document["id"]
    # and the bootstrap itself is in the audit log
    rows = await run_bot4(env, "audit", "list", "--json", "--key-id", document["id"])
    routes = [r["route"] for r in json.loads(rows.stdout)]
    assert "bot4 keys bootstrap" in routes
    assert "bot4 keys bootstrap" in (await run_bot4(env, "keys", "bootstrap", "--help")).stdout


async def test_key_lifecycle_through_the_cli(api: RunningApi, keys: Keys):
    env = cli_env(api.settings)  # the bootstrap key file of the package's API
    created = await run_bot4(env, "keys", "create", "--role", "operator", "--name", "ci-bot",
                          "--expires", "30d")  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    keys.issued.append(key)
    assert key.startswith("b4_")
    assert "shown once" in created.stderr
    key_id = key.split("_")[1]

    listed = await run_bot4(env, "keys", "list", "--json")
    mine = next(k for k in json.loads(listed.stdout) if k["id"] == key_id)
    assert (mine["role"], mine["state"]) == ("operator", "active")
    assert key not in listed.stdout

    rotated = await run_bot4(env, "keys", "rotate", key_id, "--overlap", "1h", "--json")
    assert rotated.returncode == 0, rotated.stderr
    successor = json.loads(rotated.stdout)
    keys.issued.append(successor["key"])
    assert successor["replaces"]["state"] == "retiring"

    revoked = await run_bot4(env, "keys", "revoke", successor["id"], "--reason", "test", "--json")
    assert json.loads(revoked.stdout)["state"] == "revoked"
    as_successor = {**env, "BOT4_API_KEY": successor["key"]}
    refused = await run_bot4(as_successor, "keys", "whoami")
    assert refused.returncode == 1
    assert "HTTP 401" in refused.stderr
    assert "check BOT4_API_KEY" in refused.stderr


async def test_status_and_a_too_low_role_through_the_cli(api: RunningApi, keys: Keys):
    viewer = await keys.create("viewer", name="cli-viewer")
    env = cli_env(api.settings, BOT4_API_KEY=viewer["key"])
    status = await run_bot4(env, "status", "--json")
    document = json.loads(status.stdout)
    assert status.returncode == 3  # this test's stack runs no simulator, Temporal...
    assert [e["color"] for e in document["engines"]] == ["blue", "green"]
    api_row = next(c for c in document["stack"]["components"] if c["name"] == "api")
    assert api_row["url"] == api.url  # listed; not the stack's own (no pid file), so DOWN
    assert document["api"]["version"] == "v1"
    denied = await run_bot4(env, "keys", "list")
    assert denied.returncode == 1
    assert "needs role admin" in denied.stderr
    assert "ask an admin" in denied.stderr


async def test_cli_without_a_key_or_an_api_says_what_to_do(api: RunningApi, tmp_path: Path):
    no_key = cli_env(api.settings, BOT4_HOME=str(tmp_path))
    done = await run_bot4(no_key, "status")
    assert done.returncode == 2
    assert "no API key" in done.stderr
    assert "BOT4_API_KEY" in done.stderr
    assert "bot4 keys bootstrap" in done.stderr

    (dead,) = free_ports(1)
    nothing = cli_env(api.settings, BOT4_API_URL=f"http://127.0.0.1:{dead}")
    done = await run_bot4(nothing, "audit", "verify")
    assert done.returncode == 1
    assert f"no answer from the control API at http://127.0.0.1:{dead}" in done.stderr


async def test_a_malformed_secret_setting_is_named_but_never_echoed(tmp_path: Path):
    secret = "not-a-fernet-key-but-secret"
    env = cli_env(_bare_settings(tmp_path), BOT4_API__AUDIT_KEY=secret)
    done = await run_bot4(env, "status")
    assert done.returncode == 2
    assert "BOT4_API__AUDIT_KEY" in done.stderr
    assert "Fernet" in done.stderr
    assert secret not in done.stderr + done.stdout


def _bare_settings(home: Path):
    from bot4.settings import Settings

    return Settings(home=home)


async def test_api_without_its_database_exits_1_saying_what_to_do(tmp_path: Path):
    dead_db, port = free_ports(2)
    env = cli_env(
        _bare_settings(tmp_path),
        BOT4_DB__DSN=f"postgresql://postgres:hunter2@127.0.0.1:{dead_db}/bot4",
        BOT4_API__PORT=str(port),
    )
    done = await run_bot4(env, "api")
    assert done.returncode == 1
    assert "cannot reach PostgreSQL" in done.stderr
    assert "BOT4_DB__DSN" in done.stderr
    assert "hunter2" not in done.stderr + (tmp_path / "log" / "bot4.log").read_text()
