"""Terminal output of the CLI: progress lines, tables, errors. ``print`` lives here only."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

_SPINNER = "|/-\\"


class ConsoleProgress:
    """Shows what the launcher does: a live line on a terminal, plain lines elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._started: dict[str, float] = {}
        self._action: dict[str, str] = {}
        self._last_line = 0.0

    def begin(self, component: str, action: str) -> None:
        """Show that ``action`` on ``component`` starts."""
        self._started.setdefault(component, time.monotonic())
        self._action[component] = action
        self._write(f"  {component:<18} {action} ...", final=not self.live)

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Refresh the live line (or, off a terminal, say every 5 s that we still wait)."""
        action = self._action.get(component, "waiting")
        if self.live:
            spin = _SPINNER[int(elapsed_s * 8) % len(_SPINNER)]
            self._write(f"  {component:<18} {action} {spin} {elapsed_s:4.1f}s", final=False)
        elif time.monotonic() - self._last_line > 5:
            self._write(f"  {component:<18} still {action} ({elapsed_s:.0f}s)", final=True)

    def done(self, component: str, outcome: str) -> None:
        """Show the outcome and how long it took."""
        started = self._started.pop(component, time.monotonic())
        self._write(f"  {component:<18} {outcome} ({time.monotonic() - started:.1f}s)", final=True)

    def _write(self, text: str, *, final: bool) -> None:
        self._last_line = time.monotonic()
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain aligned table to stdout."""
    cells = [[str(h) for h in headers], *[["-" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def print_json(document: object) -> None:
    """Print one JSON document to stdout."""
    print(json.dumps(document, indent=2, sort_keys=False, default=str))


def error(message: str) -> None:
    """Print an error for the operator to stderr."""
    print(f"error: {message}", file=sys.stderr)


def say(message: str) -> None:
    """Print an informational line to stderr (stdout stays for results)."""
    print(message, file=sys.stderr)
