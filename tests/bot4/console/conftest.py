"""One little desk and one headless Chromium for the console's browser tests (per module).

The desk is real: a ``bot4 api`` process, a ``bot4 worker`` on a task queue of its own
(so runbooks really run), and a ``bot4 engine run`` leading on a scratch database against
a simulator whose agents trade with it (so positions and PnL move). Keys of every role
are made through the API, as an admin would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bot4.api.bootstrap import bootstrap_admin
from bot4.settings import Settings
from infra.stack.launcher import Stack
from tests.stubs.api import running_api
from tests.stubs.browser import Traffic, chromium_path
from tests.stubs.chores_seed import Seeded, seed_chores
from tests.stubs.database import scratch_database
from tests.stubs.deploy import RELEASE
from tests.stubs.desk import desk_settings, running_worker
from tests.stubs.engine_process import EngineProcess
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.stack import make_home, remove_home

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
PEOPLE = {"vera": "viewer", "tom": "trader", "alice": "operator", "bob": "operator"}


@dataclass(frozen=True)
class Desk:
    """The running desk: its settings, API URL, database, engine and everyone's key."""

    settings: Settings
    url: str
    dsn: str
    engine: EngineProcess
    keys: dict[str, dict[str, Any]]
    chores: Seeded


@pytest.fixture(scope="module")
async def desk(running_stack: Stack) -> AsyncIterator[Desk]:
    home = make_home()
    try:
        async with AsyncExitStack() as stack:
            dsn = await stack.enter_async_context(scratch_database(running_stack.settings.db))
            chores = await seed_chores(dsn)  # a backup, a drill, a reconciliation, a report
            sim = stack.enter_context(ThreadedSim(sim_config(agent_orders_per_s=50.0)))
            release = home / "release.json"
            release.write_text(json.dumps(RELEASE))
            engine = EngineProcess(home, dsn, sim.config.port, release, color="blue",
                                   instance="blue")  # fmt: skip
            settings = desk_settings(running_stack.settings, home, dsn, sim.config.port,
                                     engine.port, queue="console-test")  # fmt: skip
            await engine.start()
            stack.push_async_callback(engine.terminate)
            stack.enter_context(running_worker(settings))  # starts while the engine warms up
            await engine.wait_for(lambda s: s.get("role") == "leader", within=90, what="leader")
            key_file = settings.api.effective_key_file(home)
            audit_key = settings.api.audit_key.get_secret_value().encode()  # type: ignore[union-attr]
            await bootstrap_admin(dsn, path=key_file, name="console-admin", lifetime_s=0,
                                  force=False, audit_key=audit_key)  # fmt: skip
            api = stack.enter_context(running_api(settings))
            admin = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
            keys: dict[str, dict[str, Any]] = {}
            async with httpx.AsyncClient(base_url=api.url, headers=admin, timeout=30) as http:
                for name, role in PEOPLE.items():
                    made = await http.post("/v1/keys", json={"name": name, "role": role})
                    assert made.status_code == 201, made.text
                    keys[name] = made.json()
            yield Desk(settings=settings, url=api.url, dsn=dsn, engine=engine, keys=keys,
                       chores=chores)  # fmt: skip
    finally:
        remove_home(home)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()  # fails with install advice when Debian's chromium is missing
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=20_000)  # a busy 2-core machine: the default 5 s is short
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


SignIn = Callable[[str], Awaitable["Page"]]


@pytest.fixture
async def sign_in(browser: Browser, desk: Desk, traffic: Traffic) -> AsyncIterator[SignIn]:
    """Open a fresh browser context (its own sessionStorage) and sign in as someone."""
    from playwright.async_api import expect

    contexts = []

    async def open_as(name: str) -> Page:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = await context.new_page()
        traffic.watch(page, name)
        await page.goto(f"{desk.url}/")
        await page.fill("#api-key", desk.keys[name]["key"])
        await page.click("#sign-in-button")
        await expect(page.get_by_test_id("role")).to_have_text(PEOPLE[name])
        return page

    yield open_as
    for context in contexts:
        await context.close()


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
