"""Operator decisions inside a running workflow: approve a guarded step, or abort.

A workflow that has guarded steps keeps one :class:`Approvals` and declares two updates
that delegate to it (the SDK registers handlers per workflow class)::

    @workflow.update
    async def approve(self, decision: Decision) -> str:
        return self.approvals.approve(decision)

    @approve.validator
    def _check_approve(self, decision: Decision) -> None:
        self.approvals.check_approve(decision)

The validators run before anything is written to the workflow's history, so a refused
decision (the requester approving their own step, nothing waiting, an empty name) leaves
no trace but the caller's error. The requester may never approve: a guarded step needs a
second operator (the four-eyes rule of DESIGN.md §5). Abort is open to anyone allowed to
send it, the requester included: stopping is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError


@dataclass(frozen=True, kw_only=True)
class Decision:
    """An operator's decision.

    Attributes:
        by: who decides (the control plane fills it from the caller's key, never the body).
        step: the guarded step this approval is for (must be the one waiting); ignored by
            abort.
        note: free text for the audit trail.
    """

    by: str
    step: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Progress:
    """What a running workflow reports to ``status`` queries."""

    step: str
    waiting_for_approval: str | None
    approved: tuple[str, ...]
    aborted_by: str | None
    detail: str = ""


class Approvals:
    """The guarded-step state of one workflow run (lives in the workflow, replay-safe).

    Args:
        requester: who started the workflow; may not approve its guarded steps.
    """

    def __init__(self, requester: str) -> None:
        self.requester = requester
        self.waiting_for: str | None = None
        self.approved: dict[str, str] = {}
        self.aborted_by: str | None = None
        self.abort_note = ""

    # --- update validators and handlers -------------------------------------------------
    def check_approve(self, decision: Decision) -> None:
        """Refuse an approval that must not count (raises; nothing is recorded)."""
        if not decision.by.strip():
            raise ValueError("an approval must name who approves")
        if self.aborted_by is not None:
            raise ValueError(f"the run was aborted by {self.aborted_by}; nothing to approve")
        if self.waiting_for is None:
            raise ValueError("no step is waiting for approval")
        if decision.step and decision.step != self.waiting_for:
            raise ValueError(f"step {decision.step!r} is not waiting; {self.waiting_for!r} is")
        if decision.by == self.requester:
            raise ValueError(
                f"{decision.by} started this run and may not approve its guarded step"
                f" {self.waiting_for!r}: a second operator must"
            )

    def approve(self, decision: Decision) -> str:
        """Record the approval of the waiting step; return the step's name."""
        step = self.waiting_for
        assert step is not None  # the validator ran
        self.approved[step] = decision.by
        return step

    def check_abort(self, decision: Decision) -> None:
        """Refuse an abort without a name, or of a run already aborted."""
        if not decision.by.strip():
            raise ValueError("an abort must name who aborts")
        if self.aborted_by is not None:
            raise ValueError(f"already aborted by {self.aborted_by}")

    def abort(self, decision: Decision) -> str:
        """Record the abort; the workflow stops at its next check."""
        self.aborted_by = decision.by
        self.abort_note = decision.note
        return "aborting"

    # --- used by the workflow -------------------------------------------------------------
    def raise_if_aborted(self) -> None:
        """Raise ``ApplicationError`` of type ``Aborted`` if an operator aborted the run."""
        if self.aborted_by is not None:
            raise ApplicationError(
                f"aborted by {self.aborted_by}"
                + (f": {self.abort_note}" if self.abort_note else ""),
                type="Aborted",
                non_retryable=True,
            )

    async def wait_for_approval(self, step: str, *, within: timedelta) -> str:
        """Wait until a second operator approves ``step``; return who approved.

        Raises:
            ApplicationError: type ``Aborted`` when an operator aborted the run meanwhile,
                ``ApprovalTimeout`` when nobody decided ``within``.
        """
        self.waiting_for = step
        try:
            await workflow.wait_condition(
                lambda: step in self.approved or self.aborted_by is not None, timeout=within
            )
        except TimeoutError:
            raise ApplicationError(
                f"step {step!r} was not approved within {within}",
                type="ApprovalTimeout",
                non_retryable=True,
            ) from None
        finally:
            self.waiting_for = None
        self.raise_if_aborted()
        return self.approved[step]
