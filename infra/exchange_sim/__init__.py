"""A local exchange that speaks Binance's spot API to ccxt, with a real matching engine.

REST under ``/api/v3``, websockets under ``/ws``, ``/stream/ws/<n>`` and ``/ws-api/v3``,
admin fault routes under ``/admin`` — one port. See :mod:`infra.exchange_sim.server`.
"""

from __future__ import annotations

from infra.exchange_sim.config import AccountSpec, SimConfig, SymbolSpec, config_from_settings
from infra.exchange_sim.engine import MatchingEngine, NewOrder
from infra.exchange_sim.server import RunningSim, build_app

__all__ = [
    "AccountSpec",
    "MatchingEngine",
    "NewOrder",
    "RunningSim",
    "SimConfig",
    "SymbolSpec",
    "build_app",
    "config_from_settings",
]
