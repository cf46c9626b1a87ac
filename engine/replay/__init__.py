"""Replay: the engine kernels over an event file with a fill model."""

from engine.replay.config import FillModelConfig, PostTradeConfig, ReplayConfig, RiskConfig
from engine.replay.runner import replay_file
from engine.replay.state import EngineState

__all__ = [
    "EngineState",
    "FillModelConfig",
    "PostTradeConfig",
    "ReplayConfig",
    "RiskConfig",
    "replay_file",
]
