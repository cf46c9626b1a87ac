"""Release manifests: what a color runs, refused loudly when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.kernels.model_nb import MODEL_LINEAR
from engine.live.release import Release, ReleaseError
from engine.models.artifact import default_weights


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "release.json"
    path.write_text(json.dumps(document))
    return path


def test_manifest_sets_strategy_risk_and_model(tmp_path: Path) -> None:
    default_weights(MODEL_LINEAR).save(tmp_path / "linear.npz")
    path = write(tmp_path, {
        "version": "2026.11.27-1",
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "model": {"path": "linear.npz"},
        "strategy": {"quote_lots": 7},
        "risk": {"max_position_lots": 40},
        "fees": {"taker_fee_bps": 7.5},
        "position_tolerance_lots": 2,
    })  # fmt: skip
    release = Release.load(path)
    assert release.symbols == ("BTC/USDT", "ETH/USDT")
    assert release.config.strategy.quote_lots == 7
    assert release.config.risk.max_position_lots == 40
    assert release.config.fills.taker_fee_bps == 7.5
    assert release.model.version == "linear-v1"
    assert release.describe()["model_checksum"] == default_weights(MODEL_LINEAR).checksum()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"symbols": ["BTC/USDT"]}, "version"),
        ({"version": "v1", "symbols": []}, "symbols"),
        ({"version": "v1", "symbols": ["BTCUSDT"]}, "symbols"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "risks": {}}, "unknown keys"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "risk": {"max_lots": 1}}, "unknown risk"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "risk": {"order_burst": -1}}, "order_burst"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "strategy": {"quote_lots": 0}}, "quote_lots"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "model": {"builtin": "gpt"}}, "model.builtin"),
        ({"version": "v1", "symbols": ["BTC/USDT"], "model": {"path": "nope.npz"}}, "model"),
    ],
)
def test_bad_manifests_are_refused_naming_the_field(
    tmp_path: Path, document: object, message: str
) -> None:
    with pytest.raises(ReleaseError, match=message):
        Release.load(write(tmp_path, document))


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="not found"):
        Release.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReleaseError, match="not a readable JSON"):
        Release.load(bad)
