"""The stack's Prometheus configuration: the template rendered with the stack's addresses.

The template (``prometheus.yml`` beside this module) names every job once; this module
only fills in addresses and intervals, so an operator reads one file to know what is
scraped, and a production Prometheus copies the same jobs and labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final

from bot4.settings import LOOPBACK, Settings

HERE: Final = Path(__file__).resolve().parent
TEMPLATE: Final = HERE / "prometheus.yml"
RULES_DIR: Final = HERE / "rules"


@dataclass(frozen=True, kw_only=True, slots=True)
class ScrapeTargets:
    """``host:port`` of every scraped component; empty when the stack does not run it."""

    prometheus: tuple[str, ...] = ()
    engine_blue: tuple[str, ...] = ()
    engine_green: tuple[str, ...] = ()
    worker: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    api: tuple[str, ...] = ()
    exchange_sim: tuple[str, ...] = ()

    def all(self) -> dict[str, tuple[str, ...]]:
        """Return the targets by job name (as in the template)."""
        return {
            "prometheus": self.prometheus,
            "engine": self.engine_blue + self.engine_green,
            "worker": self.worker,
            "flows": self.flows,
            "api": self.api,
            "exchange-sim": self.exchange_sim,
        }


def _address(host: str, port: int) -> str:
    # a server bound to every interface is scraped over loopback
    return f"{LOOPBACK if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104


def stack_targets(settings: Settings) -> ScrapeTargets:
    """Return what the local stack of ``settings`` runs, as the launcher decides it.

    Engines are not stack components, but both colors are always scraped at their
    control ports (``BOT4_ENGINE__{BLUE,GREEN}_CONTROL_PORT``): the local platform and
    every workflow start them there.
    """
    engine = settings.engine
    local_temporal = settings.temporal.address is None
    return ScrapeTargets(
        prometheus=(_address(LOOPBACK, settings.prometheus.port),),
        engine_blue=(_address(engine.host, engine.blue_control_port),),
        engine_green=(_address(engine.host, engine.green_control_port),),
        worker=(_address(LOOPBACK, settings.worker.metrics_port),) if local_temporal else (),
        flows=(_address(LOOPBACK, settings.flows.metrics_port),),
        api=(_address(settings.api.host, settings.api.port),) if settings.api_url is None else (),
        exchange_sim=(
            (_address(settings.exchange.host, settings.exchange.port),)
            if settings.exchange.simulator
            else ()
        ),
    )


def render_config(
    targets: ScrapeTargets,
    *,
    scrape_interval_s: int,
    evaluation_interval_s: int,
    rules_dir: Path = RULES_DIR,
) -> str:
    """Return the template filled in: a complete ``prometheus.yml``.

    Raises:
        KeyError: the template names a placeholder this function does not fill.
    """
    values: dict[str, object] = {
        "scrape_interval": f"{scrape_interval_s}s",
        # a scrape may not outlast its interval (Prometheus refuses the config otherwise)
        "scrape_timeout": f"{min(scrape_interval_s, 10)}s",
        "evaluation_interval": f"{evaluation_interval_s}s",
        "rule_files": [str(rules_dir.resolve() / "*.yml")],
        "prometheus_targets": targets.prometheus,
        "engine_blue_targets": targets.engine_blue,
        "engine_green_targets": targets.engine_green,
        "worker_targets": targets.worker,
        "flows_targets": targets.flows,
        "api_targets": targets.api,
        "exchange_sim_targets": targets.exchange_sim,
    }
    encoded = {k: json.dumps(list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
    return Template(TEMPLATE.read_text()).substitute(encoded)


def stack_config(settings: Settings) -> str:
    """Return the concrete configuration of the local stack of ``settings``."""
    return render_config(
        stack_targets(settings),
        scrape_interval_s=settings.prometheus.scrape_interval_s,
        evaluation_interval_s=settings.prometheus.evaluation_interval_s,
    )
