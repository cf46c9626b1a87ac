"""model_rollout with a real engine process, PostgreSQL, the session's S3 and Temporal.

Blue leads (a ``bot4 engine run`` process through LocalPlatform) on a scratch database and
a simulator with agents trading; candidates are published to the session's S3 (moto) and
registered in the scratch database; the workflow runs on an in-process worker of the
test's own task queue. What happened is read from the journal, the registry and the
engine's ``/status``, not from the workflow's word for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from bot4.settings import Settings
from engine.models.artifact import ModelWeights, default_weights
from engine.models.fetch import publish
from engine.models.registry import ModelRegistry
from engine.models.store import ArtifactStore
from infra.model_store import model_store
from infra.stack.launcher import Stack
from tests.stubs.deploy import Desk, eventually, running_desk, write_release
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from workflows.approvals import Decision
from workflows.model_rollout import (
    ModelRolloutAlreadyStartedError,
    ModelRolloutInput,
    ModelRolloutResult,
    ModelRolloutWorkflow,
    start_model_rollout,
)
from workflows.model_rollout.activities import ModelRolloutActivities, ModelRolloutConfig
from workflows.registry import model_rollout_activities

pytestmark = pytest.mark.timeout(300)
BUILTIN = default_weights().version


@pytest.fixture
def market() -> Iterator[int]:
    with ThreadedSim(sim_config(agent_orders_per_s=150.0)) as sim:
        yield sim.config.port


@pytest.fixture
def version() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def desk(
    running_stack: Stack, dsn: str, market: int, tmp_path: Path, version: str
) -> AsyncIterator[Desk]:
    release = write_release(tmp_path, f"{version}-release")
    async with running_desk(
        running_stack.settings, home=tmp_path, dsn=dsn, market=market, release=release
    ) as desk:
        yield desk


@pytest.fixture
def store(desk: Desk) -> ArtifactStore:
    return model_store(desk.settings.storage, create_bucket=True)


@asynccontextmanager
async def rollout_worker(settings: Settings) -> AsyncIterator[tuple[Client, str]]:
    """Run a worker of model_rollout in-process on a unique task queue."""
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    task_queue = f"model-rollout-test-{uuid.uuid4().hex}"
    activities = ModelRolloutActivities(ModelRolloutConfig.from_settings(settings))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ModelRolloutWorkflow],
        activities=model_rollout_activities(activities),
    ):
        yield client, task_queue


def scaled(factor: float, version: str) -> ModelWeights:
    """The release's built-in model with its output scaled by ``factor``."""
    base = default_weights()
    return replace(base, version=version, w2=base.w2 * factor, b2=base.b2 * factor)


async def register(desk: Desk, store: ArtifactStore, weights: ModelWeights) -> None:
    await publish(ModelRegistry(desk.pool), store, weights, training={"data_sha256": "test"},
                  metrics={}, by="alice")  # fmt: skip


def short(version: str, **fields: Any) -> ModelRolloutInput:
    """A rollout with periods of a few seconds."""
    values: dict[str, Any] = {"requested_by": "alice", "reason": "test", "shadow_s": 3,
                              "canary_s": 3, "canary_fraction": 0.5, "bake_s": 3,
                              "check_interval_s": 1, "min_samples": 5}  # fmt: skip
    values.update(fields)
    return ModelRolloutInput(version=version, **values)


async def rollout(desk: Desk, request: ModelRolloutInput) -> ModelRolloutResult:
    async with rollout_worker(desk.settings) as (client, task_queue):
        handle = await start_model_rollout(client, request, task_queue=task_queue)
        return await handle.result()


