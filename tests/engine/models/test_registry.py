"""Model registry on a real PostgreSQL and the session's S3 (moto): lifecycle and checksums."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import numpy as np
import pytest

from engine.models.artifact import ModelArtifactError, default_weights
from engine.models.fetch import publish, registry_fetcher
from engine.models.registry import (
    IllegalTransitionError,
    ModelExistsError,
    ModelRegistry,
    UnknownModelError,
)
from engine.models.store import ArtifactStore
from infra.model_store import model_store
from infra.stack.launcher import Stack


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def store(running_stack: Stack) -> ArtifactStore:
    storage = running_stack.settings.storage.model_copy(
        update={"models_uri": f"s3://bot4-models/test-{uuid.uuid4().hex[:8]}"}
    )
    return model_store(storage, create_bucket=True)


async def register(pool: asyncpg.Pool, store: ArtifactStore, version: str) -> Any:
    weights = replace(default_weights(), version=version)
    return await publish(ModelRegistry(pool), store, weights, training={"data_sha256": "ab"},
                         metrics={"holdout": {"r2": 0.1}}, by="alice")  # fmt: skip


async def test_a_published_model_round_trips_through_registry_and_store(
    pool: asyncpg.Pool, store: ArtifactStore
) -> None:
    record = await register(pool, store, "m1")

    fetched = await registry_fetcher(pool, store)("m1")

    assert record.state == "registered"
    assert record.sha256 == default_weights().checksum()
    assert record.artifact_uri == store.artifact_uri("m1")
    assert record.features[0] == "micro_offset"
    assert fetched.checksum() == record.sha256
    assert np.array_equal(fetched.w2, default_weights().w2)
    assert [r.version for r in await ModelRegistry(pool).versions()] == ["m1"]
    with pytest.raises(ModelExistsError, match="immutable"):
        await register(pool, store, "m1")


async def test_the_lifecycle_allows_only_its_moves_and_keeps_one_active_model(
    pool: asyncpg.Pool, store: ArtifactStore
) -> None:
    registry = ModelRegistry(pool)
    await register(pool, store, "a")
    await register(pool, store, "b")

    with pytest.raises(IllegalTransitionError, match="registered -> active is not allowed"):
        await registry.transition("a", to="active", by="alice", reason="skip the gates")
    for version in ("a", "b"):
        await registry.transition(version, to="shadow", by="alice", reason="t")
        await registry.transition(version, to="canary", by="alice", reason="t")
    await registry.promote("a", by="alice", reason="t")
    _, retired = await registry.promote("b", by="alice", reason="t")

    assert retired == "a"
    assert (await registry.get("a")).state == "retired"
    active = await registry.active()
    assert active is not None
    assert active.version == "b"
    steps = [(t.from_state, t.to_state) for t in await registry.history("a")]
    assert steps == [("", "registered"), ("registered", "shadow"), ("shadow", "canary"),
                     ("canary", "active"), ("active", "retired")]  # fmt: skip
    with pytest.raises(IllegalTransitionError):
        await registry.transition("b", to="shadow", by="alice", reason="backwards")
    with pytest.raises(UnknownModelError):
        await registry.transition("nope", to="shadow", by="alice", reason="t")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM model_transitions")


async def test_concurrent_moves_of_one_version_record_one_transition(
    pool: asyncpg.Pool, store: ArtifactStore
) -> None:
    registry = ModelRegistry(pool)
    await register(pool, store, "c")

    results = await asyncio.gather(
        *(registry.transition("c", to="shadow", by=f"w{i}", reason="race") for i in range(4))
    )

    assert {r.state for r in results} == {"shadow"}
    moves = [t for t in await registry.history("c") if t.to_state == "shadow"]
    assert len(moves) == 1


async def test_a_corrupted_artifact_is_refused_on_fetch(
    pool: asyncpg.Pool, store: ArtifactStore
) -> None:
    record = await register(pool, store, "bad")
    tampered = replace(default_weights(), version="bad", w2=default_weights().w2 * 1.01)
    await asyncio.to_thread(store.put, tampered)  # weights and manifest both replaced

    with pytest.raises(ModelArtifactError, match="checksum mismatch"):
        await registry_fetcher(pool, store)("bad")
    assert record.sha256 != tampered.checksum()
