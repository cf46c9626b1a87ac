from __future__ import annotations

import pytest

from engine.kernels.layout import P_COLUMNS, P_QUOTE_QTY
from engine.replay.config import ReplayConfig
from engine.strategy.config import MarketMakerConfig


def test_manifest_section_sets_parameters():
    config = MarketMakerConfig.from_mapping({"quote_lots": 9, "prediction_weight": 0.5})
    params = ReplayConfig(strategy=config).params()
    assert params.shape == (P_COLUMNS,)
    assert params[P_QUOTE_QTY] == 9


def test_unknown_or_out_of_range_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown strategy parameters"):
        MarketMakerConfig.from_mapping({"quote_size": 1})
    with pytest.raises(ValueError, match="ewma_alpha"):
        MarketMakerConfig(ewma_alpha=2.0)
