"""Runbook parameters as the API reads them: scalars and short lists (no server needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot4.api.errors import ApiError
from bot4.api.models import RunbookRunBody
from bot4.api.runbooks import build_input
from workflows.runbooks import RUNBOOKS


def test_a_list_parameter_reaches_the_runbook_input_as_given() -> None:
    # what `bot4 liquidate --symbol BTC/USDT --symbol ETH/USDT` posts
    body = RunbookRunBody.model_validate(
        {"params": {"symbols": ["BTC/USDT", "ETH/USDT"], "deadline_s": 60}, "dry_run": True}
    )
    request = build_input(RUNBOOKS["liquidation"], body.params, requested_by="t", dry_run=True)
    assert tuple(request.symbols) == ("BTC/USDT", "ETH/USDT")
    assert request.deadline_s == 60


def test_nested_or_oversized_lists_are_refused_by_the_body() -> None:
    with pytest.raises(ValidationError):
        RunbookRunBody.model_validate({"params": {"symbols": [["BTC/USDT"]]}})
    with pytest.raises(ValidationError):
        RunbookRunBody.model_validate({"params": {"symbols": ["X"] * 65}})


def test_a_list_where_the_runbook_wants_a_scalar_is_named() -> None:
    body = RunbookRunBody.model_validate({"params": {"deadline_s": [60]}})
    with pytest.raises(ApiError, match="deadline_s"):
        build_input(RUNBOOKS["liquidation"], body.params, requested_by="t", dry_run=False)