async def model_changes(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Return the journal's model changes: seq, epoch, instance and the body."""
    rows = await pool.fetch(
        "SELECT seq, epoch, instance, body::text AS body FROM journal_events"
        " WHERE kind = 'model_change' ORDER BY seq"
    )
    return [{**dict(r), "body": json.loads(r["body"])} for r in rows]


async def test_good_candidate_is_promoted_by_a_hot_swap_journaled_at_an_exact_event(
    desk: Desk, store: ArtifactStore, version: str
) -> None:
    await register(desk, store, scaled(1.1, version))
    lease_before = await desk.lease()

    result = await rollout(desk, short(version))

    assert result.completed, result
    assert not result.rolled_back
    assert result.verify is not None
    assert result.verify.artifact_sha256 == result.verify.sha256
    assert [g.step for g in result.gates] == ["shadow", "canary", "bake"]
    assert all(g.passed for g in result.gates)
    shadow = {m.name: m.value for m in result.gates[0].measures}
    assert shadow["agreement"] == 1.0  # same sign everywhere
    assert shadow["relative_drift"] == pytest.approx(0.1, abs=1e-6)
    assert shadow["samples"] is not None
    assert shadow["samples"] >= 5
    assert shadow["latency_p99_us"] is not None
    # the journal shows the swap at an exact event, under the leader's unchanged epoch
    changes = await model_changes(desk.pool)
    actions = [c["body"]["action"] for c in changes]
    assert actions == ["canary", "promote"]
    promote = changes[-1]
    assert promote["body"]["to"] == version
    assert promote["body"]["from"] == BUILTIN
    assert promote["body"]["events_decided"] == result.promoted_at_event
    assert result.promoted_at_event is not None
    assert result.promoted_at_event > 0
    assert (promote["instance"], promote["epoch"]) == lease_before
    assert await desk.lease() == lease_before  # no handoff, no restart
    # the engine kept trading across the swap: orders after it, same epoch, still ACTIVE
    await _eventually_orders(desk, int(promote["seq"]))
    status = await desk.status("blue")
    assert status is not None
    assert status["model"]["active"] == version
    assert status["model"]["previous"] == BUILTIN
    assert status["trading_state"] == "ACTIVE"
    assert status["events"] > result.promoted_at_event
    registry = ModelRegistry(desk.pool)
    assert (await registry.get(version)).state == "active"
    path = [t.to_state for t in await registry.history(version)]
    assert path == ["registered", "shadow", "canary", "active"]
    async with rollout_worker(desk.settings) as (client, task_queue):
        with pytest.raises(ModelRolloutAlreadyStartedError):
            await start_model_rollout(client, short(version), task_queue=task_queue)


async def _eventually_orders(desk: Desk, seq: int) -> bool:
    async def sent() -> bool:
        return await desk.orders_since("blue", seq) > 0

    await eventually(sent, within=30, what="blue sending orders after the model swap")
    return True


async def test_corrupted_artifact_is_refused_before_shadow_and_a_disagreeing_one_rolled_back(
    desk: Desk, store: ArtifactStore, version: str
) -> None:
    registry = ModelRegistry(desk.pool)
    corrupt, negated = f"{version}-corrupt", f"{version}-neg"
    await register(desk, store, scaled(1.1, corrupt))
    store.put(scaled(1.3, corrupt))  # the artifact (and its manifest) replaced afterwards
    await register(desk, store, scaled(-1.0, negated))

    refused = await rollout(desk, short(corrupt))
    status_after_refusal = await desk.status("blue")
    rolled_back = await rollout(desk, short(negated))

    assert refused.rolled_back
    assert refused.failed_step == "verify_checksum"
    assert refused.reason is not None
    assert "checksum mismatch" in refused.reason
    assert refused.gates == ()
    assert status_after_refusal is not None
    assert status_after_refusal["model"]["candidate"] is None  # never reached the engine
    assert [t.to_state for t in await registry.history(corrupt)] == ["registered", "rejected"]

    assert rolled_back.rolled_back
    assert rolled_back.failed_step == "shadow"
    agreement = next(m for m in rolled_back.gates[0].measures if m.name == "agreement")
    assert not agreement.passed
    assert agreement.value is not None
    assert agreement.value < 0.8
    assert rolled_back.rollback is not None
    assert rolled_back.rollback.undone == "shadow"
    assert (await registry.get(negated)).state == "rejected"
    status = await desk.status("blue")
    assert status is not None
    assert status["model"]["active"] == BUILTIN
    assert status["model"]["candidate"] is None
    assert await model_changes(desk.pool) == []  # shadow never changed the live model


async def test_abort_during_bake_swaps_the_previous_model_back_while_trading_goes_on(
    desk: Desk, store: ArtifactStore, version: str
) -> None:
    await register(desk, store, scaled(1.1, version))
    async with rollout_worker(desk.settings) as (client, task_queue):
        handle = await start_model_rollout(client, short(version, bake_s=6), task_queue=task_queue)

        async def baking() -> bool:
            return (await handle.query(ModelRolloutWorkflow.progress)).step == "bake"

        await eventually(baking, within=60, what="the rollout reaching bake")
        await handle.execute_update(ModelRolloutWorkflow.abort, Decision(by="bob", note="test"))
        result = await handle.result()

    assert result.rolled_back
    assert result.failed_step == "bake"
    assert result.reason is not None
    assert "aborted by bob" in result.reason
    assert result.rollback is not None
    assert result.rollback.undone == "promoted"
    changes = await model_changes(desk.pool)
    assert [c["body"]["action"] for c in changes] == ["canary", "promote", "abort_promoted"]
    back = changes[-1]
    assert (back["body"]["from"], back["body"]["to"]) == (version, BUILTIN)
    assert back["body"]["events_decided"] > changes[1]["body"]["events_decided"]
    await _eventually_orders(desk, int(back["seq"]))
    status = await desk.status("blue")
    assert status is not None
    assert status["model"]["active"] == BUILTIN
    assert (await ModelRegistry(desk.pool).get(version)).state == "rejected"
