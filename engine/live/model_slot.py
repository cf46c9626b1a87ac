"""The live engine's model: the active weights, a candidate beside them, and hot swaps.

The inference kernel reads the model from the engine's state arena (``mv``, ``w1``).
Every method here runs on the engine loop, as does :meth:`LiveDecider.decide`, so a
change made here lands *between* two decision batches: no event is ever decided half by
one model and half by another, and nothing restarts. After a change every symbol's
cached prediction is marked stale, so the next event of each symbol uses the new model.

A candidate moves through:

- **shadow**: after each batch it is scored on the same feature rows as the active model
  (the compiled inference kernel, timed); agreement, prediction drift and latency are kept.
- **canary** (linear models): the kernel runs :func:`~engine.models.artifact.blend`, so
  the candidate carries ``fraction`` of the prediction that prices every quote. Scoring
  goes on against the active model alone.
- **promote**: the candidate becomes the active model; the previous one is kept in memory
  so a failed bake swaps back without fetching anything.

``status`` is read from the safety thread: the statistics sit behind a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Final, Literal

import numpy as np

from engine.kernels.layout import PK_HEADER, PK_MODEL_KIND, SF_MID, SI_PRED_FRESH, SI_VALID
from engine.kernels.model_nb import MODEL_KIND_NAMES, MODEL_LINEAR, predict
from engine.models.artifact import ModelArtifactError, ModelWeights, blend
from engine.replay.state import EngineState

Mode = Literal["idle", "shadow", "canary"]
LATENCY_WINDOW: Final = 4096
AGREE_TOLERANCE_TICKS: Final = 0.05  # two near-zero predictions agree whatever their signs


class _Scorer:
    """A model's arrays in the kernel's layout, ready for the compiled ``predict``."""

    def __init__(self, weights: ModelWeights) -> None:
        self.kind, self.mv, self.w1, self.scratch = weights.kernel_arrays()

    def __call__(self, x: np.ndarray) -> float:
        return float(predict(self.kind, x, self.mv, self.w1, self.scratch))


class _Stats:
    """Agreement, drift and candidate latency since the current phase began."""

    def __init__(self) -> None:
        self.samples = 0
        self.agreed = 0
        self.drift_sum = 0.0
        self.reference_sum = 0.0  # sum of |active prediction|: drift relative to it
        self.latency_ns: deque[int] = deque(maxlen=LATENCY_WINDOW)

    def as_json(self) -> dict[str, object]:
        lat = np.array(self.latency_ns, dtype=np.float64)
        return {
            "samples": self.samples,
            "agreement": None if not self.samples else round(self.agreed / self.samples, 4),
            "mean_abs_drift_ticks": None
            if not self.samples
            else round(self.drift_sum / self.samples, 6),
            "relative_drift": None
            if self.reference_sum <= 0.0
            else round(self.drift_sum / self.reference_sum, 6),
            "latency_p50_us": None
            if not lat.size
            else round(float(np.percentile(lat, 50)) / 1e3, 3),
            "latency_p99_us": None
            if not lat.size
            else round(float(np.percentile(lat, 99)) / 1e3, 3),
        }


class ModelSlot:
    """The model the engine's kernel runs, and the candidate under evaluation."""

    def __init__(self, state: EngineState, active: ModelWeights) -> None:
        self._state = state
        self.active = active
        self.previous: ModelWeights | None = None
        self.candidate: ModelWeights | None = None
        self.mode: Mode = "idle"
        self.fraction = 0.0
        self._active_scorer = _Scorer(active)
        self._candidate_scorer: _Scorer | None = None
        self._stats = _Stats()
        self._lock = threading.Lock()
        self.last_change: dict[str, object] | None = None

    # --- what the operator asks ----------------------------------------------------------
    def check_fits(self, weights: ModelWeights) -> None:
        """Refuse weights the running kernel's arrays cannot hold without a restart.

        A linear model fits any engine; an MLP needs at most the engine's hidden units
        (unused units are zero and add exactly nothing).

        Raises:
            ModelArtifactError: an MLP wider than the engine's arena.
        """
        hidden = weights.w1.shape[0]
        room = self._state.w1.shape[0]
        if weights.kind != MODEL_LINEAR and hidden > room:
            raise ModelArtifactError(
                f"model {weights.version} is an MLP with {hidden} hidden units; this engine"
                f" holds at most {room}: deploy a release that names it instead"
            )

    def shadow(self, weights: ModelWeights) -> None:
        """Score ``weights`` beside the active model from the next batch on."""
        self.check_fits(weights)
        if self.mode == "canary":
            self._install(self.active)
        self.candidate = weights
        self._candidate_scorer = _Scorer(weights)
        self.mode = "shadow"
        self.fraction = 0.0
        self._reset()

    def canary(self, version: str, fraction: float) -> ModelWeights:
        """Let the shadowed candidate carry ``fraction`` of the live prediction.

        Raises:
            ValueError: ``version`` is not the candidate.
            ModelArtifactError: not linear models, or a bad fraction.
        """
        candidate = self._candidate(version)
        live = self.active
        if fraction > 0.0:  # 0: a canary of the gates only, the kernel unchanged
            live = blend(self.active, candidate, fraction)
            self._install(live)
        self.mode = "canary"
        self.fraction = fraction
        self._reset()
        return live

    def promote(self, version: str) -> ModelWeights:
        """Make the candidate the active model; return the model it replaced.

        Raises:
            ValueError: ``version`` is not the candidate.
        """
        candidate = self._candidate(version)
        replaced = self.active
        self.activate(candidate)
        return replaced

    def activate(self, weights: ModelWeights) -> None:
        """Run ``weights`` from the next event on; the current model becomes ``previous``."""
        self.check_fits(weights)
        self.previous = self.active
        self.active = weights
        self._active_scorer = _Scorer(weights)
        self._install(weights)
        self.candidate = None
        self._candidate_scorer = None
        self.mode = "idle"
        self.fraction = 0.0

    def abort(self, version: str | None) -> str | None:
        """Undo what ``version`` reached; return what was undone (None: nothing to undo).

        ``shadow``/``canary``: the candidate is dropped (the kernel back on the active
        model). ``promoted``: ``version`` is active, the previous model returns.
        """
        if self.candidate is not None and version in (None, self.candidate.version):
            undone = self.mode
            if self.mode == "canary":
                self._install(self.active)
            self.candidate = None
            self._candidate_scorer = None
            self.mode = "idle"
            self.fraction = 0.0
            return undone
        if version is not None and self.active.version == version and self.previous is not None:
            self.activate(self.previous)
            self.previous = None
            return "promoted"
        return None

    # --- after every batch ---------------------------------------------------------------
    def score(self) -> None:
        """Score the candidate beside the active model on each symbol's current features."""
        scorer = self._candidate_scorer
        if scorer is None:
            return
        st = self._state
        for s in range(st.features.shape[0]):
            if st.sym_i[s, SI_VALID] != 1 or st.sym_f[s, SF_MID] <= 0.0:
                continue
            x = st.features[s]
            reference = self._active_scorer(x)
            started = time.perf_counter_ns()
            out = scorer(x)
            elapsed = time.perf_counter_ns() - started
            agree = abs(out - reference) <= AGREE_TOLERANCE_TICKS or (out > 0) == (reference > 0)
            with self._lock:
                self._stats.samples += 1
                self._stats.agreed += int(agree)
                self._stats.drift_sum += abs(out - reference)
                self._stats.reference_sum += abs(reference)
                self._stats.latency_ns.append(elapsed)

    def status(self) -> dict[str, object]:
        """Return the model section of ``/status`` (thread-safe)."""
        with self._lock:
            stats = self._stats.as_json()
        candidate = self.candidate
        previous = self.previous
        return {
            "active": self.active.version,
            "kind": MODEL_KIND_NAMES[self.active.kind],
            "candidate": None if candidate is None else candidate.version,
            "mode": self.mode,
            "canary_fraction": self.fraction,
            "previous": None if previous is None else previous.version,
            "shadow": stats,
            "last_change": self.last_change,
        }

    # --- inside -----------------------------------------------------------------------------
    def _candidate(self, version: str) -> ModelWeights:
        if self.candidate is None or self.candidate.version != version:
            have = None if self.candidate is None else self.candidate.version
            raise ValueError(
                f"model {version} is not the candidate (candidate: {have}); shadow it first"
            )
        return self.candidate

    def _install(self, weights: ModelWeights) -> None:
        kind, mv, w1, _ = weights.kernel_arrays()
        st = self._state
        st.mv[:] = 0.0  # a smaller model leaves zeros: unused units and weights add nothing
        st.mv[:, : mv.shape[1]] = mv
        st.w1[:] = 0.0
        st.w1[: w1.shape[0]] = w1
        st.arena[: PK_HEADER * 8].view(np.int64)[PK_MODEL_KIND] = kind  # read on every call
        st.model_kind = kind
        st.sym_i[:, SI_PRED_FRESH] = 0  # every symbol predicts again with the new weights

    def _reset(self) -> None:
        with self._lock:
            self._stats = _Stats()
