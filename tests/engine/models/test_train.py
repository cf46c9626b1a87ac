"""Training a ridge model on the engine's own features over a generated event file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data.generator import generate
from engine.models.artifact import ModelArtifactError, ModelWeights
from engine.models.train import TrainOptions, file_fingerprint, train_linear


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "events.npy"
    generate(path, events=120_000, seed=11)
    return path


def test_training_is_deterministic_for_a_file_and_records_its_fingerprint(events: Path) -> None:
    first = train_linear(events, version="r1")
    second = train_linear(events, version="r1")

    assert first.weights.checksum() == second.weights.checksum()
    assert first.training["data_sha256"] == file_fingerprint(events)
    assert first.metrics["in_sample"]["samples"] > 1000
    assert first.metrics["holdout"]["samples"] > 100
    assert first.metrics["holdout"]["hit_rate"] > 0.5  # the features carry signal here


def test_trained_weights_save_and_load_and_another_ridge_changes_them(
    events: Path, tmp_path: Path
) -> None:
    result = train_linear(events, version="r2")
    other = train_linear(events, version="r2", options=TrainOptions(ridge=1e4))

    loaded = ModelWeights.load(result.weights.save(tmp_path / "r2.npz").with_suffix(""))

    assert loaded.checksum() == result.weights.checksum()
    assert not np.allclose(other.weights.w2, result.weights.w2)


def test_a_file_too_short_to_fit_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "short.npy"
    generate(path, events=500, seed=1)

    with pytest.raises(ModelArtifactError, match="longer event file or a smaller --step"):
        train_linear(path, version="r3")
