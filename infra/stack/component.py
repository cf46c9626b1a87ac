"""What every stack component offers, and the shared way of waiting for health."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from infra.stack.errors import ComponentStartError

Outcome = Literal["started", "reused", "external", "skipped"]
"""``skipped``: an optional server whose binary is not installed (it says what to do)."""


class Progress(Protocol):
    """Receives progress while the launcher works, so the CLI can show it."""

    def begin(self, component: str, action: str) -> None:
        """Announce that ``action`` on ``component`` starts."""

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Report that the launcher still waits for ``component``."""

    def done(self, component: str, outcome: str) -> None:
        """Announce the outcome of the current action."""


class SilentProgress:
    """Progress that shows nothing (tests, library use)."""

    def begin(self, component: str, action: str) -> None:
        """Ignore."""

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Ignore."""

    def done(self, component: str, outcome: str) -> None:
        """Ignore."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentStatus:
    """One line of ``bot4 stack status``."""

    name: str
    url: str
    pid: int | None
    healthy: bool
    managed: bool
    details: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """Return the JSON object of ``status --json``."""
        return {
            "name": self.name,
            "url": self.url,
            "pid": self.pid,
            "healthy": self.healthy,
            "managed": self.managed,
            **self.details,
        }


class Component(ABC):
    """A server of the stack that the launcher can check and stop."""

    name: str

    @abstractmethod
    def stop(self) -> bool:
        """Stop the server if the launcher started it; return whether one was stopped."""

    @abstractmethod
    def status(self) -> ComponentStatus:
        """Return the current status (cheap: one health probe)."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Return the pids the launcher recorded for this component."""


def wait_for_health(
    *,
    component: str,
    healthy: Callable[[], bool],
    still_running: Callable[[], bool],
    timeout_s: float,
    progress: Progress,
    log_file: Path,
) -> None:
    """Poll ``healthy`` until it holds; fail fast if the process dies.

    Raises:
        ComponentStartError: the process exited, or the timeout passed.
    """
    start = time.monotonic()
    while True:
        if healthy():
            return
        elapsed = time.monotonic() - start
        if not still_running():
            raise ComponentStartError(
                component,
                f"the server exited during start-up; last log lines:\n{tail(log_file)}",
                action=f"Read {log_file} for the cause, fix it, then run `bot4 stack up` again.",
            )
        if elapsed > timeout_s:
            raise ComponentStartError(
                component,
                f"not healthy after {timeout_s:.0f} s; last log lines:\n{tail(log_file)}",
                action=f"Read {log_file}; `bot4 stack down` then `bot4 stack up` to retry.",
            )
        progress.waiting(component, elapsed)
        time.sleep(0.1 if elapsed < 2 else 0.25)


def tail(path: Path, lines: int = 8) -> str:
    """Return the last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def http_ok(url: str, *, timeout_s: float = 1.0) -> bool:
    """Tell whether GET ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
