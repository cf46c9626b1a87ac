"""Model artifacts in the object store: upload, and fetch with the checksum verified.

An artifact lives at ``<models_uri>/<version>.npz`` with its manifest beside it
(``<version>.npz.json``, see :mod:`engine.models.artifact`). ``models_uri`` is
``s3://bucket/prefix`` (boto3; moto locally) or ``file:///folder``. A fetch downloads
both, loads them (the manifest's checksum is checked) and then compares the weights'
SHA-256 with the one the registry holds: the registry row is the authority, so an
artifact replaced together with its manifest is refused too.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from engine.models.artifact import ModelArtifactError, ModelWeights

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, kw_only=True)
class ArtifactStore:
    """Where artifacts go. ``client`` is a boto3 S3 client (needed for ``s3://`` only)."""

    uri: str
    client: S3Client | Any | None = None

    def artifact_uri(self, version: str) -> str:
        """Return the URI of ``version``'s weights."""
        return f"{self.uri.rstrip('/')}/{version}.npz"

    def put(self, weights: ModelWeights) -> str:
        """Upload ``weights`` and their manifest; return the artifact URI."""
        uri = self.artifact_uri(weights.version)
        with tempfile.TemporaryDirectory(prefix="bot4-model-") as folder:
            local = Path(folder) / f"{weights.version}.npz"
            manifest = weights.save(local)
            for path, target in ((local, uri), (manifest, uri + ".json")):
                self._upload(path, target)
        return uri

    def fetch(self, uri: str, *, sha256: str) -> ModelWeights:
        """Download an artifact and verify it against the registry's ``sha256``.

        Raises:
            ModelArtifactError: unreachable, malformed, or the checksum does not match.
        """
        with tempfile.TemporaryDirectory(prefix="bot4-model-") as folder:
            local = Path(folder) / Path(urlparse(uri).path).name
            for source, path in ((uri, local), (uri + ".json", Path(str(local) + ".json"))):
                self._download(source, path)
            weights = ModelWeights.load(local)
        if weights.checksum() != sha256:
            raise ModelArtifactError(
                f"{uri}: checksum mismatch: the registry says {sha256}, the artifact's"
                f" weights hash to {weights.checksum()} (corrupted or replaced)"
            )
        return weights

    def _upload(self, path: Path, uri: str) -> None:
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            target = Path(parsed.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            return
        self._s3().upload_file(str(path), parsed.netloc, parsed.path.lstrip("/"))

    def _download(self, uri: str, path: Path) -> None:
        parsed = urlparse(uri)
        try:
            if parsed.scheme == "file":
                shutil.copyfile(parsed.path, path)
            else:
                self._s3().download_file(parsed.netloc, parsed.path.lstrip("/"), str(path))
        except Exception as e:  # botocore's and OSError's trees: one refusal for the caller
            raise ModelArtifactError(f"{uri}: cannot download ({type(e).__name__}: {e})") from e

    def _s3(self) -> Any:
        if self.client is None:
            raise ModelArtifactError(f"{self.uri}: an s3:// store needs an S3 client")
        return self.client


def bucket_of(uri: str) -> str | None:
    """Return the bucket of an ``s3://`` URI (None for ``file://``)."""
    parsed = urlparse(uri)
    return parsed.netloc if parsed.scheme == "s3" else None
