"""Train a linear model on the engine's own features over an event file (ridge, NumPy).

Features come from the engine's kernels: the event file is replayed through
:class:`~engine.replay.state.EngineState` (fill model off) in steps of ``step`` events,
and after each step every symbol with a valid book gives one row (its feature vector and
its mid). The target is that symbol's mid ``horizon`` rows later minus its mid now, in
ticks: what the quoting kernel adds to fair value. The fit is ridge regression in closed
form on standardised features; the last ``holdout`` share of rows (in time) is held out.
Same file, same options: the same weights, bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.format import EventFile
from engine.kernels.layout import FEATURE_NAMES, N_FEATURES, P_LIVE, SF_MID, SI_VALID
from engine.kernels.model_nb import MODEL_LINEAR
from engine.models.artifact import ModelArtifactError, ModelWeights, default_weights
from engine.replay.config import ReplayConfig
from engine.replay.state import EngineState


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainOptions:
    """How to fit.

    Attributes:
        step: events between two samples (>= 1).
        horizon: samples ahead the target looks (>= 1).
        ridge: L2 penalty on the standardised weights (>= 0).
        holdout: share of the newest samples kept out of the fit (0 <= x < 1).
    """

    step: int = 50
    horizon: int = 5
    ridge: float = 1.0
    holdout: float = 0.2

    def __post_init__(self) -> None:
        if self.step < 1 or self.horizon < 1:
            raise ValueError(f"step and horizon must be >= 1 (got {self.step}, {self.horizon})")
        if self.ridge < 0 or not 0.0 <= self.holdout < 1.0:
            raise ValueError(
                f"ridge must be >= 0 and holdout in [0, 1) (got {self.ridge}, {self.holdout})"
            )


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """The fitted weights and what the registry records about them."""

    weights: ModelWeights
    training: dict[str, Any]
    metrics: dict[str, Any]


def file_fingerprint(path: Path) -> str:
    """Return the SHA-256 of the event file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def feature_rows(
    path: Path, *, step: int, progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(features[n, F], mids[n], symbols[n])`` sampled every ``step`` events.

    Raises:
        EventFileError: the file is missing or malformed.
    """
    events = EventFile.open(Path(path))
    header = events.header
    state = EngineState.create(
        symbols=header.symbols,
        tick_size=header.tick_size,
        lot_size=header.lot_size,
        config=ReplayConfig(),
        weights=default_weights(),
    )
    state.params[P_LIVE] = 1.0  # features only: no simulated fills, no fill log
    rows: list[np.ndarray] = []
    mids: list[float] = []
    symbols: list[int] = []
    n = len(header.symbols)
    for start, chunk in events.chunks(step * 1000):
        for lo in range(0, chunk.shape[0], step):
            hi = min(lo + step, chunk.shape[0])
            state.run(chunk, lo, hi)
            for s in range(n):
                if state.sym_i[s, SI_VALID] == 1 and state.sym_f[s, SF_MID] > 0.0:
                    rows.append(state.features[s].copy())
                    mids.append(float(state.sym_f[s, SF_MID]))
                    symbols.append(s)
        if progress is not None:
            progress(start + chunk.shape[0], events.count)
    if not rows:
        return np.zeros((0, N_FEATURES)), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.array(rows), np.array(mids), np.array(symbols, dtype=np.int64)


def targets(mids: np.ndarray, symbols: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(row index, future mid move)`` for rows that have a row ``horizon`` ahead."""
    index: list[np.ndarray] = []
    moves: list[np.ndarray] = []
    for s in np.unique(symbols):
        own = np.flatnonzero(symbols == s)
        if own.shape[0] > horizon:
            index.append(own[:-horizon])
            moves.append(mids[own[horizon:]] - mids[own[:-horizon]])
    if not index:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    order = np.argsort(np.concatenate(index), kind="stable")
    return np.concatenate(index)[order], np.concatenate(moves)[order]


def _metrics(z: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> dict[str, Any]:
    if y.shape[0] == 0:
        return {"samples": 0, "mse": None, "r2": None, "hit_rate": None}
    pred = z @ w + b
    mse = float(np.mean((pred - y) ** 2))
    var = float(np.var(y))
    moved = y != 0
    hits = float(np.mean(np.sign(pred[moved]) == np.sign(y[moved]))) if moved.any() else None
    return {
        "samples": int(y.shape[0]),
        "mse": round(mse, 6),
        "r2": None if var == 0 else round(1.0 - mse / var, 6),
        "hit_rate": None if hits is None else round(hits, 4),
    }


def train_linear(
    path: Path,
    *,
    version: str,
    options: TrainOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Fit a ridge model on ``path`` and return it with its training record and metrics.

    Raises:
        EventFileError: the file is missing or malformed.
        ModelArtifactError: too few samples to fit (a longer file or a smaller step).
    """
    options = options or TrainOptions()
    x_all, mids, symbols = feature_rows(path, step=options.step, progress=progress)
    index, y = targets(mids, symbols, options.horizon)
    if y.shape[0] < 4 * N_FEATURES:
        raise ModelArtifactError(
            f"{path}: {y.shape[0]} samples with a target, need at least {4 * N_FEATURES}:"
            " use a longer event file or a smaller --step"
        )
    x = x_all[index]
    split = round(y.shape[0] * (1.0 - options.holdout))
    fit_x, fit_y = x[:split], y[:split]
    mean = fit_x.mean(axis=0)
    std = fit_x.std(axis=0)
    scale = np.where(std > 1e-12, std, 1.0)
    z = (fit_x - mean) / scale
    b = float(fit_y.mean())
    gram = z.T @ z + options.ridge * np.eye(N_FEATURES)
    w = np.linalg.solve(gram, z.T @ (fit_y - b))
    weights = ModelWeights(
        version=version,
        kind=MODEL_LINEAR,
        mean=mean,
        scale=scale,
        w1=np.zeros((1, N_FEATURES)),
        b1=np.zeros(1),
        w2=w,
        b2=b,
    )
    weights.check_shapes(source=path)
    hold_z = (x[split:] - mean) / scale
    training = {
        "data": str(Path(path).resolve()),
        "data_sha256": file_fingerprint(path),
        "method": "ridge",
        "step_events": options.step,
        "horizon_samples": options.horizon,
        "ridge": options.ridge,
        "holdout": options.holdout,
        "target": "future mid move (ticks)",
    }
    metrics = {
        "in_sample": _metrics(z, fit_y, w, b),
        "holdout": _metrics(hold_z, y[split:], w, b),
        "weights": dict(zip(FEATURE_NAMES, (round(float(v), 6) for v in w), strict=True)),
    }
    return TrainResult(weights=weights, training=training, metrics=metrics)
