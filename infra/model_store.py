"""The model artifact store of the settings (``StorageSettings.models_uri``)."""

from __future__ import annotations

from bot4.settings import StorageSettings
from engine.models.store import ArtifactStore, bucket_of


def model_store(storage: StorageSettings, *, create_bucket: bool = False) -> ArtifactStore:
    """Return the artifact store; with ``create_bucket`` make its S3 bucket if missing."""
    uri = storage.models_uri
    bucket = bucket_of(uri)
    if bucket is None:
        return ArtifactStore(uri=uri)
    from infra.storage import ensure_bucket, s3_client

    client = s3_client(storage)
    if create_bucket:
        ensure_bucket(client, bucket)
    return ArtifactStore(uri=uri, client=client)
