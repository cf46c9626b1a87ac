"""Input and result of the stack_check workflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class StackCheckInput:
    """What to echo through an activity."""

    token: str


@dataclass(frozen=True, kw_only=True)
class StackCheckResult:
    """What came back, and from where."""

    token_sha256: str
    worker_pid: int
    attempts: int
