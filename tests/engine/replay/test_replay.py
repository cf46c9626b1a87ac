from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.format import EventFile
from engine.data.generator import generate
from engine.dtypes import BOOK_DELTA, BUY, EVENT_DTYPE, SELL, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import py_func
from engine.kernels.layout import G_FILLS
from engine.kernels.replay_nb import replay_chunk
from engine.kernels.risk_nb import RL_MULTIPLIER
from engine.models.artifact import default_weights
from engine.replay.cli import (
    configure_data_parser,
    configure_replay_parser,
    run_data_command,
    run_replay_command,
)
from engine.replay.config import ReplayConfig, RiskConfig
from engine.replay.runner import replay_file
from engine.replay.state import EngineState
from engine.strategy.config import MarketMakerConfig


@pytest.fixture(scope="module")
def event_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ev") / "events.npy"
    generate(path, events=60_000, seed=11)
    return path


def _state(header: Any, config: Any, **kw: Any) -> EngineState:
    return EngineState.create(
        symbols=header.symbols,
        tick_size=header.tick_size,
        lot_size=header.lot_size,
        config=config,
        weights=default_weights(),
        **kw,
    )


def test_replay_of_a_fixed_seed_is_deterministic(event_file):
    s1, a = replay_file(event_file, fill_capacity=100_000)
    s2, b = replay_file(event_file, fill_capacity=100_000)
    assert a == b
    np.testing.assert_array_equal(s1.logged_fills(), s2.logged_fills())
    assert a["orders"] > 0
    assert a["fills"] > 0


def test_position_equals_the_sum_of_fills(event_file):
    state, summary = replay_file(event_file, fill_capacity=100_000)
    fills = state.logged_fills()
    assert len(fills) == summary["fills"]
    for s in range(len(state.symbols)):
        mine = fills[fills["symbol"] == s]
        assert int(np.sum(mine["side"].astype(np.int64) * mine["qty"])) == state.positions[s]["qty"]


def test_chunked_replay_equals_one_call_and_py_func(event_file):
    events = EventFile.open(event_file).read_all()[:3_000]
    header = EventFile.open(event_file).header
    config = ReplayConfig()
    whole = _state(header, config, fill_capacity=1000)
    whole.run(events)
    chunked = _state(header, config, fill_capacity=1000)
    for lo in range(0, 3_000, 7):
        chunked.run(events, lo, min(lo + 7, 3_000))
    interpreted = _state(header, config, fill_capacity=1000)
    py_func(replay_chunk)(events, 0, 3_000, *interpreted.kernel_args())
    assert whole.summary() == chunked.summary() == interpreted.summary()
    np.testing.assert_array_equal(whole.positions, interpreted.positions)


def _random_events(draw_ops: Any) -> np.ndarray:
    """Build a valid two-symbol stream: snapshots, then the drawn deltas and trades."""
    rows = []
    seq = [0, 0]
    ts = 1_000_000_000

    def add(sym: int, kind: int, side: int, price: int, qty: int) -> None:
        nonlocal ts
        seq[sym] += 1
        ts += 1_000_000
        rows.append((ts, seq[sym], price, qty, sym, kind, side, 0))

    for sym in (0, 1):
        add(sym, SNAPSHOT_BEGIN, 0, 0, 0)
        for i in range(3):
            add(sym, BOOK_DELTA, BUY, 10_000 - i, 50)
            add(sym, BOOK_DELTA, SELL, 10_001 + i, 50)
        add(sym, SNAPSHOT_END, 0, 0, 0)
    for sym, kind, side, offset, qty in draw_ops:
        price = 10_000 + offset
        add(sym, kind, side, price, qty if kind == BOOK_DELTA else max(qty, 1))
    return np.array(rows, dtype=EVENT_DTYPE)


OPS = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.sampled_from([BOOK_DELTA, BOOK_DELTA, TRADE]),
        st.sampled_from([BUY, SELL]),
        st.integers(-4, 5),
        st.integers(0, 60),
    ),
    max_size=150,
)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_notional_and_position_limits_hold_over_any_event_sequence(ops):
    events = _random_events(ops)
    risk = RiskConfig(
        max_position_lots=7,
        max_order_notional=25.0,
        max_symbol_notional=60.0,
        max_depth_fraction=1.0,
        orders_per_second=1e6,
        order_burst=1e6,
    )
    config = ReplayConfig(
        risk=risk,
        strategy=MarketMakerConfig(
            quote_lots=3,
            taker_lots=3,
            min_taker_edge_ticks=0.0,
            retry_after_deny_ns=0,
            taker_cooldown_ns=0,
        ),
    )
    header_ticks = (0.1, 0.1)
    state = EngineState.create(
        symbols=("A", "B"),
        tick_size=header_ticks,
        lot_size=(0.001, 0.001),
        config=config,
        weights=default_weights(),
        fill_capacity=10_000,
        intent_capacity=10_000,
    )
    for k in range(events.shape[0]):
        state.run(events, k, k + 1)
        assert np.all(np.abs(state.positions["qty"]) <= risk.max_position_lots)
    intents = state.logged_intents()
    accepted = intents[intents["deny_reason"] == 0]
    mult = state.limits[0, RL_MULTIPLIER]
    assert np.all(accepted["price"] * accepted["qty"] * mult <= risk.max_order_notional)
    fills = state.logged_fills()
    assert len(fills) == state.g[G_FILLS]
    for s in (0, 1):
        mine = fills[fills["symbol"] == s]
        assert int(np.sum(mine["side"].astype(np.int64) * mine["qty"])) == state.positions[s]["qty"]


def test_cli_generate_then_replay(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_data_parser(parser)
    out = tmp_path / "cli.npy"
    args = parser.parse_args(
        ["generate", "--events", "5000", "--seed", "2", "--out", str(out), "--json"]
    )
    assert run_data_command(args, None) == 0
    capsys.readouterr()
    rparser = argparse.ArgumentParser()
    configure_replay_parser(rparser)
    assert run_replay_command(rparser.parse_args(["--events", str(out), "--json"]), None) == 0
    assert '"pnl"' in capsys.readouterr().out


def test_cli_refuses_bad_input_with_exit_2(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_data_parser(parser)
    args = parser.parse_args(["generate", "--events", "0", "--out", str(tmp_path / "x.npy")])
    assert run_data_command(args, None) == 2
    assert "--events" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(3))
    rparser = argparse.ArgumentParser()
    configure_replay_parser(rparser)
    assert run_replay_command(rparser.parse_args(["--events", str(bad)]), None) == 2
    assert "header file is missing" in capsys.readouterr().err
