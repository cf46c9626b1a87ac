"""Shared fixtures: one real local stack for the whole session, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot4.settings import Settings
from infra.stack.launcher import Stack
from tests.chaos import report as chaos_report
from tests.stubs.database import scratch_database
from tests.stubs.stack import make_home, remove_home, stack_settings


@pytest.fixture(scope="session")
def session_settings() -> Iterator[Settings]:
    """Settings of the session's stack: free ports, a throw-away BOT4_HOME."""
    home = make_home()
    yield stack_settings(home)
    remove_home(home)


@pytest.fixture(scope="session")
def running_stack(session_settings: Settings) -> Iterator[Stack]:
    """Every server of the stack, started once per session and stopped at its end."""
    stack = Stack(session_settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


@pytest.fixture
async def dsn(running_stack: Stack) -> AsyncIterator[str]:
    """A fresh database on the session's PostgreSQL, migrated, dropped afterwards."""
    async with scratch_database(running_stack.settings.db) as url:
        yield url


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the chaos suite's seed first, so any run can be reproduced."""
    return chaos_report.header(config)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the chaos scenarios that ran: faults, outcome, time, verdict."""
    chaos_report.summary(terminalreporter)
