"""The ``flows`` settings group: bounds named in the error, children rebuild the same values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot4.settings import FlowsSettings, Settings
from flows.deployments import schedules


def test_bad_cron_and_bounds_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="backup_cron"):
        FlowsSettings(backup_cron="every night")
    with pytest.raises(ValidationError, match="interval_s"):
        FlowsSettings(interval_s=1)
    with pytest.raises(ValidationError, match="reports_uri"):
        FlowsSettings(reports_uri="ftp://x")


def test_child_environment_rebuilds_the_flows_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(flows=FlowsSettings(quantity_tolerance=Decimal("0.001"), interval_s=30))
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    child = Settings()
    assert child.flows == settings.flows
    plans = schedules(child)
    assert {name: plan.interval.total_seconds() for name, plan in plans.items()} == {
        "backup": 30, "reconcile": 30, "report": 30,
    }  # fmt: skip
    cron = schedules(Settings(flows=FlowsSettings()))
    assert (cron["backup"].cron, cron["reconcile"].cron, cron["report"].cron) == (
        "0 2 * * *", "15 0 * * *", "0 6 * * *",
    )  # fmt: skip
    assert cron["backup"].timezone == "UTC"
