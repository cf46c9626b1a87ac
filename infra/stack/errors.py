"""Errors of the stack launcher, each telling the operator what to do next.

StackError                      base: a message an operator can act on
├── PortTakenError              another process holds a port we need
├── MissingBinaryError          a server binary is not installed
├── CorruptStateError           the state folder holds something we cannot use
├── ComponentStartError         a server exited or never became healthy
└── MigrationError              a schema migration failed (schema unchanged)
"""

from __future__ import annotations


class StackError(Exception):
    """A stack operation failed in a way the operator must act on."""

    def __init__(self, component: str, problem: str, *, action: str) -> None:
        super().__init__(f"{component}: {problem.rstrip('.')}. {action}")
        self.component = component
        self.problem = problem
        self.action = action


class PortTakenError(StackError):
    """Another process listens on a port a component needs."""


class MissingBinaryError(StackError):
    """A server binary a component needs is not installed."""


class CorruptStateError(StackError):
    """The state folder holds files the launcher cannot use."""


class ComponentStartError(StackError):
    """A server exited or did not become healthy in time."""


class MigrationError(StackError):
    """A schema migration failed; the transaction left the schema unchanged."""
