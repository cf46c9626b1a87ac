"""ModelSlot on a real kernel state: shadow scoring, canary blend, hot swap, abort."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.data.format import EventFile
from engine.data.generator import generate
from engine.kernels.layout import P_LIVE, SF_PREDICTION, SI_PRED_FRESH
from engine.kernels.model_nb import MODEL_MLP
from engine.live.model_slot import ModelSlot
from engine.models.artifact import ModelArtifactError, ModelWeights, default_weights
from engine.replay.config import ReplayConfig
from engine.replay.state import EngineState


def warm_state(tmp_path: Path, weights: ModelWeights) -> tuple[EngineState, np.ndarray]:
    """A state that decided the first half of a generated file; the rest is returned."""
    path = tmp_path / "events.npy"
    header = generate(path, events=20_000, seed=5)
    events = EventFile.open(path).read_all()
    state = EngineState.create(
        symbols=header.symbols,
        tick_size=header.tick_size,
        lot_size=header.lot_size,
        config=ReplayConfig(),
        weights=weights,
    )
    state.params[P_LIVE] = 1.0
    state.run(events, 0, 10_000)
    return state, events[10_000:]


def scaled(weights: ModelWeights, factor: float, version: str) -> ModelWeights:
    return replace(weights, version=version, w2=weights.w2 * factor, b2=weights.b2 * factor)


def test_shadow_scores_agreement_drift_and_latency_without_touching_the_kernel(
    tmp_path: Path,
) -> None:
    active = default_weights()
    state, _ = warm_state(tmp_path, active)
    slot = ModelSlot(state, active)
    mv_before = state.mv.copy()

    slot.shadow(scaled(active, -1.0, "negated"))
    slot.score()
    slot.score()
    shadow = slot.status()["shadow"]

    assert isinstance(shadow, dict)
    assert shadow["samples"] == 2 * len(state.symbols)
    agreement, latency = shadow["agreement"], shadow["latency_p99_us"]
    assert isinstance(agreement, float)
    assert agreement < 0.5
    assert shadow["relative_drift"] == pytest.approx(2.0)
    assert isinstance(latency, float)
    assert latency > 0
    assert np.array_equal(state.mv, mv_before)  # shadow never drives the kernel


def test_canary_blend_predicts_the_weighted_mix_of_both_models(tmp_path: Path) -> None:
    active = default_weights()
    candidate = scaled(active, 3.0, "triple")
    state, rest = warm_state(tmp_path, active)
    slot = ModelSlot(state, active)
    slot.shadow(candidate)

    slot.canary("triple", 0.25)
    state.run(rest, 0, rest.shape[0])

    s = 0
    assert state.sym_i[s, SI_PRED_FRESH] == 1
    x = state.features[s]
    z = (x - active.mean) / active.scale
    expected = 0.75 * float(active.w2 @ z) + 0.25 * float(candidate.w2 @ z)
    assert state.sym_f[s, SF_PREDICTION] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert slot.status()["mode"] == "canary"


def test_promote_swaps_the_kernel_model_and_abort_swaps_the_previous_back(
    tmp_path: Path,
) -> None:
    active = default_weights()
    state, _ = warm_state(tmp_path, active)
    slot = ModelSlot(state, active)
    slot.shadow(scaled(active, 2.0, "double"))
    before = state.mv.copy()

    replaced = slot.promote("double")

    assert replaced.version == active.version
    assert slot.active.version == "double"
    assert np.allclose(state.mv[3, :7], 2.0 * before[3, :7])  # MV_W2 row doubled
    assert not state.sym_i[:, SI_PRED_FRESH].any()  # every symbol predicts again
    assert slot.abort("double") == "promoted"
    assert slot.active.version == active.version
    assert np.array_equal(state.mv, before)
    assert slot.abort("double") is None  # idempotent


def test_a_candidate_of_another_kind_or_an_unknown_version_is_refused(tmp_path: Path) -> None:
    active = default_weights()
    state, _ = warm_state(tmp_path, active)
    slot = ModelSlot(state, active)

    with pytest.raises(ModelArtifactError, match="deploy a release"):
        slot.shadow(default_weights(MODEL_MLP))
    with pytest.raises(ValueError, match="not the candidate"):
        slot.promote("nope")
    assert slot.active.version == active.version


def test_an_mlp_engine_hot_swaps_to_a_linear_model_and_back_exactly(tmp_path: Path) -> None:
    mlp = default_weights(MODEL_MLP)
    state, rest = warm_state(tmp_path, mlp)
    slot = ModelSlot(state, mlp)
    linear = scaled(default_weights(), 1.0, "trained-linear")
    (tmp_path / "reference").mkdir()
    reference, _ = warm_state(tmp_path / "reference", mlp)  # the same state, never swapped

    slot.shadow(linear)
    slot.promote("trained-linear")
    state.run(rest, 0, 2_000)
    x = state.features[0]
    z = (x - linear.mean) / linear.scale
    swapped_prediction = float(state.sym_f[0, SF_PREDICTION])
    slot.abort("trained-linear")
    state.run(rest, 2_000, 4_000)
    reference.run(rest, 0, 4_000)

    assert swapped_prediction == pytest.approx(float(linear.w2 @ z), rel=1e-9, abs=1e-12)
    assert slot.active.version == mlp.version
    assert state.sym_f[0, SF_PREDICTION] == reference.sym_f[0, SF_PREDICTION]
