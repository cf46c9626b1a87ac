from __future__ import annotations

import ccxt
import pytest

from engine.errors import OperationalError, RequestRejectedError, TemporaryError
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
from engine.execution.translate import Redactor, translate

SECRET = "s3cr3t-VALUE-xyz"
KEY = "api-KEY-123"


def _translate(error: BaseException, client_order_id: str | None = None):
    return translate(
        error,
        venue="binance",
        operation="op",
        redact=Redactor([SECRET, KEY]),
        retry_after_s=7.0,
        client_order_id=client_order_id,
    )


@pytest.mark.parametrize(
    ("ccxt_error", "expected"),
    [
        (ccxt.RateLimitExceeded, RateLimitedError),
        (ccxt.DDoSProtection, RateLimitedError),
        (ccxt.ChecksumError, SequenceGapError),
        (ccxt.InvalidNonce, TemporaryError),
        (ccxt.RequestTimeout, TemporaryError),
        (ccxt.ExchangeNotAvailable, TemporaryError),
        (ccxt.OnMaintenance, TemporaryError),
        (ccxt.NetworkError, TemporaryError),
        (ccxt.BadResponse, TemporaryError),
        (ccxt.OperationFailed, TemporaryError),
        (ccxt.AuthenticationError, AuthenticationFailedError),
        (ccxt.PermissionDenied, AuthenticationFailedError),
        (ccxt.InsufficientFunds, InsufficientFundsError),
        (ccxt.OrderNotFound, OrderNotFoundError),
        (ccxt.InvalidOrder, OrderRejectedError),
        (ccxt.OperationRejected, OrderRejectedError),
        (ccxt.NotSupported, VenueProtocolError),
        (ccxt.BadSymbol, RequestRejectedError),
        (ccxt.ExchangeError, RequestRejectedError),
        (ccxt.BaseError, OperationalError),
    ],
)
def test_every_ccxt_error_maps_to_the_action_the_caller_must_take(ccxt_error, expected):
    error = _translate(ccxt_error("binance boom"))
    assert type(error) is expected or (expected is TemporaryError and type(error) is TemporaryError)


def test_rate_limit_error_carries_retry_after():
    error = _translate(ccxt.RateLimitExceeded("429"))
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 7.0


def test_network_failure_of_an_order_send_is_an_unknown_outcome():
    error = _translate(ccxt.RequestTimeout("timeout"), client_order_id="b-1-7")
    assert isinstance(error, UnknownOutcomeError)
    assert error.client_order_id == "b-1-7"


@pytest.mark.parametrize("ccxt_error", [ccxt.BadRequest, ccxt.BadSymbol])
def test_an_order_send_answered_400_is_a_rejection_not_an_unknown_outcome(ccxt_error):
    error = _translate(ccxt_error('binance {"code": -1013, "msg": "Filter failure: NOTIONAL"}'),
                       client_order_id="b-1-7")  # fmt: skip
    assert type(error) is OrderRejectedError
    assert type(_translate(ccxt_error("binance boom"))) is RequestRejectedError  # not a send


def test_throttled_order_send_is_not_an_unknown_outcome():
    assert isinstance(_translate(ccxt.RateLimitExceeded("429"), "b-1-7"), RateLimitedError)


def test_foreign_exceptions_are_not_translated():
    assert _translate(KeyError("bug")) is None


def test_messages_never_carry_secrets_or_signatures():
    raw = ccxt.AuthenticationError(
        f"binance GET /api/v3/account?timestamp=1&signature=abcdef0123 key={KEY} {SECRET}"
    )
    message = str(_translate(raw))
    assert SECRET not in message
    assert KEY not in message
    assert "abcdef0123" not in message
