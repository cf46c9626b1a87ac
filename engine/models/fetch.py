"""Fetch a registered model: the registry row names the artifact and its SHA-256."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from engine.models.artifact import ModelWeights
from engine.models.registry import (
    ModelExistsError,
    ModelRecord,
    ModelRegistry,
    UnknownModelError,
)
from engine.models.store import ArtifactStore


def registry_fetcher(
    pool: asyncpg.Pool, store: ArtifactStore
) -> Callable[[str], Awaitable[ModelWeights]]:
    """Return ``fetch(version)``: look the version up, download it, verify its checksum.

    The returned coroutine raises ``UnknownModelError`` for an unregistered version and
    ``ModelArtifactError`` for a download failure or a checksum mismatch.
    """
    registry = ModelRegistry(pool)

    async def fetch(version: str) -> ModelWeights:
        record = await registry.get(version)
        # boto3 blocks: off the engine loop, which keeps deciding meanwhile
        return await asyncio.to_thread(store.fetch, record.artifact_uri, sha256=record.sha256)

    return fetch


async def publish(
    registry: ModelRegistry,
    store: ArtifactStore,
    weights: ModelWeights,
    *,
    training: dict[str, object],
    metrics: dict[str, object],
    by: str,
) -> ModelRecord:
    """Upload ``weights`` and register them (state ``registered``).

    The registry row is written last: a failed upload leaves no row pointing at nothing.

    Raises:
        ModelExistsError: the version is registered already (nothing is uploaded).
    """
    from engine.kernels.layout import FEATURE_NAMES
    from engine.kernels.model_nb import MODEL_KIND_NAMES

    try:
        await registry.get(weights.version)
    except UnknownModelError:
        pass
    else:
        raise ModelExistsError(
            f"model version {weights.version!r} is registered already; versions are"
            " immutable: choose a new one"
        )
    uri = await asyncio.to_thread(store.put, weights)
    return await registry.register(
        version=weights.version,
        kind=MODEL_KIND_NAMES[weights.kind],
        sha256=weights.checksum(),
        artifact_uri=uri,
        features=tuple(FEATURE_NAMES),
        training=dict(training),
        metrics=dict(metrics),
        by=by,
    )
