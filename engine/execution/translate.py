"""The one boundary where ccxt's exceptions become the engine's error tree.

ccxt's hierarchy (``ccxt/base/errors.py``) is organised by what went wrong; ours by what
the caller must do. The table below is checked top to bottom, most specific first,
because ccxt nests throttling (``RateLimitExceeded``, ``DDoSProtection``) and sequence
errors (``ChecksumError``) under ``NetworkError``:

===========================================  =============================================
ccxt                                         engine
===========================================  =============================================
RateLimitExceeded, DDoSProtection            RateLimitedError (retry_after_s from headers)
ChecksumError                                SequenceGapError
OperationFailed, NetworkError (timeouts,     TemporaryError, or UnknownOutcomeError when
5xx, maintenance), BadResponse, ...         the request was an order send
AuthenticationError, PermissionDenied,       AuthenticationFailedError
AccountSuspended
InsufficientFunds                            InsufficientFundsError
OrderNotFound                                OrderNotFoundError
InvalidOrder, OperationRejected              OrderRejectedError
NotSupported, ArgumentsRequired,             VenueProtocolError
ExchangeClosedByUser, other BaseError
BadRequest, BadSymbol of an order send       OrderRejectedError
BadRequest, BadSymbol, other ExchangeError   RequestRejectedError
===========================================  =============================================

A send whose connection failed after the request may have left the process is an
*unknown outcome*: we cannot tell "never arrived" from "arrived, answer lost", so every
network-level failure of an order send becomes :class:`UnknownOutcomeError`, except the
ones the venue answered (429: refused before processing; -1021 timestamp: refused).

Messages never carry secrets: the API key, the secret and any ``signature=`` value are
redacted before the message is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import aiohttp
import ccxt

from engine.errors import (
    EngineError,
    OperationalError,
    RequestRejectedError,
    TemporaryError,
)
from engine.execution.errors import (
    AuthenticationFailedError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderRejectedError,
    RateLimitedError,
    SequenceGapError,
    UnknownOutcomeError,
    VenueProtocolError,
)

_SIGNATURE = re.compile(r"(signature=)[0-9a-fA-F]+")
_MAX_MESSAGE = 400  # venue bodies can be long; the start says what happened


class Redactor:
    """Remove secrets from text that may reach a log line or an error message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is removed whole
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret and request signature replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _SIGNATURE.sub(r"\1***", text)


def translate(  # noqa: PLR0911, PLR0912 - a flat table reads best as one ladder
    error: BaseException,
    *,
    venue: str,
    operation: str,
    redact: Redactor,
    retry_after_s: float,
    client_order_id: str | None = None,
) -> EngineError | None:
    """Return the engine error for a ccxt (or transport) exception, or None if foreign.

    Args:
        error: what ccxt raised.
        venue: ccxt id of the venue (goes into the message).
        operation: what we were doing, e.g. ``create_order``.
        redact: removes secrets from the message.
        retry_after_s: the wait to attach to a rate-limit error (from the venue's headers).
        client_order_id: set when the request was an order send: network failures then
            mean an unknown outcome, not a plain temporary error.

    Returns:
        The error to raise ``from error``; None when ``error`` is not a venue error (a
        bug of ours, which must propagate unchanged).
    """
    detail = redact(str(error))[:_MAX_MESSAGE]
    message = f"{venue} {operation}: {type(error).__name__}: {detail}"
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimitedError(message, retry_after_s=retry_after_s)
    if isinstance(error, ccxt.ChecksumError):
        return SequenceGapError(message)
    if isinstance(error, ccxt.InvalidNonce):
        # Binance -1021: our timestamp is outside recvWindow; refused, never executed
        return TemporaryError(message)
    if _is_transport_failure(error):
        if client_order_id is not None:
            return UnknownOutcomeError(message, client_order_id=client_order_id)
        return TemporaryError(message)
    if isinstance(error, ccxt.AuthenticationError):
        return AuthenticationFailedError(message)
    if isinstance(error, ccxt.InsufficientFunds):
        return InsufficientFundsError(message)
    if isinstance(error, ccxt.OrderNotFound):
        return OrderNotFoundError(message)
    if isinstance(error, ccxt.InvalidOrder | ccxt.OperationRejected):
        return OrderRejectedError(message)
    if client_order_id is not None and isinstance(error, ccxt.BadRequest | ccxt.BadSymbol):
        # an order send the venue answered with its reason (Binance -1013 "Filter failure:
        # NOTIONAL", -1100 bad parameter): refused before matching, never placed. Taking it
        # for an unknown outcome held the order UNKNOWN for the not-found grace period.
        return OrderRejectedError(message)
    if isinstance(error, ccxt.NotSupported | ccxt.ArgumentsRequired | ccxt.ExchangeClosedByUser):
        return VenueProtocolError(message)
    if isinstance(error, ccxt.ExchangeError):
        return RequestRejectedError(message)
    if isinstance(error, ccxt.BaseError):
        return OperationalError(message)
    return None


def _is_transport_failure(error: BaseException) -> bool:
    """Tell whether the request failed on the wire (answer missing, garbled or 5xx)."""
    # OperationFailed: ccxt's root of transient failures (NetworkError, BadResponse,
    # CancelPending) and what Binance's -1001 "Internal error" with a 5xx raises
    if isinstance(error, ccxt.OperationFailed):
        return True
    # ccxt wraps aiohttp.ClientError that is not a connection error (e.g. a payload cut
    # mid-body) as a bare ExchangeError; its cause tells the truth
    if isinstance(error, ccxt.ExchangeError) and isinstance(error.__cause__, aiohttp.ClientError):
        return True
    return isinstance(error, TimeoutError | ConnectionError)
