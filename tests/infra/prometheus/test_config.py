"""The rendered configuration scrapes what the stack runs, where it runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs
from pydantic import SecretStr

from bot4.settings import ExchangeSettings, TemporalSettings
from infra.prometheus.config import RULES_DIR, stack_config
from tests.stubs.stack import stack_settings


def targets_by_job(config: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    return {
        job["job_name"]: [
            (target, static.get("labels", {}))
            for static in job["static_configs"]
            for target in static["targets"]
        ]
        for job in config["scrape_configs"]
    }


def test_every_component_is_scraped_at_its_configured_port(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)

    config = yaml.safe_load(stack_config(settings))

    engine = settings.engine
    assert targets_by_job(config) == {
        "prometheus": [(f"127.0.0.1:{settings.prometheus.port}", {})],
        "engine": [
            (f"127.0.0.1:{engine.blue_control_port}", {"color": "blue"}),
            (f"127.0.0.1:{engine.green_control_port}", {"color": "green"}),
        ],
        "worker": [(f"127.0.0.1:{settings.worker.metrics_port}", {})],
        "flows": [(f"127.0.0.1:{settings.flows.metrics_port}", {})],
        "api": [(f"127.0.0.1:{settings.api.port}", {})],
        "exchange-sim": [(f"127.0.0.1:{settings.exchange.port}", {})],
    }
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["evaluation_interval"] == "2s"
    assert config["rule_files"] == [str(RULES_DIR / "*.yml")]


def test_components_running_elsewhere_are_not_scraped_by_the_local_stack(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path).model_copy(
        update={
            "temporal": TemporalSettings(address="temporal.internal:7233"),
            "exchange": ExchangeSettings(simulator=False, api_key=SecretStr("k")),
            "api_url": "https://api.desk.internal",
        }
    )

    jobs = targets_by_job(yaml.safe_load(stack_config(settings)))

    assert jobs["worker"] == jobs["exchange-sim"] == jobs["api"] == []
    assert len(jobs["engine"]) == 2
