"""The stack's Prometheus against the live stack: targets up, rule inputs present, a fault fires.

Two real engines (blue leading, green a warm standby) run on the session stack's engine
control ports, which its Prometheus scrapes, against a scratch database and a simulator
of this test. Then every target must be up, every series an alert rule selects must
exist, and a venue 5xx storm (the simulator's ``error_rate`` fault) must fire
``Bot4CircuitBreakerOpen``: the real rule with its production ``for: 30s``. Then every
query of every committed Grafana dashboard must return data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from bot4.settings import DatabaseSettings, ExchangeSettings, Settings
from infra.grafana.dashboards import generate
from infra.grafana.promql import instantiate, panel_expressions
from infra.platform import Color, LocalPlatform
from infra.stack.launcher import Stack
from tests.engine.live.harness import SYMBOLS, clear_faults, set_fault
from tests.stubs.deploy import engine_status, write_release
from tests.stubs.engine_control import TOKEN
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.prometheus import PrometheusApi, eventually, require_prometheus, rule_selectors
from tests.stubs.stack import settings_env
from workflows.stack_check import StackCheckInput, StackCheckWorkflow

pytestmark = pytest.mark.timeout(180)

# Series that exist only once the thing they count happened, not by running: checked by
# metric name only. The API's 5xx answers: this test makes none.
EVENT_ONLY: dict[str, str] = {
    'bot4_api_requests_total{status=~"5.."}': "bot4_api_requests_total",
}


@asynccontextmanager
async def engines(settings: Settings, release: Path) -> AsyncIterator[LocalPlatform]:
    """Run blue (leading) and green (standby) on ``settings``; stop both afterwards."""
    platform = LocalPlatform(settings.home, env=settings_env(settings), stop_timeout_s=30.0)
    colors: tuple[Color, ...] = ("blue", "green")
    try:
        platform.start("blue", release)
        platform.start("green", release, standby=True)
        yield platform
    finally:
        for color in colors:
            await asyncio.to_thread(platform.stop, color)


def desk(stack: Settings, *, home: Path, dsn: str, market: int) -> Settings:
    """Settings of this test's engines: the stack's engine ports, its own journal and venue."""
    return stack.model_copy(
        update={
            "home": home,
            "db": DatabaseSettings(dsn=SecretStr(dsn)),
            "exchange": ExchangeSettings(port=market, symbols=SYMBOLS),
            "engine": stack.engine.model_copy(update={"control_token": SecretStr(TOKEN)}),
        }
    )


async def test_every_target_is_up_every_rule_selector_has_data_and_a_5xx_storm_fires(
    running_stack: Stack, dsn: str, tmp_path: Path
) -> None:
    require_prometheus()
    stack = running_stack.settings
    prometheus = PrometheusApi(stack)
    release = write_release(tmp_path, "prometheus-live")
    with ThreadedSim(sim_config(agent_orders_per_s=150.0)) as sim:
        settings = desk(stack, home=tmp_path, dsn=dsn, market=sim.config.port)
        engine = settings.engine
        blue = f"http://{engine.host}:{engine.blue_control_port}"
        green = f"http://{engine.host}:{engine.green_control_port}"
        async with engines(settings, release):

            async def roles() -> bool:
                found = [await engine_status(url) for url in (blue, green)]
                return [s and s.get("role") for s in found] == ["leader", "standby"]

            await eventually(roles, within_s=60, what="blue leading, green standing by")

            async def every_target_up() -> list[dict[str, Any]] | None:
                targets = await prometheus.targets()
                return targets if all(t["health"] == "up" for t in targets) else None

            targets = await eventually(every_target_up, within_s=15, what="every target up")
            jobs = {t["labels"]["job"] for t in targets}
            assert jobs == {"prometheus", "engine", "worker", "flows", "api", "exchange-sim"}
            assert len([t for t in targets if t["labels"]["job"] == "engine"]) == 2

            async def blue_filled() -> bool:  # the fill panels need a fill before the storm
                status = await engine_status(blue)
                return bool(status and (status.get("orders") or {}).get("fills_recorded"))

            await eventually(blue_filled, within_s=90, what="a fill on blue")
            await set_fault(sim.config.port, "error_rate", share=1.0)  # every REST call: 503
            try:

                async def breaker_alert_firing() -> list[dict[str, Any]]:
                    return [
                        a
                        for a in await prometheus.alerts()
                        if a["labels"]["alertname"] == "Bot4CircuitBreakerOpen"
                        and a["labels"]["color"] == "blue"
                        and a["state"] == "firing"
                    ]

                firing = await eventually(
                    breaker_alert_firing, within_s=75, what="Bot4CircuitBreakerOpen firing"
                )
                assert firing[0]["labels"]["severity"] == "page"
                assert firing[0]["annotations"]["runbook_url"].startswith("runbooks/alerts/")
                await assert_every_rule_selector_has_data(prometheus)
                await run_a_workflow_on_the_stack_worker(stack)
                await assert_every_dashboard_query_has_data(prometheus)
            finally:
                await clear_faults(sim.config.port)


async def assert_every_rule_selector_has_data(prometheus: PrometheusApi) -> None:
    """Every series selector of every alert expression matches at least one series."""
    empty = []
    for alert, selectors in sorted(rule_selectors().items()):
        for selector in sorted(selectors):
            if not await prometheus.series(EVENT_ONLY.get(selector, selector)):
                empty.append(f"{alert}: {selector}")
    assert empty == [], "alert rule selectors without data"


async def run_a_workflow_on_the_stack_worker(stack: Settings) -> None:
    """Run one stack_check through the stack's worker: the workflow panels then have data."""
    client = await Client.connect(stack.temporal.effective_address(),
                                  namespace=stack.temporal.namespace)  # fmt: skip
    await client.execute_workflow(
        StackCheckWorkflow.run, StackCheckInput(token="dashboards", requested_by="pytest"),
        id=f"dashboards-{uuid.uuid4().hex[:8]}", task_queue=stack.temporal.task_queue,
    )  # fmt: skip


# Panels whose series exists only after the event they show (here: a failover drill,
# which the DR tests run); each says so through its "no value" text instead of "No data".
NO_DATA_UNTIL_EVENT: Final = {"Last drill RTO": "no drill yet"}


async def assert_every_dashboard_query_has_data(prometheus: PrometheusApi) -> None:
    """Every panel's query, as Grafana sends it with every variable at "All", has data.

    No panel of the committed dashboards stays empty; the panels waiting for an event
    (NO_DATA_UNTIL_EVENT) must say what they wait for.
    """
    empty = []
    for name, dashboard in sorted(generate().items()):
        said = {p["title"]: p["fieldConfig"]["defaults"].get("noValue")
                for p in dashboard["panels"]}  # fmt: skip
        for title, expr in panel_expressions(dashboard):
            query = instantiate(expr, rate_interval="1m")
            if title in NO_DATA_UNTIL_EVENT:  # may stay empty: asked once, not waited for
                data = await _result(prometheus, query)
            else:
                data = await eventually(
                    partial(_result, prometheus, query), within_s=20, what=query, quiet=True
                )
            if not data and said.get(title) != NO_DATA_UNTIL_EVENT.get(title, ""):
                empty.append(f"{name} / {title}: {query}")
    assert empty == [], "dashboard panels without data:\n" + "\n".join(empty)


async def _result(prometheus: PrometheusApi, query: str) -> list[Any]:
    return list((await prometheus.get("query", query=query))["result"])
