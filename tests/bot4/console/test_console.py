"""The operations console in headless Chromium against a real desk (see conftest.py).

The tests run in file order and share the module's desk: sign-in, the overview, what a
viewer is not offered, an operator's dry run and real run, a second operator's approval,
the history and audit log, and last the kill switch (it halts the desk's engine). The
final tests check the whole module's traffic: every API call the pages made is in the
audit log under the key that was signed in, and no request left loopback.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from tests.bot4.console.conftest import PEOPLE, Desk, SignIn, screenshot
from tests.stubs.api import poll
from tests.stubs.browser import Traffic

pytestmark = pytest.mark.timeout(180)


async def open_runbook(page: Page, name: str) -> None:
    await page.click('#nav a[data-page="runbooks"]')
    await page.click(f'[data-testid="catalog"] button[data-runbook="{name}"]')
    await expect(page.get_by_test_id("runbook-title")).to_have_text(name)


async def test_sign_in_shows_the_apis_refusal_then_admits_a_key(
    browser: Any, desk: Desk, traffic: Traffic
) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        traffic.watch(page, "nobody")
        answer = await page.goto(f"{desk.url}/")
        assert answer is not None
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        await page.fill("#api-key", "b4_abcdefghijkl_" + "x" * 43)
        await page.click("#sign-in-button")
        await expect(page.get_by_test_id("error-message")).to_contain_text("API key")
        assert await page.locator("#nav").is_hidden()
        await screenshot(page, "sign-in-refused")
        await page.fill("#api-key", desk.keys["vera"]["key"])
        await page.click("#sign-in-button")
        await expect(page.get_by_test_id("who")).to_contain_text(desk.keys["vera"]["id"])
        await expect(page.get_by_test_id("role")).to_have_text("viewer")
        # the key lives in this tab's sessionStorage only: no cookie carries it
        assert await context.cookies() == []
        stored = await page.evaluate("sessionStorage.getItem('bot4.console.apiKey')")
        assert stored == desk.keys["vera"]["key"]
    finally:
        await context.close()


async def test_overview_shows_the_live_engine_and_charts_it(desk: Desk, sign_in: SignIn) -> None:
    # the engine's own word first: when it is not ACTIVE, this names the condition why
    await desk.engine.wait_for(lambda s: s["trading_state"] == "ACTIVE", within=30,
                               what="trading state ACTIVE")  # fmt: skip
    page = await sign_in("alice")
    card = page.get_by_test_id("engine-blue")
    await expect(card.get_by_test_id("trading-state")).to_have_text("ACTIVE")
    await expect(card.locator('dd[data-fact="role"]')).to_have_text("leader")
    await expect(card.locator('dd[data-fact="release"]')).to_have_text("test-1")
    status = await desk.engine.status()
    assert status is not None
    await expect(card.locator('dd[data-fact="epoch"]')).to_have_text(str(status["epoch"]))
    await expect(card.locator('dd[data-fact="model version"]')).to_have_text(
        status["model_version"]
    )
    await expect(page.get_by_test_id("engine-green")).to_contain_text("not running")
    # the chart grows with every poll: a path of at least three points, then more
    path = page.locator('[data-testid="pnl-chart"] path')
    await expect(path).to_have_attribute("d", re.compile(r"^M[^L]*(L[^L]+){2,}"))
    first = await path.get_attribute("d")
    await expect(path).not_to_have_attribute("d", first or "")
    await expect(page.get_by_test_id("positions-chart")).to_be_visible()
    await expect(page.get_by_test_id("kill-switch-clear")).to_be_visible()
    await expect(page.get_by_test_id("backup-age")).to_contain_text("2 h")
    await expect(page.get_by_test_id("backup-age")).to_contain_text(desk.chores.backup_id)
    await expect(page.get_by_test_id("last-drill")).to_contain_text("RTO 0.41 s · RPO 0 events")
    await expect(page.get_by_test_id("reconciliation")).to_contain_text("1 break (0 escalated)")
    await expect(page.get_by_test_id("breaks")).to_contain_text("balance_drift")
    await expect(
        page.get_by_role("heading", name=re.compile(r"Open alerts \(\d+\)"))
    ).to_be_visible()
    await screenshot(page, "overview")


async def test_a_viewer_is_offered_no_run_approve_or_halt(desk: Desk, sign_in: SignIn) -> None:
    page = await sign_in("vera")
    await expect(page.locator('#nav a[data-page="killswitch"]')).to_be_hidden()
    await open_runbook(page, "stack_check")
    await expect(page.get_by_test_id("cannot-run")).to_contain_text("needs operator")
    text = page.get_by_test_id("runbook-text")
    await expect(text.get_by_role("heading", name="Purpose")).to_be_visible()
    await expect(text.locator("table")).to_have_count(1)
    for control in ("run", "dry-run", "run-form", "approve", "abort"):
        await expect(page.get_by_test_id(control)).to_have_count(0)
    await screenshot(page, "runbooks-viewer")
    await page.goto(f"{desk.url}/#killswitch")
    await expect(page.get_by_test_id("cannot-halt")).to_contain_text("needs role trader")
    await expect(page.get_by_test_id("halt")).to_have_count(0)
    await page.click('#nav a[data-page="history"]')
    await expect(page.get_by_test_id("audit-hidden")).to_contain_text("operator")


async def test_runbook_markdown_is_shown_as_text_never_run(sign_in: SignIn) -> None:
    page = await sign_in("vera")
    rendered = await page.evaluate("""async () => {
        const { renderMarkdown } = await import("/console/js/markdown.js");
        const box = document.createElement("div");
        box.append(renderMarkdown("# T\\n<img src=x onerror=alert(1)> **<script>x()</script>**"
            + "\\n\\n| a |\\n|---|\\n| <b>c</b> |"));
        return { html: box.innerHTML, text: box.textContent,
                 tags: [...box.querySelectorAll("img, script, b")].length };
    }""")
    assert rendered["tags"] == 0
    assert "<img src=x onerror=alert(1)>" in rendered["text"]
    assert "&lt;script&gt;" in rendered["html"]


async def test_an_operator_dry_runs_then_runs_stack_check_and_sees_it_complete(
    desk: Desk, sign_in: SignIn
) -> None:
    page = await sign_in("alice")
    await open_runbook(page, "stack_check")
    # the API's own validation message, in its words, for a missing parameter
    await page.get_by_test_id("dry-run").click()
    await expect(page.get_by_test_id("error-message")).to_contain_text("token")
    await page.fill("#param-token", "console-e2e")
    await page.get_by_test_id("dry-run").click()
    followed = page.get_by_test_id("followed-run")
    await expect(followed.get_by_test_id("run-status")).to_have_text("COMPLETED")
    await expect(followed.get_by_test_id("run-result")).to_contain_text('"dry_run": true')
    dry_id = await followed.get_by_test_id("run-id").inner_text()

    await page.get_by_test_id("run").click()
    await page.get_by_test_id("run-confirm").click()
    await expect(followed.get_by_test_id("run-id")).not_to_have_text(dry_id)
    await expect(followed.get_by_test_id("run-status")).to_have_text("COMPLETED")
    digest = hashlib.sha256(b"console-e2e").hexdigest()
    await expect(followed.get_by_test_id("run-result")).to_contain_text(digest)
    await expect(followed.get_by_test_id("transitions")).to_contain_text("COMPLETED")
    run_id = await followed.get_by_test_id("run-id").inner_text()
    link = followed.get_by_role("link", name="open in the Temporal UI")
    temporal = desk.settings.temporal
    await expect(link).to_have_attribute(
        "href", f"http://{temporal.host}:{temporal.ui_port}/namespaces/default/workflows/{run_id}"
    )
    await screenshot(page, "runbooks-operator")


async def test_a_second_operator_approves_the_guarded_step_never_the_requester(
    desk: Desk, sign_in: SignIn
) -> None:
    alice = await sign_in("alice")
    await open_runbook(alice, "stack_check")
    await alice.fill("#param-token", "four-eyes")
    await alice.check("#param-require_approval")
    await alice.get_by_test_id("run").click()
    await alice.get_by_test_id("run-confirm").click()
    followed = alice.get_by_test_id("followed-run")
    await expect(followed.locator('li[data-step="stack_check.digest"]')).to_contain_text(
        "awaiting approval"
    )
    run_id = await followed.get_by_test_id("run-id").inner_text()
    await followed.get_by_test_id("approve").click()  # the requester's own approval
    await expect(alice.get_by_test_id("error-message")).to_contain_text("may not approve")
    await screenshot(alice, "runbooks-awaiting-approval")

    bob = await sign_in("bob")
    await bob.click('#nav a[data-page="runbooks"]')
    row = bob.locator(f'[data-testid="active-runs"] [data-run="{run_id}"]')
    await row.get_by_test_id("approve").click()
    await expect(bob.locator("#notice")).to_contain_text("Approved stack_check.digest")

    await expect(followed.get_by_test_id("run-status")).to_have_text("COMPLETED")
    await expect(followed.get_by_test_id("run-result")).to_contain_text(
        f"bob ({desk.keys['bob']['id']})"
    )
    await expect(followed.get_by_test_id("transitions")).to_contain_text(
        "waiting for approval of stack_check.digest"
    )

    # and anyone allowed may abort a waiting run: it ends, saying who stopped it
    await alice.fill("#param-token", "never-approved")
    await alice.get_by_test_id("run").click()
    await alice.get_by_test_id("run-confirm").click()
    await expect(followed.get_by_test_id("run-id")).not_to_have_text(run_id)
    await expect(followed.get_by_test_id("approve")).to_be_visible()
    await followed.get_by_test_id("abort").click()
    await followed.get_by_test_id("abort-note").fill("not today")
    await followed.get_by_test_id("abort-confirm").click()
    await expect(followed.get_by_test_id("run-status")).to_have_text("FAILED")
    await expect(followed.get_by_test_id("run-failure")).to_contain_text("aborted by alice")


async def test_history_shows_runs_with_results_and_filters_the_audit_log(
    desk: Desk, sign_in: SignIn
) -> None:
    page = await sign_in("alice")
    await page.click('#nav a[data-page="history"]')
    runs = page.get_by_test_id("runs-table")
    # the dry run, the run, the approved run and the aborted one, each with its result
    await expect(runs.locator("tbody tr")).to_have_count(4)
    await expect(runs.locator("tbody tr").filter(has_text="COMPLETED")).to_have_count(3)
    await expect(runs.locator("tbody tr").filter(has_text="FAILED")).to_contain_text(
        "aborted by alice"
    )
    await page.get_by_test_id("runs-kind").select_option("emergency_stop")
    await expect(page.get_by_test_id("history-runs")).to_contain_text("no run")
    await page.get_by_test_id("runs-kind").select_option("")
    await expect(runs.locator("tbody tr")).to_have_count(4)
    chores = desk.chores
    for section, shown in (("drills", "0.41 s"), ("backups", chores.backup_id),
                           ("reconciliations", "sim"), ("reports", chores.report_id)):  # fmt: skip
        await expect(page.get_by_test_id(f"history-{section}")).to_contain_text(shown)
    for section in ("drills", "backups", "reconciliations", "reports", "models"):
        await expect(
            page.get_by_test_id(f"history-{section}").locator(".loading")
        ).not_to_contain_text("loading")
    await page.get_by_test_id("audit-key_id").fill(desk.keys["bob"]["id"])
    await page.get_by_test_id("audit-apply").click()
    rows = page.get_by_test_id("audit-rows")
    bob = f"bob ({desk.keys['bob']['id']})"
    # The unfiltered table already holds bob's approval, so wait (expect retries) until
    # the filtered answer has replaced it: no row of anyone else is left.
    key_cells = rows.locator("tbody tr td:nth-child(3)")
    await expect(key_cells.filter(has_not_text=bob)).to_have_count(0)
    await expect(rows).to_contain_text("POST /v1/runbooks/runs/{workflow_id}/approve")
    assert set(await key_cells.all_inner_texts()) == {bob}
    await screenshot(page, "history")


async def test_the_kill_switch_halts_the_engine_only_after_confirmation(
    desk: Desk, sign_in: SignIn
) -> None:
    page = await sign_in("tom")  # a trader: may halt, may not resume
    await page.click('#nav a[data-page="killswitch"]')
    await expect(page.get_by_test_id("state-blue")).to_have_text("ACTIVE")
    await expect(page.get_by_test_id("resume-section")).to_have_count(0)
    await page.get_by_test_id("halt-reason").fill("console e2e: halt the desk")
    await page.get_by_test_id("halt").click()  # not yet ticked: refused by the page
    await expect(page.get_by_test_id("error-message")).to_contain_text("tick the box")
    await page.get_by_test_id("halt-understood").check()
    await page.get_by_test_id("halt").click()
    await page.get_by_test_id("halt-cancel").click()  # changed their mind: nothing happens
    status = await desk.engine.status()
    assert status is not None
    assert status["trading_state"] == "ACTIVE"
    await page.get_by_test_id("halt-understood").check()
    await page.get_by_test_id("halt").click()
    await page.get_by_test_id("halt-confirm").click()
    await expect(page.get_by_test_id("halt-outcome")).to_contain_text("Halt accepted")

    async def halted() -> Any:
        found = await desk.engine.status()
        return found if found and found["trading_state"] == "HALTED" else None

    await poll(halted, timeout_s=20, interval_s=0.2)
    await expect(page.get_by_test_id("kill-flag")).to_have_text("engaged")
    await expect(page.get_by_test_id("state-blue")).to_have_text("HALTED")
    await screenshot(page, "kill-switch")
    await page.click('#nav a[data-page="overview"]')
    await expect(page.get_by_test_id("kill-switch-engaged")).to_contain_text("tom")
    await expect(page.get_by_test_id("engine-blue").get_by_test_id("trading-state")).to_have_text(
        "HALTED"
    )


async def test_every_call_of_the_pages_is_audited_under_the_signed_in_key(
    desk: Desk, traffic: Traffic
) -> None:
    calls = [c for c in traffic.calls if c.key_name in PEOPLE]
    assert {c.key_name for c in calls} == set(PEOPLE)
    assert all(c.correlation_id for c in calls)
    pool = await asyncpg.create_pool(desk.dsn, min_size=1, max_size=1)
    try:
        rows = await pool.fetch(
            "SELECT correlation_id, key_id, method, status, route FROM audit_log"
            " WHERE correlation_id = ANY($1::text[])",
            [c.correlation_id for c in calls],
        )
        by_key = {
            name: {(r["method"], r["route"], r["status"]) for r in await pool.fetch(
                "SELECT method, route, status FROM audit_log WHERE key_id = $1",
                desk.keys[name]["id"])}
            for name in PEOPLE
        }  # fmt: skip
    finally:
        await pool.close()
    audited = {r["correlation_id"]: r for r in rows}
    for call in calls:
        row = audited.get(call.correlation_id)
        assert row is not None, call
        assert row["key_id"] == desk.keys[call.key_name]["id"], (call, dict(row))
        assert (row["method"], row["status"]) == (call.method, call.status), (call, dict(row))
    # the actions, by who took them
    assert ("POST", "/v1/runbooks/{name}/runs", 201) in by_key["alice"]
    assert ("POST", "/v1/runbooks/{name}/runs", 422) in by_key["alice"]
    assert ("POST", "/v1/runbooks/runs/{workflow_id}/approve", 409) in by_key["alice"]
    assert ("POST", "/v1/runbooks/runs/{workflow_id}/approve", 200) in by_key["bob"]
    assert ("POST", "/v1/halt", 200) in by_key["tom"]
    assert {method for method, _, _ in by_key["vera"]} == {"GET"}


async def test_no_request_of_the_pages_left_loopback(traffic: Traffic) -> None:
    assert traffic.requests, "the pages made no request at all"
    assert traffic.off_loopback() == []
    assert traffic.csp_violations == []
    assert traffic.page_errors == []


async def test_the_console_files_are_public_but_the_api_is_not(desk: Desk) -> None:
    async with httpx.AsyncClient(base_url=desk.url, timeout=10) as http:
        index = await http.get("/")
        script = await http.get("/console/js/main.js")
        # percent-encoded, so the client does not resolve the dots itself
        climbing = await http.get("/console/%2e%2e/%2e%2e/bot4/settings.py")
        missing = await http.get("/console/js/no-such-module.js")
        posted = await http.post("/console/js/main.js")
        data = await http.get("/v1/engines")
    assert index.status_code == 200
    assert "text/html" in index.headers["content-type"]
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert climbing.status_code == 404
    assert missing.status_code == 404
    assert posted.status_code == 405
    assert data.status_code == 401
