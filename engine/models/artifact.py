"""Model weights artifacts: a ``.npz`` of arrays plus a JSON manifest with a SHA-256 checksum.

An artifact ``NAME.npz`` holds ``mean``, ``scale`` (per feature), ``w1`` (hidden x features),
``b1`` (hidden), ``w2`` (features for a linear model, hidden for an MLP) and ``b2`` (1).
``NAME.npz.json`` records ``{"version", "kind", "features", "sha256"}`` where ``sha256`` is the
digest of the arrays' bytes in that order; loading refuses an artifact whose digest differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from engine.kernels.layout import (
    FEATURE_NAMES,
    MV_B1,
    MV_B2,
    MV_MEAN,
    MV_ROWS,
    MV_SCALE,
    MV_W2,
    N_FEATURES,
)
from engine.kernels.model_nb import MODEL_KIND_NAMES, MODEL_LINEAR, MODEL_MLP

_ARRAYS: Final = ("mean", "scale", "w1", "b1", "w2", "b2")


class ModelArtifactError(ValueError):
    """The artifact is missing, malformed or its checksum does not match."""


@dataclass(frozen=True, kw_only=True)
class ModelWeights:
    """One version of the model: kind, feature scaling and weights."""

    version: str
    kind: int  # MODEL_LINEAR or MODEL_MLP
    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float

    def checksum(self) -> str:
        """Return the SHA-256 of the weights in artifact order."""
        digest = hashlib.sha256()
        for array in (self.mean, self.scale, self.w1, self.b1, self.w2, np.array([self.b2])):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def kernel_arrays(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(kind, mv, w1, scratch)`` in the layout the inference kernel takes."""
        hidden = self.w1.shape[0]
        width = max(N_FEATURES, hidden)
        mv = np.zeros((MV_ROWS, width), dtype=np.float64)
        mv[MV_MEAN, :N_FEATURES] = self.mean
        mv[MV_SCALE, :N_FEATURES] = self.scale
        mv[MV_B1, :hidden] = self.b1
        mv[MV_W2, : self.w2.shape[0]] = self.w2
        mv[MV_B2, 0] = self.b2
        scratch = np.zeros(N_FEATURES + hidden, dtype=np.float64)
        return self.kind, mv, np.ascontiguousarray(self.w1, dtype=np.float64), scratch

    def save(self, path: Path) -> Path:
        """Write the artifact and its manifest; return the manifest path."""
        path = Path(path)
        arrays = dict(zip(_ARRAYS, self._arrays(), strict=True))
        with path.open("wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        manifest = path.with_name(path.name + ".json")
        manifest.write_text(
            json.dumps(
                {
                    "version": self.version,
                    "kind": MODEL_KIND_NAMES[self.kind],
                    "features": list(FEATURE_NAMES),
                    "sha256": self.checksum(),
                },
                indent=2,
            )
            + "\n"
        )
        return manifest

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.mean, self.scale, self.w1, self.b1, self.w2, np.array([self.b2]))

    @classmethod
    def load(cls, path: Path) -> ModelWeights:
        """Load an artifact and verify its checksum and shapes.

        Raises:
            ModelArtifactError: missing file, bad manifest, wrong shapes or checksum mismatch.
        """
        path = Path(path)
        manifest_path = path.with_name(path.name + ".json")
        try:
            manifest = json.loads(manifest_path.read_text())
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name], dtype=np.float64) for name in _ARRAYS}
        except (OSError, ValueError, KeyError) as e:
            raise ModelArtifactError(f"{path}: cannot read model artifact ({e})") from e
        if not isinstance(manifest, dict) or manifest.get("kind") not in MODEL_KIND_NAMES:
            raise ModelArtifactError(f"{manifest_path}: 'kind' must be one of {MODEL_KIND_NAMES}")
        if manifest.get("features") != list(FEATURE_NAMES):
            raise ModelArtifactError(
                f"{manifest_path}: features {manifest.get('features')} differ from the "
                f"engine's {list(FEATURE_NAMES)}"
            )
        weights = cls(
            version=str(manifest.get("version")),
            kind=MODEL_KIND_NAMES.index(manifest["kind"]),
            mean=arrays["mean"],
            scale=arrays["scale"],
            w1=arrays["w1"],
            b1=arrays["b1"],
            w2=arrays["w2"],
            b2=float(arrays["b2"][0]),
        )
        weights.check_shapes(source=path)
        if weights.checksum() != manifest.get("sha256"):
            raise ModelArtifactError(
                f"{path}: checksum mismatch: manifest says {manifest.get('sha256')}, "
                f"weights hash to {weights.checksum()}"
            )
        return weights

    def check_shapes(self, *, source: Path | str = "weights") -> None:
        """Check array shapes and that scales are positive.

        Raises:
            ModelArtifactError: a shape or value is wrong.
        """
        hidden = self.w1.shape[0] if self.w1.ndim == 2 else -1
        width = N_FEATURES if self.kind == MODEL_LINEAR else hidden
        if (
            self.mean.shape != (N_FEATURES,)
            or self.scale.shape != (N_FEATURES,)
            or self.w1.ndim != 2
            or self.w1.shape[1] != N_FEATURES
            or self.b1.shape != (hidden,)
            or self.w2.shape != (width,)
        ):
            raise ModelArtifactError(
                f"{source}: weight shapes do not fit a {N_FEATURES}-feature model"
            )
        if not bool(np.all(self.scale > 0)) or not all(
            bool(np.all(np.isfinite(a))) for a in self._arrays()
        ):
            raise ModelArtifactError(f"{source}: scales must be > 0 and all weights finite")


