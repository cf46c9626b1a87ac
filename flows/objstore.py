"""Backups and reports in the object store: ``s3://bucket/prefix`` (boto3) or ``file:///dir``.

Large files go up with boto3's managed transfer (multipart past ``MULTIPART_BYTES``);
small documents (manifests, reports) as single objects. Keys are relative to the URI's
prefix, so the same code serves S3 and a folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from boto3.s3.transfer import TransferConfig

from bot4.settings import StorageSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MULTIPART_BYTES: Final = 8 * 1024 * 1024


class ObjectStoreError(Exception):
    """The object store refused or could not be reached; the message names the object."""


@dataclass(frozen=True, kw_only=True)
class ObjectStore:
    """One URI's objects. ``client`` is a boto3 S3 client (``s3://`` only)."""

    uri: str
    client: S3Client | Any | None = None

    @classmethod
    def open(cls, uri: str, storage: StorageSettings) -> ObjectStore:
        """Return the store of ``uri``; an S3 bucket is created when missing."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            Path(parsed.path).mkdir(parents=True, exist_ok=True)
            return cls(uri=uri)
        from infra.storage import ensure_bucket, s3_client

        client = s3_client(storage)
        ensure_bucket(client, parsed.netloc)
        return cls(uri=uri, client=client)

    @property
    def _bucket(self) -> str:
        return urlparse(self.uri).netloc

    def _key(self, key: str) -> str:
        prefix = urlparse(self.uri).path.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _path(self, key: str) -> Path:
        return Path(urlparse(self.uri).path) / key

    @property
    def is_file(self) -> bool:
        """Tell whether this store is a local folder."""
        return urlparse(self.uri).scheme == "file"

    def uri_of(self, key: str) -> str:
        """Return the full URI of ``key``."""
        return f"{self.uri.rstrip('/')}/{key}"

    def put_file(self, path: Path, key: str) -> None:
        """Upload a file (multipart on S3 when large)."""
        try:
            if self.is_file:
                target = self._path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                return
            config = TransferConfig(
                multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
            )
            self._s3().upload_file(str(path), self._bucket, self._key(key), Config=config)
        except ObjectStoreError:
            raise
        except Exception as e:  # botocore's and OSError's trees: one error for the caller
            raise ObjectStoreError(f"{self.uri_of(key)}: upload failed: {e}") from e

    def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` into ``path``."""
        try:
            if self.is_file:
                shutil.copyfile(self._path(key), path)
            else:
                self._s3().download_file(self._bucket, self._key(key), str(path))
        except ObjectStoreError:
            raise
        except Exception as e:
            raise ObjectStoreError(f"{self.uri_of(key)}: download failed: {e}") from e

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "") -> None:
        """Write a small object."""
        try:
            if self.is_file:
                target = self._path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                return
            extra = {"ContentType": content_type} if content_type else {}
            self._s3().put_object(Bucket=self._bucket, Key=self._key(key), Body=data, **extra)
        except ObjectStoreError:
            raise
        except Exception as e:
            raise ObjectStoreError(f"{self.uri_of(key)}: write failed: {e}") from e

    def get_bytes(self, key: str) -> bytes:
        """Read a small object."""
        try:
            if self.is_file:
                return self._path(key).read_bytes()
            body = self._s3().get_object(Bucket=self._bucket, Key=self._key(key))["Body"]
            return bytes(body.read())
        except ObjectStoreError:
            raise
        except Exception as e:
            raise ObjectStoreError(f"{self.uri_of(key)}: read failed: {e}") from e

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many went."""
        try:
            if self.is_file:
                folder = self._path(prefix)
                count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
                shutil.rmtree(folder, ignore_errors=True)
                return count
            client = self._s3()
            keys = [
                {"Key": item["Key"]}
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=self._bucket, Prefix=self._key(prefix)
                )
                for item in page.get("Contents", [])
            ]
            for start in range(0, len(keys), 1000):
                client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": keys[start : start + 1000]}
                )
            return len(keys)
        except ObjectStoreError:
            raise
        except Exception as e:
            raise ObjectStoreError(f"{self.uri_of(prefix)}: delete failed: {e}") from e

    def _s3(self) -> Any:
        if self.client is None:
            raise ObjectStoreError(f"{self.uri}: an s3:// store needs an S3 client")
        return self.client
