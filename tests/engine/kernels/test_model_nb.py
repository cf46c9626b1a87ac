from __future__ import annotations

import numpy as np
import pytest

from engine.kernels._jit import py_func
from engine.kernels.layout import N_FEATURES
from engine.kernels.model_nb import MODEL_LINEAR, MODEL_MLP, fast_tanh, predict
from engine.models.artifact import ModelArtifactError, ModelWeights, default_weights

PREDICT = [pytest.param(predict, id="compiled"), pytest.param(py_func(predict), id="py_func")]


@pytest.mark.parametrize("fn", PREDICT)
def test_linear_model_is_a_dot_product_of_standardised_features(fn):
    w = default_weights(MODEL_LINEAR)
    kind, mv, w1, scratch = w.kernel_arrays()
    x = np.linspace(-1.0, 1.0, N_FEATURES)
    expected = float(np.dot(w.w2, (x - w.mean) / w.scale) + w.b2)
    assert fn(kind, x, mv, w1, scratch) == pytest.approx(expected)


@pytest.mark.parametrize("fn", PREDICT)
def test_mlp_matches_numpy_reference(fn):
    w = default_weights(MODEL_MLP, hidden=8)
    kind, mv, w1, scratch = w.kernel_arrays()
    x = np.linspace(-1.0, 1.0, N_FEATURES)
    z = (x - w.mean) / w.scale
    hidden = np.array([py_func(fast_tanh)(v) for v in w.w1 @ z + w.b1])
    assert fn(kind, x, mv, w1, scratch) == pytest.approx(float(w.w2 @ hidden + w.b2))


def test_fast_tanh_is_close_to_tanh():
    xs = np.linspace(-6, 6, 241)
    approx = np.array([fast_tanh(v) for v in xs])
    assert np.max(np.abs(approx - np.tanh(xs))) < 0.03


def test_artifact_round_trips_and_detects_tampering(tmp_path):
    path = tmp_path / "model.npz"
    weights = default_weights(MODEL_MLP)
    weights.save(path)
    loaded = ModelWeights.load(path)
    assert loaded.checksum() == weights.checksum()
    assert loaded.version == weights.version
    manifest = path.with_name("model.npz.json")
    manifest.write_text(manifest.read_text().replace(weights.checksum(), "0" * 64))
    with pytest.raises(ModelArtifactError, match="checksum mismatch"):
        ModelWeights.load(path)
