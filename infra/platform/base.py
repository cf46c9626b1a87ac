"""The contract every platform offers: start, stop, inspect one engine color.

PlatformError                   base: an engine could not be started or stopped
├── EngineAlreadyRunningError   start refused: that color already runs
└── EngineStopError             the engine survived SIGKILL (or the pod its deletion)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Color = Literal["blue", "green"]


class PlatformError(Exception):
    """An engine could not be started or stopped; the message says what to do."""


class EngineAlreadyRunningError(PlatformError):
    """The color already runs: stop it first (two engines of one color never run)."""


class EngineStopError(PlatformError):
    """The engine did not stop."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineProcess:
    """One engine as the platform sees it."""

    color: Color
    running: bool
    pid: int | None
    release_path: Path | None
    log_path: Path


class Platform(Protocol):
    """Runs at most one engine per color."""

    def start(self, color: Color, release_path: Path, *, standby: bool = False) -> EngineProcess:
        """Start ``color`` with the release file (``standby``: do not contend for the lease).

        Raises:
            EngineAlreadyRunningError: ``color`` already runs.
        """

    def stop(self, color: Color) -> bool:
        """Stop ``color`` (graceful, then forced); return whether one was running.

        Raises:
            EngineStopError: it did not stop.
        """

    def status(self, color: Color) -> EngineProcess:
        """Return what runs as ``color``."""

    def logs(self, color: Color) -> Path:
        """Return where ``color``'s output goes."""
