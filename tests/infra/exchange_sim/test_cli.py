"""The simulator's CLI actions against a running simulator."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot4.settings import ExchangeSettings, Settings
from infra.exchange_sim.cli import configure_parser, run_command
from tests.stubs.exchange_sim import ADMIN_TOKEN, ThreadedSim, sim_config
from tests.stubs.ports import free_ports


def json_out(out: str) -> dict[str, object]:
    # The in-process server's own log lines share stdout in tests; the document starts at "{".
    return dict(json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") else out))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with ThreadedSim(sim_config()) as sim:
        yield Settings(
            home=Path("/tmp/unused-bot4-home"),
            exchange=ExchangeSettings(port=sim.config.port, sim_admin_token=ADMIN_TOKEN),  # type: ignore[arg-type]
        )


def test_fault_set_list_clear_round_trip(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_command(parse(["fault", "set", "latency", "--param", "ms=5", "--json"]), settings) == 0
    )
    assert json_out(capsys.readouterr().out)["active"] == [{"name": "latency", "params": {"ms": 5}}]
    assert run_command(parse(["fault", "list"]), settings) == 0
    assert "latency ms=5" in capsys.readouterr().out
    assert run_command(parse(["fault", "clear", "--all", "--json"]), settings) == 0
    assert json_out(capsys.readouterr().out)["cleared"] == ["latency"]


def test_bad_fault_input_exits_2_with_a_message(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(parse(["fault", "set", "latency", "--param", "ms=-1"]), settings) == 2
    assert "ms" in capsys.readouterr().err
    assert run_command(parse(["fault", "set", "latency", "--param", "oops"]), settings) == 2
    assert run_command(parse(["fault", "clear"]), settings) == 2
    assert "NAME or --all" in capsys.readouterr().err


def test_unreachable_simulator_exits_1_naming_the_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_ports(1)[0]
    settings = Settings(exchange=ExchangeSettings(port=port))
    assert run_command(parse(["fault", "list"]), settings) == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
