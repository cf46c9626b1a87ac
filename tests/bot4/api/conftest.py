"""One real control API for the package: a ``bot4 api`` process over a scratch database.

Keys are made through the API itself (after one local bootstrap) and every answer any test
receives is recorded, so ``test_secrets.py`` can grep all of them and every log file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot4.api.bootstrap import bootstrap_admin
from bot4.settings import RateLimit
from infra.stack.launcher import Stack
from tests.stubs.api import FAST, Recorder, RunningApi, ServerSecrets, api_settings, running_api
from tests.stubs.database import scratch_database
from tests.stubs.ports import free_ports
from tests.stubs.stack import make_home, remove_home

VIEWER_LIMIT = RateLimit(per_s=2, burst=5)


@pytest.fixture(scope="package")
async def api_dsn(running_stack: Stack) -> AsyncIterator[str]:
    async with scratch_database(running_stack.settings.db) as url:
        yield url


@pytest.fixture(scope="package")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="package")
def server_secrets() -> ServerSecrets:
    return ServerSecrets()


@pytest.fixture(scope="package")
def homes() -> Iterator[list[Path]]:
    """State folders of every API server of the package (their logs are grepped)."""
    made: list[Path] = []
    yield made
    for home in made:
        remove_home(home)


@pytest.fixture(scope="package")
def new_home(homes: list[Path]) -> Any:
    def make() -> Path:
        home = make_home()
        homes.append(home)
        return home

    return make


@pytest.fixture(scope="package")
def api(
    new_home: Any, api_dsn: str, server_secrets: ServerSecrets, running_stack: Stack
) -> Iterator[RunningApi]:
    settings = api_settings(
        new_home(),
        api_dsn,
        server_secrets,
        # the session stack's Temporal, whose worker runs the runbooks' workflows
        temporal=running_stack.settings.temporal,
        # reserved now; test_engines binds a real control server on the blue one
        engine_ports=(free_ports(1)[0], free_ports(1)[0]),
        rate_limits={"viewer": VIEWER_LIMIT, "trader": FAST, "operator": FAST, "admin": FAST},
    )
    # the session stack's Prefect, whose flow runner serves the chores' deployments
    settings = settings.model_copy(update={"prefect": running_stack.settings.prefect})
    with running_api(settings) as running:
        yield running


class Keys:
    """Makes keys through the API with the bootstrap admin key; remembers every key."""

    def __init__(self, api: RunningApi, recorder: Recorder, admin: str) -> None:
        self.api = api
        self.recorder = recorder
        self.admin = admin
        self.issued: list[str] = [admin]

    async def create(self, role: str, name: str | None = None, **body: Any) -> dict[str, Any]:
        async with self.recorder.client(self.api, self.admin) as http:
            answer = await http.post(
                "/v1/keys", json={"name": name or f"test-{role}", "role": role, **body}
            )
        assert answer.status_code == 201, answer.text
        document: dict[str, Any] = answer.json()
        self.issued.append(document["key"])
        return document

    def remember(self, document: dict[str, Any]) -> None:
        self.issued.append(document["key"])


@pytest.fixture(scope="package")
async def keys(api: RunningApi, recorder: Recorder, server_secrets: ServerSecrets) -> Keys:
    path = api.settings.api.effective_key_file(api.home)
    await bootstrap_admin(
        api.settings.db.effective_dsn(),
        path=path,
        name="test-admin",
        lifetime_s=0,
        force=False,
        audit_key=server_secrets.audit_key.encode(),
    )
    return Keys(api, recorder, path.read_text().strip())


async def audit_row(dsn: str, correlation_id: str) -> dict[str, Any] | None:
    """Return the audit row of one request, by its correlation id."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT * FROM audit_log WHERE correlation_id = $1", correlation_id
        )
    finally:
        await connection.close()
    return None if row is None else dict(row)
