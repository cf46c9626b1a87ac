"""Pieces every bench shares: free loopback ports and stack progress on stderr."""

from __future__ import annotations

import socket
from collections.abc import Callable


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports on 127.0.0.1 (all held at once while picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StderrProgress:
    """Stack progress as one line per finished step, through the bench's ``say``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def begin(self, component: str, action: str) -> None:
        """Ignore (the outcome line follows)."""

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Ignore."""

    def done(self, component: str, outcome: str) -> None:
        """Print the outcome."""
        self._say(f"{component}: {outcome}")
