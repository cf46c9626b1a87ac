"""The object store: S3 through boto3 (moto locally), for backups and reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bot4.settings import StorageSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client(settings: StorageSettings) -> S3Client:
    """Return a boto3 S3 client for the configured endpoint.

    Against the local moto server any credentials do; against real S3 (``endpoint_url``
    unset and no local server) boto3's usual credential chain applies.
    """
    endpoint = settings.effective_endpoint_url()
    local = settings.endpoint_url is None
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.region,
        aws_access_key_id="bot4" if local else None,
        aws_secret_access_key="bot4" if local else None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    )
    return client


def ensure_bucket(client: S3Client, bucket: str) -> None:
    """Create ``bucket`` unless it exists (idempotent)."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        client.create_bucket(Bucket=bucket)
