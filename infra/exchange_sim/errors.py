"""Errors of the exchange simulator, shaped like Binance's so ccxt maps them unchanged.

VenueError                  base: a Binance error code, message and HTTP status
├── BadRequestError         -1100/-1102/-1104/-1121/-1130: malformed or missing parameter
├── FilterError             -1013: PRICE_FILTER, LOT_SIZE, NOTIONAL, market closed
├── OrderRejectedError      -2010: duplicate client id, insufficient balance, post-only cross
├── UnknownOrderError       -2011 (cancel) / -2013 (query): no such order
├── AuthError               -1022 bad signature, -2014/-2015 bad API key, -1021 timestamp
└── RateLimitError          -1003 (HTTP 429, with Retry-After)

The engine raises them; the REST layer turns them into ``{"code": ..., "msg": ...}`` at one
boundary (:func:`VenueError.as_json`).
"""

from __future__ import annotations

from typing import Final

INSUFFICIENT_BALANCE: Final = "Account has insufficient balance for requested action."
DUPLICATE_ORDER: Final = "Duplicate order sent."
WOULD_TAKE: Final = "Order would immediately match and take."
MARKET_CLOSED: Final = "Market is closed."
UNKNOWN_ORDER: Final = "Unknown order sent."
ORDER_MISSING: Final = "Order does not exist."


class VenueError(Exception):
    """A request the venue refuses, with Binance's code, message and HTTP status."""

    status = 400

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def as_json(self) -> dict[str, object]:
        """Return Binance's error body."""
        return {"code": self.code, "msg": self.msg}


class BadRequestError(VenueError):
    """A parameter is missing, malformed or not allowed."""


class FilterError(VenueError):
    """An order breaks a symbol filter, or the market is closed."""

    def __init__(self, msg: str) -> None:
        super().__init__(-1013, msg)


class OrderRejectedError(VenueError):
    """A new order was refused (-2010)."""

    def __init__(self, msg: str) -> None:
        super().__init__(-2010, msg)


class UnknownOrderError(VenueError):
    """The order does not exist (or is no longer open, for a cancel)."""


class AuthError(VenueError):
    """Missing or wrong API key, signature or timestamp."""

    status = 401


class RateLimitError(VenueError):
    """Too much request weight in the current minute."""

    status = 429

    def __init__(self, msg: str, *, retry_after_s: int) -> None:
        super().__init__(-1003, msg)
        self.retry_after_s = retry_after_s


def missing(name: str) -> BadRequestError:
    """Return the error for a mandatory parameter that was not sent."""
    return BadRequestError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, detail: str = "") -> BadRequestError:
    """Return the error for a parameter with an illegal value."""
    suffix = f" {detail}" if detail else ""
    return BadRequestError(
        -1100, f"Illegal characters found in parameter '{name}';{suffix}".rstrip(";")
    )
