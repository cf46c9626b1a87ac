"""Input and result of the stack_check workflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class StackCheckInput:
    """What to echo through an activity.

    Attributes:
        token: any text; the activity returns its SHA-256.
        requested_by: who started the run (the control plane fills it in).
        dry_run: return the plan (no activity runs).
        require_approval: make the digest a guarded step, so the runbook machinery
            (approve by a second operator, abort) can be proven end to end.
    """

    token: str
    requested_by: str = ""
    dry_run: bool = False
    require_approval: bool = False


@dataclass(frozen=True, kw_only=True)
class StackCheckResult:
    """What came back, and from where."""

    token_sha256: str = ""
    worker_pid: int = 0
    attempts: int = 0
    dry_run: bool = False
    approved_by: str = ""
