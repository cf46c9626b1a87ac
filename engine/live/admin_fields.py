"""What each admin action accepts in its JSON body: one table, checked before it runs.

:data:`ACTION_FIELDS` names every engine action's own fields (besides ``by`` and
``reason``, :data:`COMMON_FIELDS`) with their type, bounds and pattern; the control
server answers 400 naming the field before anything runs, and the checked fields reach
the action's coroutine as keyword arguments.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from engine.live.gate import ENGINE_CONDITIONS

MODEL_VERSION: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SYMBOL: Final = r"[A-Z0-9]{1,15}/[A-Z0-9]{1,15}"
SYMBOL_LIST: Final = re.compile(rf"^(\*|{SYMBOL}(,{SYMBOL})*)$")
DECIMAL: Final = re.compile(r"^[0-9]{1,18}(\.[0-9]{1,18})?$")
CONDITION: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """One field an admin action accepts in its JSON body (besides ``by`` and ``reason``).

    Attributes:
        kind: ``str``, ``int`` or ``float`` (a bool is never taken for a number).
        required: the action cannot run without it.
        pattern: a ``str`` must match it in full.
        max_len: longest ``str``.
        reserved: values a ``str`` may not take (names the engine keeps for itself).
        low, high: bounds of a number (inclusive).
        help: what the field means (said in the 400 answer when it is wrong).
    """

    kind: type[str] | type[int] | type[float]
    required: bool = False
    pattern: re.Pattern[str] | None = None
    max_len: int = 500
    reserved: frozenset[str] = frozenset()
    low: float | None = None
    high: float | None = None
    help: str = ""


COMMON_FIELDS: Final = {"by": Field(kind=str, max_len=100), "reason": Field(kind=str)}
ACTION_FIELDS: Final[dict[str, dict[str, Field]]] = {
    "load_model": {
        "version": Field(kind=str, required=True, pattern=MODEL_VERSION, max_len=64,
                         help="the model version to load"),
    },
    "model_shadow": {
        "version": Field(kind=str, required=True, pattern=MODEL_VERSION, max_len=64,
                         help="the registered model version to score beside the active one"),
    },
    "model_canary": {
        "version": Field(kind=str, required=True, pattern=MODEL_VERSION, max_len=64,
                         help="the shadowed candidate"),
        "fraction": Field(kind=float, required=True, low=0.0, high=1.0,
                          help="share of the live prediction the candidate carries"),
    },
    "model_promote": {
        "version": Field(kind=str, required=True, pattern=MODEL_VERSION, max_len=64,
                         help="the candidate to make active"),
    },
    "model_abort": {
        "version": Field(kind=str, pattern=MODEL_VERSION, max_len=64,
                         help="the version whose rollout to undo (default: any candidate)"),
    },
    "reduce": {
        "symbols": Field(kind=str, required=True, pattern=SYMBOL_LIST,
                         help="comma-separated symbols (BTC/USDT,ETH/USDT) or * for all"),
        "lift_halt": Field(kind=int, low=0, high=1,
                           help="1: raise a HALTED engine to REDUCING (liquidation after a stop)"),
    },
    "restore": {
        "symbols": Field(kind=str, required=True, pattern=SYMBOL_LIST,
                         help="comma-separated symbols or * for all"),
    },
    "child_order": {
        "client_order_id": Field(kind=str, required=True, max_len=36,
                                 pattern=re.compile(r"^liq-[A-Za-z0-9._:/-]{1,32}$"),
                                 help="the child's id, liq-<...> (at most 36 characters)"),
        "symbol": Field(kind=str, required=True, pattern=re.compile(rf"^{SYMBOL}$"),
                        help="the symbol, e.g. BTC/USDT"),
        "side": Field(kind=str, required=True, pattern=re.compile(r"^(buy|sell)$"),
                      help="buy or sell"),
        "qty": Field(kind=str, required=True, pattern=DECIMAL, max_len=40,
                     help="quantity in the base asset, decimal text"),
        "limit_price": Field(kind=str, required=True, pattern=DECIMAL, max_len=40,
                             help="IOC limit price, decimal text"),
    },
    "liquidation_check": {
        "symbols": Field(kind=str, required=True, pattern=SYMBOL_LIST,
                         help="comma-separated symbols or * for all"),
    },
    "hold": {
        "condition": Field(kind=str, required=True, pattern=CONDITION, max_len=32,
                           reserved=ENGINE_CONDITIONS,
                           help="the operator condition holding the engine at REDUCING"),
    },
    "unhold": {
        "condition": Field(kind=str, required=True, pattern=CONDITION, max_len=32,
                           reserved=ENGINE_CONDITIONS, help="the operator condition to end"),
    },
    "journal_acks": {
        "since": Field(kind=float, required=True, low=0.0,
                       help="epoch seconds: the acknowledgements at or after it"),
    },
}  # fmt: skip
"""Each engine action's own fields; they reach its coroutine as keyword arguments."""


class FieldError(Exception):
    """The body of an admin request is wrong; the message names the field (a 400)."""


def check_fields(action: str, document: object) -> dict[str, object]:
    """Return ``action``'s fields from a parsed JSON body, each checked against its spec.

    Raises:
        FieldError: not a JSON object, unknown, ill-typed or missing fields.
    """
    if not isinstance(document, dict):
        raise FieldError("body must be a JSON object")
    allowed = COMMON_FIELDS | ACTION_FIELDS.get(action, {})
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise FieldError(f"unknown field(s) {unknown}; {action} accepts {sorted(allowed)}")
    for name, spec in allowed.items():
        if spec.required and name not in document:
            raise FieldError(f"field {name!r} is required: {spec.help or name}")
    for name, value in document.items():
        _check_field(name, value, allowed[name])
    return {str(k): v for k, v in document.items()}


def _check_field(name: str, value: object, spec: Field) -> None:
    """Raise :class:`FieldError` naming ``name`` unless ``value`` fits ``spec``."""
    what = f" ({spec.help})" if spec.help else ""
    if spec.kind is str:
        if not isinstance(value, str) or not value.strip() or len(value) > spec.max_len:
            raise FieldError(
                f"field {name!r} must be a non-empty string of at most {spec.max_len}"
                f" characters{what}"
            )
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            raise FieldError(f"field {name!r} must match {spec.pattern.pattern}{what}")
        if value in spec.reserved:
            raise FieldError(
                f"field {name!r} may not be {value!r}: the engine keeps"
                f" {sorted(spec.reserved)} for itself{what}"
            )
        return
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or (spec.kind is int and not isinstance(value, int)):
        raise FieldError(
            f"field {name!r} must be {'an integer' if spec.kind is int else 'a number'}{what}"
        )
    number = float(value)  # type: ignore[arg-type]
    if (
        not math.isfinite(number)
        or (spec.low is not None and number < spec.low)
        or (spec.high is not None and number > spec.high)
    ):
        bounds = (
            f"between {spec.low} and {spec.high}" if spec.low is not None and spec.high is not None
            else f">= {spec.low}" if spec.low is not None
            else f"<= {spec.high}" if spec.high is not None
            else "finite"
        )  # fmt: skip
        raise FieldError(f"field {name!r} must be {bounds} (got {value}){what}")
