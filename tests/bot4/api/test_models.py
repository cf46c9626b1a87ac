"""The model registry through the front door: ``bot4 model train`` [LOCAL], then list and
show through a real ``bot4 api`` process (viewer), audited; bad input named, non-zero exit.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from engine.data.generator import generate
from infra.stack.launcher import Stack
from tests.bot4.api.conftest import Keys, audit_row
from tests.bot4.api.test_auth import _call
from tests.stubs.api import Recorder, RunningApi, cli_env, run_bot4

pytestmark = pytest.mark.timeout(120)


async def test_trained_model_is_registered_then_listed_and_shown_through_the_api(
    api: RunningApi, recorder: Recorder, keys: Keys, running_stack: Stack, tmp_path: Path
) -> None:
    events = tmp_path / "events.npy"
    generate(events, events=60_000, seed=4)
    version = f"cli-{uuid.uuid4().hex[:8]}"
    viewer = await keys.create("viewer", name="models-viewer")
    storage = running_stack.settings.storage
    env = cli_env(
        api.settings,
        BOT4_API_KEY=viewer["key"],
        BOT4_STORAGE__PORT=str(storage.port),
        BOT4_STORAGE__MODELS_URI=f"s3://bot4-models/cli-{version}",
    )

    trained = await run_bot4(
        env, "model", "train", "--data", str(events), "--version", version, "--json"
    )
    again = await run_bot4(env, "model", "train", "--data", str(events), "--version", version)
    listed = await run_bot4(env, "model", "list", "--json")
    shown = await run_bot4(env, "model", "show", version, "--json")

    assert trained.returncode == 0, trained.stderr
    document = json.loads(trained.stdout)
    assert document["state"] == "registered"
    assert len(document["sha256"]) == 64
    assert document["training"]["method"] == "ridge"
    assert document["metrics"]["holdout"]["samples"] > 0
    assert again.returncode == 1
    assert "immutable" in again.stderr
    assert listed.returncode == 0, listed.stderr
    assert version in [m["version"] for m in json.loads(listed.stdout)]
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["history"]
    assert [t["to"] for t in history] == ["registered"]
    answer, correlation_id = await _call(recorder, api, f"/v1/models/{version}", key=viewer["key"])
    assert answer.status_code == 200
    row = await audit_row(api.settings.db.effective_dsn(), correlation_id)
    assert row is not None
    assert row["route"] == "/v1/models/{version}"
    missing, _ = await _call(recorder, api, "/v1/models/no-such-model", key=viewer["key"])
    assert missing.status_code == 404
    assert "not registered" in missing.text


async def test_bad_training_input_is_named_and_nothing_is_registered(
    api: RunningApi, keys: Keys, tmp_path: Path
) -> None:
    viewer = await keys.create("viewer", name="models-viewer-2")
    env = cli_env(api.settings, BOT4_API_KEY=viewer["key"])
    short = tmp_path / "short.npy"
    generate(short, events=300, seed=1)

    missing = await run_bot4(
        env, "model", "train", "--data", str(tmp_path / "no.npy"), "--version", "x1"
    )
    bad_version = await run_bot4(
        env, "model", "train", "--data", str(short), "--version", "no spaces"
    )
    bad_holdout = await run_bot4(
        env, "model", "train", "--data", str(short), "--version", "x2", "--holdout", "1.5"
    )
    too_short = await run_bot4(env, "model", "train", "--data", str(short), "--version", "x3")
    listed = await run_bot4(env, "model", "list", "--json")

    assert (missing.returncode, bad_version.returncode, bad_holdout.returncode) == (2, 2, 2)
    assert "--data" in missing.stderr
    assert "--version" in bad_version.stderr
    assert "--holdout" in bad_holdout.stderr
    assert too_short.returncode == 1
    assert "longer event file" in too_short.stderr
    assert not {"x1", "x2", "x3"} & {m["version"] for m in json.loads(listed.stdout)}


async def test_rollout_model_starts_the_runbook_and_reports_a_refused_plan(
    api: RunningApi, keys: Keys
) -> None:
    operator = await keys.create("operator", name="models-operator")
    env = cli_env(api.settings, BOT4_API_KEY=operator["key"])

    ran = await run_bot4(
        env, "rollout", "model", "--version", "ghost-1", "--dry-run", "--wait", "--json"
    )

    assert ran.returncode == 3, ran.stderr
    assert "model-rollout-ghost-1-plan-" in ran.stdout
    assert "not registered" in ran.stdout
