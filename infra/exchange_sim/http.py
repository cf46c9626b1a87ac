"""The REST edge: parameter parsing, authentication, request weight, faults, error JSON.

Every handler gets its parameters through :class:`Params` and raises :class:`VenueError`
for anything it refuses; :func:`make_middleware` turns those (and any bug) into Binance's
``{"code", "msg"}`` answers, so malformed input can never crash the server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from infra.exchange_sim.auth import Authenticator, WeightLimiter, parse_params
from infra.exchange_sim.config import AccountSpec
from infra.exchange_sim.errors import BadRequestError, RateLimitError, VenueError, illegal, missing
from infra.exchange_sim.faults import ErrorRate, Latency, RateLimitStorm
from infra.exchange_sim.metrics import METRICS_KEY
from infra.exchange_sim.units import parse_decimal
from infra.exchange_sim.venue import Venue

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=StrEnum)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

VENUE_KEY: Final = web.AppKey("venue", Venue)
AUTH_KEY: Final = web.AppKey("auth", Authenticator)
LIMITER_KEY: Final = web.AppKey("limiter", WeightLimiter)
FAULT_RNG_KEY: Final = web.AppKey("fault_rng", random.Random)


class Params:
    """Typed access to a request's merged query and body parameters."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def text(self, name: str, *, required: bool = True, max_length: int = 64) -> str | None:
        """Return a string parameter.

        Raises:
            BadRequestError: missing (-1102) or too long (-1100).
        """
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return None
        if len(value) > max_length or not value.isprintable():
            raise illegal(name)
        return value

    def integer(
        self, name: str, *, default: int | None = None, low: int = 0, high: int = 2**62
    ) -> int | None:
        """Return an integer parameter within [low, high] (``default`` when absent).

        Raises:
            BadRequestError: not an integer or out of range.
        """
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if not value.lstrip("-").isdigit() or len(value) > 20:
            raise illegal(name)
        number = int(value)
        if not low <= number <= high:
            raise BadRequestError(-1100, f"Parameter '{name}' must be between {low} and {high}.")
        return number

    def decimal(self, name: str) -> Decimal | None:
        """Return a positive decimal parameter, or None when absent.

        Raises:
            BadRequestError: malformed (-1100).
        """
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return parse_decimal(name, value)

    def choice(self, name: str, enum: type[E], *, default: E | None = None) -> E:
        """Return an enum parameter.

        Raises:
            BadRequestError: missing (-1102) or not one of the enum's values (-1100).
        """
        value = self.values.get(name)
        if value is None or value == "":
            if default is None:
                raise missing(name)
            return default
        try:
            return enum(value)
        except ValueError:
            raise BadRequestError(-1100, f"Invalid value for parameter '{name}'.") from None

    def symbol(self, venue: Venue) -> str:
        """Return a listed symbol.

        Raises:
            BadRequestError: missing (-1102) or not listed (-1121).
        """
        symbol = self.text("symbol")
        assert symbol is not None
        venue.engine.market(symbol)
        return symbol


@dataclass(frozen=True, slots=True)
class Signed:
    """A verified signed request: its account and parameters."""

    account: AccountSpec
    params: Params


async def read_params(request: web.Request) -> tuple[Params, str]:
    """Return the merged parameters and the raw body text."""
    body = ""
    if request.can_read_body:
        raw = await request.read()
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(-1100, "Illegal characters found in the request body.") from None
    return Params(parse_params(request.query_string, body)), body


async def signed(request: web.Request) -> Signed:
    """Verify a signed request and return its account and parameters.

    Raises:
        VenueError: bad key, signature, timestamp or parameters.
    """
    params, body = await read_params(request)
    account = request.app[AUTH_KEY].verify(
        api_key=request.headers.get("X-MBX-APIKEY"),
        query=request.query_string,
        body=body,
        params=params.values,
        now_ms=request.app[VENUE_KEY].clock(),
    )
    return Signed(account=account, params=params)


def weight_of(request: web.Request) -> int:
    """Return the request weight of a route (Binance's published weights, roughly)."""
    path, method = request.path, request.method
    symbol_given = "symbol" in request.query
    if path.endswith("/depth"):
        limit = request.query.get("limit", "100")
        return 5 if not limit.isdigit() or int(limit) <= 100 else 25 if int(limit) <= 500 else 50
    weights = {
        "/api/v3/exchangeInfo": 20,
        "/api/v3/trades": 25,
        "/api/v3/account": 20,
        "/api/v3/myTrades": 20,
        "/api/v3/allOrders": 20,
        "/api/v3/ticker/24hr": 2 if symbol_given else 80,
        "/api/v3/ticker/bookTicker": 2 if symbol_given else 4,
        "/api/v3/openOrders": 6 if symbol_given or method == "DELETE" else 80,
        "/api/v3/order": 4 if method == "GET" else 1,
    }
    return weights.get(path, 1)


def json_error(error: VenueError) -> web.Response:
    """Return Binance's error answer for ``error``."""
    response = web.json_response(error.as_json(), status=error.status)
    if isinstance(error, RateLimitError):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def make_middleware() -> Middleware:
    """Return the middleware applying faults, request weight and error translation."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        venue = request.app[VENUE_KEY]
        faults = venue.faults
        fault_answers = request.app[METRICS_KEY].fault_answers
        latency = faults.get(Latency)
        if latency is not None:
            fault_answers.labels(fault=Latency.name).inc()
            await asyncio.sleep(latency.ms / 1000)
        storm = faults.get(RateLimitStorm)
        if storm is not None:
            fault_answers.labels(fault=RateLimitStorm.name).inc()
            return json_error(
                RateLimitError("Too many requests; IP banned.", retry_after_s=storm.retry_after_s)
            )
        error_rate = faults.get(ErrorRate)
        if error_rate is not None and request.app[FAULT_RNG_KEY].random() < error_rate.share:
            fault_answers.labels(fault=ErrorRate.name).inc()
            # Plain text, like Binance's gateway: ccxt then raises ExchangeNotAvailable
            # (a NetworkError, retried) instead of an exchange-level error.
            return web.Response(text="Service Unavailable.", status=503)
        ip = request.remote or "unknown"
        limiter = request.app[LIMITER_KEY]
        try:
            used = limiter.charge(ip, weight_of(request), venue.clock())
            response = await handler(request)
        except VenueError as e:
            response = json_error(e)
            used = limiter.used(ip, venue.clock())
        except web.HTTPException:
            raise
        except Exception:
            log.exception("exchange_sim_request_failed", path=request.path, method=request.method)
            response = web.json_response(
                {"code": -1000, "msg": "An unknown error occured while processing the request."},
                status=500,
            )
            used = limiter.used(ip, venue.clock())
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return response

    return middleware
