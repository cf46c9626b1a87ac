"""Replay an event file through the engine kernels, streaming it chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from engine.data.format import EventFile
from engine.models.artifact import ModelWeights, default_weights
from engine.replay.config import ReplayConfig
from engine.replay.state import EngineState

CHUNK_EVENTS: Final = 1 << 18


def replay_file(
    path: Path,
    *,
    config: ReplayConfig | None = None,
    weights: ModelWeights | None = None,
    progress: Callable[[int, int], None] | None = None,
    fill_capacity: int = 0,
    intent_capacity: int = 0,
) -> tuple[EngineState, dict[str, Any]]:
    """Open, validate and replay ``path``; return the final state and its summary.

    Raises:
        EventFileError: the file is malformed (nothing is replayed).
    """
    events = EventFile.open(path)
    header = events.header
    state = EngineState.create(
        symbols=header.symbols,
        tick_size=header.tick_size,
        lot_size=header.lot_size,
        config=config or ReplayConfig(),
        weights=weights or default_weights(),
        fill_capacity=fill_capacity,
        intent_capacity=intent_capacity,
    )
    for start, chunk in events.chunks(CHUNK_EVENTS):
        state.run(chunk)
        if progress is not None:
            progress(start + chunk.shape[0], events.count)
    return state, state.summary()