def default_weights(kind: int = MODEL_LINEAR, *, hidden: int = 8, seed: int = 7) -> ModelWeights:
    """Return the built-in weights: trade flow and book imbalance predict the next move."""
    mean = np.zeros(N_FEATURES)
    scale = np.array([0.5, 0.5, 0.5, 2.0, 0.5, 1.0, 0.5])
    linear = np.array([0.3, 0.1, 0.1, 0.0, 0.05, 0.0, 0.2])
    if kind == MODEL_LINEAR:
        return ModelWeights(
            version="linear-v1", kind=MODEL_LINEAR, mean=mean, scale=scale,
            w1=np.zeros((1, N_FEATURES)), b1=np.zeros(1), w2=linear, b2=0.0,
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 0.3, size=(hidden, N_FEATURES))
    w1[0] = linear  # one unit carries the linear signal
    w2 = rng.normal(0.0, 0.1, size=hidden)
    w2[0] = 1.0
    return ModelWeights(
        version=f"mlp{hidden}-v1", kind=MODEL_MLP, mean=mean, scale=scale,
        w1=w1, b1=np.zeros(hidden), w2=w2, b2=0.0,
    )  # fmt: skip


def blend(active: ModelWeights, candidate: ModelWeights, fraction: float) -> ModelWeights:
    """Return one linear model whose output is ``fraction`` candidate + the rest active.

    Both linear models are affine in the raw features (``w2 . (x - mean) / scale + b2``),
    so their weighted sum is one affine model: written with ``mean = 0`` and ``scale = 1``
    it runs in the unchanged inference kernel. This is how a canary lets the candidate
    carry ``fraction`` of the prediction that prices every quote.

    Raises:
        ModelArtifactError: a model is not linear, or ``fraction`` is outside [0, 1].
    """
    if active.kind != MODEL_LINEAR or candidate.kind != MODEL_LINEAR:
        raise ModelArtifactError(
            "a canary blends two linear models; an MLP candidate goes from shadow to promote"
        )
    if not 0.0 <= fraction <= 1.0:
        raise ModelArtifactError(f"canary fraction must be in [0, 1] (got {fraction})")

    def affine(m: ModelWeights) -> tuple[np.ndarray, float]:
        slope = m.w2 / m.scale
        return slope, float(m.b2 - np.dot(slope, m.mean))

    slope_a, icpt_a = affine(active)
    slope_c, icpt_c = affine(candidate)
    return ModelWeights(
        version=f"{candidate.version}@{fraction:g}",
        kind=MODEL_LINEAR,
        mean=np.zeros(N_FEATURES),
        scale=np.ones(N_FEATURES),
        w1=np.zeros((1, N_FEATURES)),
        b1=np.zeros(1),
        w2=fraction * slope_c + (1.0 - fraction) * slope_a,
        b2=fraction * icpt_c + (1.0 - fraction) * icpt_a,
    )
