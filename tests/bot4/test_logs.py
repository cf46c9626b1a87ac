"""Structured JSON logs carry the operation's correlation id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import structlog

from bot4.logs import configure_logging, operation


def test_every_line_of_an_operation_carries_its_correlation_id(tmp_path: Path) -> None:
    configure_logging(log_dir=tmp_path, level=logging.INFO)
    log = structlog.get_logger("test")
    with operation("stack.up") as correlation_id:
        log.info("component_started", component="temporal")
        logging.getLogger("stdlib").warning("from the standard library")
    log.info("outside")
    for handler in logging.getLogger().handlers:
        handler.flush()

    lines = [json.loads(line) for line in (tmp_path / "bot4.log").read_text().splitlines()]
    inside = [line for line in lines if line["event"] != "outside"]
    assert [line["event"] for line in inside] == ["component_started", "from the standard library"]
    assert {line["correlation_id"] for line in inside} == {correlation_id}
    assert inside[0]["component"] == "temporal"
    assert inside[0]["operation"] == "stack.up"
    assert "correlation_id" not in lines[-1]
    for handler in logging.getLogger().handlers:
        handler.close()
    logging.getLogger().handlers.clear()
