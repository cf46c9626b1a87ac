"""Request parsing, API-key and HMAC-SHA256 signature checks, and request-weight limits.

Signed requests carry ``X-MBX-APIKEY`` and a ``signature`` over the query string followed
by the urlencoded body (Binance's ``totalParams``), with ``timestamp`` inside
``recvWindow`` of the server's clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qsl

from infra.exchange_sim.config import AccountSpec
from infra.exchange_sim.errors import AuthError, BadRequestError, RateLimitError, missing

DEFAULT_RECV_WINDOW_MS: Final = 5000
FUTURE_TOLERANCE_MS: Final = 1000
MAX_PARAM_LENGTH: Final = 1024


def parse_params(query: str, body: str) -> dict[str, str]:
    """Merge query string and urlencoded body into one parameter dict.

    Raises:
        BadRequestError: a parameter appears twice (-1101) or is absurdly long (-1100).
    """
    params: dict[str, str] = {}
    for part in (query, body):
        if not part:
            continue
        for key, value in parse_qsl(part, keep_blank_values=True):
            if key in params:
                raise BadRequestError(-1101, f"Duplicate values for parameter '{key}'.")
            if len(value) > MAX_PARAM_LENGTH or len(key) > 64:
                raise BadRequestError(-1100, f"Illegal characters found in parameter '{key[:64]}'.")
            params[key] = value
    return params


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Return (raw text without its signature parameter, the signature or None)."""
    parts = raw.split("&") if raw else []
    kept, signature = [], None
    for part in parts:
        if part.startswith("signature="):
            signature = part.removeprefix("signature=")
        else:
            kept.append(part)
    return "&".join(kept), signature


def hmac_hex(secret: str, payload: str) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``payload``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class Authenticator:
    """Map API keys to accounts and check signed requests."""

    def __init__(self, accounts: Iterable[AccountSpec], *, max_recv_window_ms: int) -> None:
        self._by_key = {account.api_key: account for account in accounts}
        self._max_recv_window_ms = max_recv_window_ms

    def account_for_key(self, api_key: str | None) -> AccountSpec:
        """Return the account of an API key (no signature needed: userDataStream).

        Raises:
            AuthError: missing (-2014) or unknown (-2015) API key.
        """
        if not api_key:
            raise AuthError(-2014, "API-key format invalid.")
        account = self._by_key.get(api_key)
        if account is None:
            raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
        return account

    def verify(
        self,
        *,
        api_key: str | None,
        query: str,
        body: str,
        params: dict[str, str],
        now_ms: int,
    ) -> AccountSpec:
        """Check key, timestamp and signature of a REST request; return its account.

        Raises:
            AuthError: bad key, signature or timestamp.
            BadRequestError: timestamp, signature or recvWindow missing or malformed.
        """
        account = self.account_for_key(api_key)
        self.check_timestamp(params, now_ms)
        query_rest, query_sig = _strip_signature(query)
        body_rest, body_sig = _strip_signature(body)
        signature = query_sig or body_sig
        if not signature:
            raise missing("signature")
        expected = hmac_hex(account.api_secret, query_rest + body_rest)
        if not hmac.compare_digest(expected, signature.lower()):
            raise AuthError(-1022, "Signature for this request is not valid.")
        return account

    def verify_ws_params(self, params: object, now_ms: int) -> AccountSpec:
        """Check a websocket API request signed over its sorted parameters.

        Raises:
            AuthError: bad key, signature or timestamp.
            BadRequestError: parameters missing or malformed.
        """
        if not isinstance(params, dict) or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in params.values()
        ):
            raise BadRequestError(-1130, "Data sent for parameter 'params' is not valid.")
        text = {str(k): str(v) for k, v in params.items()}
        account = self.account_for_key(text.get("apiKey"))
        self.check_timestamp(text, now_ms)
        signature = text.pop("signature", None)
        if not signature:
            raise missing("signature")
        payload = "&".join(f"{k}={text[k]}" for k in sorted(text))
        if not hmac.compare_digest(hmac_hex(account.api_secret, payload), signature.lower()):
            raise AuthError(-1022, "Signature for this request is not valid.")
        return account

    def check_timestamp(self, params: dict[str, str], now_ms: int) -> None:
        """Refuse a timestamp outside ``recvWindow`` (-1021).

        Raises:
            AuthError: the timestamp is too old or too far ahead (-1021).
            BadRequestError: timestamp or recvWindow missing or malformed.
        """
        timestamp = params.get("timestamp")
        if not timestamp or not timestamp.isdigit() or len(timestamp) > 15:
            raise missing("timestamp")
        window_text = params.get("recvWindow", str(DEFAULT_RECV_WINDOW_MS))
        if not window_text.isdigit() or len(window_text) > 9:
            raise BadRequestError(-1100, "Illegal characters found in parameter 'recvWindow'.")
        window = int(window_text)
        if window > self._max_recv_window_ms:
            raise BadRequestError(
                -1131, f"recvWindow must be less than {self._max_recv_window_ms}."
            )
        stamp = int(timestamp)
        if stamp > now_ms + FUTURE_TOLERANCE_MS:
            raise AuthError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now_ms - stamp > window:
            raise AuthError(-1021, "Timestamp for this request is outside of the recvWindow.")


class WeightLimiter:
    """Request weight per client IP in fixed one-minute windows (Binance's REQUEST_WEIGHT)."""

    def __init__(self, limit_per_minute: int) -> None:
        self.limit = limit_per_minute
        self._used: dict[str, tuple[int, int]] = {}

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        """Add a request's weight; return the minute's total.

        Raises:
            RateLimitError: the total is above the limit (HTTP 429, -1003).
        """
        minute = now_ms // 60_000
        window, used = self._used.get(ip, (minute, 0))
        if window != minute:
            used = 0
        used += weight
        self._used[ip] = (minute, used)
        if used > self.limit:
            retry_after = max(1, 60 - (now_ms % 60_000) // 1000)
            raise RateLimitError(
                f"Too much request weight used; current limit is {self.limit} request weight"
                " per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling"
                " the API.",
                retry_after_s=retry_after,
            )
        return used

    def used(self, ip: str, now_ms: int) -> int:
        """Return the weight used by ``ip`` in the current minute."""
        window, used = self._used.get(ip, (0, 0))
        return used if window == now_ms // 60_000 else 0
