"""Headless Chromium for the console's end-to-end tests: Debian's, driven by Playwright.

Playwright never downloads a browser here: it launches Debian's ``chromium`` by its
executable path. Without it the tests fail (not skip) and say how to install it. Every
request a page makes is recorded, so a test can prove the page never reaches beyond
loopback, and every API answer with its correlation id, so a test can find each of the
page's calls in the audit log.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page, Request, Response

INSTALL_ADVICE = (
    "Debian's chromium is not installed: the console's browser tests need it. As root:"
    " apt-get install -y --no-install-recommends chromium (`make test` runs"
    " infra/chromium/install-debian.sh, which does it)"
)


def chromium_path() -> str:
    """Return Debian's chromium executable; fail the test with install advice if missing."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(INSTALL_ADVICE)
    return path


@dataclass(frozen=True)
class ApiCall:
    """One call the page made to the API, as the browser saw its answer."""

    key_name: str
    method: str
    path: str
    status: int
    correlation_id: str | None


@dataclass
class Traffic:
    """Every request of every page of a test module, and the API calls among them."""

    requests: list[str] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page, key_name: str) -> None:
        """Record what ``page`` (signed in as ``key_name``) asks and is answered."""

        def on_request(request: Request) -> None:
            self.requests.append(request.url)

        def on_response(response: Response) -> None:
            path = urlsplit(response.url).path
            if path.startswith("/v1/"):
                self.calls.append(ApiCall(
                    key_name=key_name, method=response.request.method, path=path,
                    status=response.status,
                    correlation_id=response.headers.get("x-correlation-id")))  # fmt: skip

        def on_console(message: object) -> None:
            text = str(getattr(message, "text", ""))
            if "Content Security Policy" in text:
                self.csp_violations.append(text)

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def off_loopback(self) -> list[str]:
        """Return every requested URL whose host is not 127.0.0.1 (data: URLs aside)."""
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and urlsplit(url).hostname != "127.0.0.1"
        ]
