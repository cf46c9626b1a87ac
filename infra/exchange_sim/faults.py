"""Fault injection: a small typed model of what can go wrong, set and cleared at run time.

Each fault is a frozen dataclass whose fields are its parameters. Persistent faults act
until cleared; one-shot faults (``drop_websockets``, ``sequence_gap``, ``crossed_book``)
act once and then clear themselves; ``lost_answer`` clears after ``count`` orders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Final


@dataclass(frozen=True, kw_only=True, slots=True)
class Latency:
    """Delay every REST answer by ``ms`` milliseconds."""

    name: ClassVar[str] = "latency"
    ms: int = 200

    def __post_init__(self) -> None:
        _check(0 <= self.ms <= 60_000, "ms", "must be between 0 and 60000")


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorRate:
    """Answer a share of REST requests with HTTP 503 before doing anything."""

    name: ClassVar[str] = "error_rate"
    share: float = 0.5

    def __post_init__(self) -> None:
        _check(0.0 <= self.share <= 1.0, "share", "must be between 0 and 1")


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitStorm:
    """Answer every REST request with 429 and ``Retry-After``."""

    name: ClassVar[str] = "rate_limit_storm"
    retry_after_s: int = 5

    def __post_init__(self) -> None:
        _check(1 <= self.retry_after_s <= 3600, "retry_after_s", "must be between 1 and 3600")


@dataclass(frozen=True, kw_only=True, slots=True)
class DropWebsockets:
    """Close every websocket connection now (one-shot)."""

    name: ClassVar[str] = "drop_websockets"


@dataclass(frozen=True, kw_only=True, slots=True)
class StallStreams:
    """Keep websocket connections open but send no market data."""

    name: ClassVar[str] = "stall_streams"


@dataclass(frozen=True, kw_only=True, slots=True)
class SequenceGap:
    """Skip ``skip`` update ids in the next depth diff of a symbol (all if empty; one-shot)."""

    name: ClassVar[str] = "sequence_gap"
    symbol: str = ""
    skip: int = 5

    def __post_init__(self) -> None:
        _check(1 <= self.skip <= 1_000_000, "skip", "must be between 1 and 1000000")


@dataclass(frozen=True, kw_only=True, slots=True)
class CrossedBook:
    """Emit one depth diff whose best bid is above the best ask (one-shot)."""

    name: ClassVar[str] = "crossed_book"
    symbol: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class LostAnswer:
    """Place the next ``count`` orders, then drop the connection instead of answering."""

    name: ClassVar[str] = "lost_answer"
    count: int = 1

    def __post_init__(self) -> None:
        _check(1 <= self.count <= 1_000_000, "count", "must be between 1 and 1000000")


@dataclass(frozen=True, kw_only=True, slots=True)
class HaltSymbol:
    """Reject new orders on a symbol with Binance's 'Market is closed.' (-1013)."""

    name: ClassVar[str] = "halt_symbol"
    symbol: str = "BTCUSDT"


Fault = (
    Latency | ErrorRate | RateLimitStorm | DropWebsockets | StallStreams | SequenceGap
    | CrossedBook | LostAnswer | HaltSymbol
)  # fmt: skip

FAULT_TYPES: Final[dict[str, type[Fault]]] = {
    cls.name: cls
    for cls in (
        Latency, ErrorRate, RateLimitStorm, DropWebsockets, StallStreams, SequenceGap,
        CrossedBook, LostAnswer, HaltSymbol,
    )
}  # fmt: skip


class FaultError(ValueError):
    """A fault name or parameter is not valid; the message names it and what is allowed."""


def _check(ok: bool, field: str, rule: str) -> None:
    if not ok:
        raise FaultError(f"parameter {field!r} {rule}")


def build_fault(name: str, params: dict[str, Any]) -> Fault:
    """Build a fault from its name and parameters (strings from the CLI or JSON values).

    Raises:
        FaultError: unknown fault, unknown parameter, or a value out of range.
    """
    cls = FAULT_TYPES.get(name)
    if cls is None:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(FAULT_TYPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in params.items():
        field = fields.get(key)
        if field is None:
            allowed = ", ".join(fields) or "none"
            raise FaultError(f"fault {name!r} has no parameter {key!r}; parameters: {allowed}")
        kind: type = type(field.default)
        try:
            if kind is bool or isinstance(raw, (bool, list, dict)):
                raise ValueError
            values[key] = kind(raw) if kind is not int else int(str(raw))
        except (TypeError, ValueError):
            raise FaultError(
                f"parameter {key!r} of fault {name!r} must be a {kind.__name__}, got {raw!r}"
            ) from None
    return cls(**values)


def describe(fault: Fault) -> dict[str, Any]:
    """Return the JSON shape of a fault: ``{"name": ..., "params": {...}}``."""
    return {"name": fault.name, "params": dataclasses.asdict(fault)}


def catalog() -> list[dict[str, Any]]:
    """Return every known fault with its doc line and default parameters."""
    return [
        {"name": name, "doc": (cls.__doc__ or "").strip(), "params": dataclasses.asdict(cls())}
        for name, cls in FAULT_TYPES.items()
    ]


class FaultBoard:
    """The faults active right now, keyed by name."""

    def __init__(self) -> None:
        self.active: dict[str, Fault] = {}

    def set(self, fault: Fault) -> None:
        """Activate (or replace) a fault."""
        self.active[fault.name] = fault

    def clear(self, name: str | None = None) -> list[str]:
        """Clear one fault (or all with None); return the names cleared."""
        if name is None:
            cleared = sorted(self.active)
            self.active.clear()
            return cleared
        return [name] if self.active.pop(name, None) is not None else []

    def get(self, cls: type[Fault]) -> Any:
        """Return the active fault of a type, or None."""
        return self.active.get(cls.name)

    def take_lost_answer(self) -> bool:
        """Consume one lost answer; True if this order's answer must be lost."""
        fault = self.active.get(LostAnswer.name)
        if not isinstance(fault, LostAnswer):
            return False
        if fault.count <= 1:
            del self.active[LostAnswer.name]
        else:
            self.active[LostAnswer.name] = LostAnswer(count=fault.count - 1)
        return True

    def take_for_symbol(self, cls: type[SequenceGap] | type[CrossedBook], symbol: str) -> Any:
        """Consume a one-shot per-symbol fault if it applies to ``symbol``."""
        fault = self.active.get(cls.name)
        if fault is None or getattr(fault, "symbol", "") not in ("", symbol):
            return None
        del self.active[cls.name]
        return fault
