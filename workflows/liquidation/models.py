"""Input, step payloads and result of the liquidation workflow.

Frozen keyword-only dataclasses (the SDK's default converter carries them). Durations
are integers (``*_s``, ``*_ms``); quantities are decimal text, exactly as the journal
and the venue write them (a float would round a lot away).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

STEPS: Final = ("plan", "approve", "reduce", "unwind", "verify", "report")
MODES: Final = ("twap", "participation")
SYMBOL: Final = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")
MAX_SYMBOLS: Final = 20
ALL: Final = "all"


@dataclass(frozen=True, kw_only=True)
class LiquidationInput:
    """What the operator asks for.

    Attributes:
        symbols: the symbols to unwind (``BTC/USDT``); empty with ``all_symbols``.
        all_symbols: every symbol the leader trades; needs a second operator's approval.
        deadline_s: stop slicing this long after the unwind starts and report what remains.
        mode: ``twap`` (the remainder spread evenly over the slices left before the
            deadline) or ``participation`` (each child at most ``max_participation`` of
            the market volume traded since the previous slice).
        max_participation: the participation cap (0 < x <= 1).
        band_bps: never sell below mid * (1 - band) nor buy above mid * (1 + band), mid of
            the live book at slice time; what the band does not allow waits or remains.
        slice_interval_ms: time between slices.
        approval_timeout_s: how long an all-symbols run waits for its approval.
        lift_halt: raise HALTED engines to REDUCING and disengage the desk kill switch
            before unwinding (set by an emergency stop that chains into liquidation).
        reason: why (audit trail, journal).
        requested_by: who asked (the control plane fills it from the caller's key).
        dry_run: return the plan only; change nothing.
    """

    symbols: tuple[str, ...] = ()
    all_symbols: bool = False
    deadline_s: int = 600
    mode: str = "twap"
    max_participation: float = 0.1
    band_bps: float = 50.0
    slice_interval_ms: int = 2000
    approval_timeout_s: int = 3600
    lift_halt: bool = False
    reason: str = "liquidation"
    requested_by: str = "unknown"
    dry_run: bool = False


def check_input(request: LiquidationInput) -> None:
    """Refuse a bad request, naming the field and the allowed range.

    Raises:
        ValueError: the first problem found.
    """
    symbols = tuple(request.symbols)
    if request.all_symbols and symbols:
        raise ValueError("give symbols or all_symbols, not both")
    if not request.all_symbols and not symbols:
        raise ValueError("symbols: give at least one symbol (e.g. BTC/USDT), or all_symbols")
    bad = [s for s in symbols if not isinstance(s, str) or not SYMBOL.fullmatch(s)]
    if bad:
        raise ValueError(f"symbols {bad}: each must look like BTC/USDT")
    if len(set(symbols)) != len(symbols) or len(symbols) > MAX_SYMBOLS:
        raise ValueError(f"symbols: at most {MAX_SYMBOLS}, each once")
    if not 1 <= request.deadline_s <= 7 * 24 * 3600:
        raise ValueError(f"deadline_s must be in 1..604800 (got {request.deadline_s})")
    if request.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (got {request.mode!r})")
    if not 0 < request.max_participation <= 1:
        raise ValueError(f"max_participation must be in (0, 1] (got {request.max_participation})")
    if not 0 < request.band_bps <= 2000:
        raise ValueError(f"band_bps must be in (0, 2000] (got {request.band_bps})")
    if not 0 <= request.slice_interval_ms <= 3_600_000:
        raise ValueError(
            f"slice_interval_ms must be in 0..3600000 (got {request.slice_interval_ms})"
        )
    if not 1 <= request.approval_timeout_s <= 7 * 24 * 3600:
        raise ValueError(
            f"approval_timeout_s must be in 1..604800 (got {request.approval_timeout_s})"
        )


def workflow_id(request: LiquidationInput) -> str:
    """Return ``liquidate-<all | sorted symbols>`` (a dry run gets a unique id).

    Two runs over the same symbols cannot run at once (the start fails while one runs).

    Raises:
        ValueError: the request is invalid (see :func:`check_input`).
    """
    check_input(request)
    key = ALL if request.all_symbols else "+".join(sorted(request.symbols))
    key = key.replace("/", "-").lower()
    base = f"liquidate-{key}"
    return f"{base}-plan-{uuid.uuid4().hex[:12]}" if request.dry_run else base


def child_prefix(run_key: str) -> str:
    """Return ``liq-<10 hex of sha256(run_key)>-``: the client-id prefix of a run's children.

    ``run_key`` is the workflow id and run id: a later liquidation of the same symbols
    (same workflow id) must not collide with an earlier run's children at the venue.
    """
    return f"liq-{hashlib.sha256(run_key.encode()).hexdigest()[:10]}-"


def child_id(prefix: str, symbol_index: int, slice_no: int) -> str:
    """Return the client id of slice ``slice_no`` of symbol ``symbol_index`` (<= 36 chars)."""
    return f"{prefix}{symbol_index}-{slice_no}"


@dataclass(frozen=True, kw_only=True)
class SymbolPosition:
    """One symbol's position as the leader's journal has it (lots traded, fees aside)."""

    symbol: str
    qty: str
    mid: str


@dataclass(frozen=True, kw_only=True)
class LiquidationPlan:
    """What a run would touch (the dry run's answer, and the first step of a real run)."""

    leader: str
    symbols: tuple[str, ...]
    positions: tuple[SymbolPosition, ...]
    mode: str
    deadline_s: int
    band_bps: float
    max_participation: float
    slice_interval_ms: int
    needs_approval: bool


@dataclass(frozen=True, kw_only=True)
class ReduceInput:
    """Take ``symbols`` out of the strategy on the leader (and lift a halt if asked)."""

    symbols: tuple[str, ...]
    lift_halt: bool
    by: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReduceResult:
    """The positions to unwind, read after the symbols' quotes were withdrawn."""

    leader: str
    positions: tuple[SymbolPosition, ...]
    kill_switch_disengaged: bool = False


@dataclass(frozen=True, kw_only=True)
class UnwindInput:
    """The unwind of one run; everything a retried attempt needs to pick up."""

    child_prefix: str
    positions: tuple[SymbolPosition, ...]
    deadline_at: datetime
    mode: str
    max_participation: float
    band_bps: float
    slice_interval_ms: int
    by: str


@dataclass(frozen=True, kw_only=True)
class SymbolUnwind:
    """What the unwind did on one symbol."""

    symbol: str
    side: str
    start_qty: str
    filled: str
    remaining: str
    notional: str
    arrival_mid: str
    children: int
    slices: int
    max_child_participation: float | None = None
    slippage_bps: float | None = None  # against the mid at each slice (execution cost only)


@dataclass(frozen=True, kw_only=True)
class UnwindResult:
    """The unwind's outcome: per symbol, and why it stopped."""

    symbols: tuple[SymbolUnwind, ...]
    slices: int
    stopped: str  # "done" or "deadline"
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class ChildFills:
    """A run's child fills on one symbol, as journaled."""

    symbol: str
    qty: str
    notional: str
    children: int


@dataclass(frozen=True, kw_only=True)
class VerifyInput:
    """Which symbols must be flat."""

    symbols: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SymbolCheck:
    """One symbol after the unwind: journal net quantity, our open orders at the venue."""

    symbol: str
    journal_qty: str
    open_orders: int
    flat: bool


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """Flat in the journal and at the venue (balances = baseline + journaled fills)."""

    symbols: tuple[SymbolCheck, ...]
    balances_checked: bool
    balance_mismatches: tuple[str, ...]

    @property
    def flat(self) -> bool:
        """Tell whether every symbol is flat and the venue's balances agree."""
        return all(s.flat for s in self.symbols) and not self.balance_mismatches


@dataclass(frozen=True, kw_only=True)
class LiquidationResult:
    """The report: the plan, what was unwound, what remains, the verification."""

    dry_run: bool
    requested_by: str
    plan: LiquidationPlan
    started_at: datetime
    approved_by: str | None = None
    unwind: UnwindResult | None = None
    verify: VerifyResult | None = None
    flat: bool = False
    remaining: tuple[SymbolPosition, ...] = ()
    shortfall_bps: float | None = None
    duration_ms: int = 0
