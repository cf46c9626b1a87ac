"""Builders for stack settings on free ports in a throw-away BOT4_HOME."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bot4.settings import (
    ApiSettings,
    DatabaseSettings,
    EngineSettings,
    ExchangeSettings,
    FlowsSettings,
    PrefectSettings,
    PrometheusSettings,
    Settings,
    StorageSettings,
    TemporalSettings,
    WorkerSettings,
)
from tests.stubs.ports import free_ports


def make_home() -> Path:
    """Create a state folder the unprivileged PostgreSQL user can reach.

    pytest's tmp_path lives under a 0700 folder owned by root; PostgreSQL, run as another
    user, could not enter it.
    """
    home = Path(tempfile.mkdtemp(prefix="bot4-test-", dir="/tmp"))
    home.chmod(0o755)
    return home


def remove_home(home: Path) -> None:
    """Delete a state folder made by :func:`make_home`."""
    shutil.rmtree(home, ignore_errors=True)


def stack_settings(home: Path) -> Settings:
    """Return settings for a whole local stack on free ports under ``home``."""
    ports = free_ports(13)
    pg_a, pg_b, temporal, temporal_ui, prefect, s3, exchange, api, worker, flows = ports[:10]
    # engines are not started by the stack, but its Prometheus scrapes their ports
    blue, green, prometheus = ports[10:]
    return Settings(
        home=home,
        db=DatabaseSettings(primary_port=pg_a, standby_port=pg_b),
        temporal=TemporalSettings(port=temporal, ui_port=temporal_ui),
        prefect=PrefectSettings(port=prefect),
        storage=StorageSettings(port=s3),
        exchange=ExchangeSettings(port=exchange),
        api=ApiSettings(port=api),
        worker=WorkerSettings(metrics_port=worker),
        flows=FlowsSettings(metrics_port=flows),
        engine=EngineSettings(blue_control_port=blue, green_control_port=green),
        prometheus=PrometheusSettings(port=prometheus),
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the environment that makes the CLI build the same ``settings``."""
    return {**os.environ, **settings.to_env()}
