"""Exchange adapter: the only package of bot4 that imports ccxt.

ccxt async REST for orders and account, ccxt.pro websockets for market data; every REST
call goes through :class:`VenueGateway` (circuit breaker per endpoint group, pacing on the
venue's weight headers, retries with full jitter for temporary errors only, ccxt errors
translated once into :mod:`engine.execution.errors`). Orders always carry the caller's
client order id; a lost answer is resolved by that id, never by resending.
"""

from engine.execution.account import AccountClient
from engine.execution.backoff import Backoff, BackoffPolicy
from engine.execution.book import book_to_levels, checked_levels, integrity_problem
from engine.execution.book_feed import BookFeed, BookFeedConfig, BookStatus
from engine.execution.breaker import BreakerConfig, BreakerState, CircuitBreaker
from engine.execution.clock import Clock, SystemClock
from engine.execution.deadman import DeadMansSwitch, DeadMansSwitchConfig
from engine.execution.errors import (
    AuthenticationFailedError,
    CircuitOpenError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderRejectedError,
    RateLimitedError,
    SequenceGapError,
    UnknownOutcomeError,
    VenueProtocolError,
)
from engine.execution.gateway import EndpointGroup, GatewayConfig, VenueGateway
from engine.execution.instruments import Instrument, instrument_from_market
from engine.execution.market_data import (
    DepthSnapshot,
    PublicTrade,
    TopOfBook,
    fetch_depth,
    fetch_public_trades,
    fetch_top_of_book,
)
from engine.execution.models import Balance, Fill, NotPlaced, OrderRequest, OrderState, OrderStatus
from engine.execution.orders import OrderClient, ResolvePolicy
from engine.execution.ratelimit import RateLimitConfig, WeightTracker
from engine.execution.retry import RetryPolicy, call_with_retry
from engine.execution.session import VenueSession, load_instruments, open_session
from engine.execution.trade_feed import TradeFeed, TradeFeedConfig, trades_to_records
from engine.execution.venue import create_rest_client, create_ws_client
from engine.execution.watchdog import StreamWatchdog

__all__ = [
    "AccountClient",
    "AuthenticationFailedError",
    "Backoff",
    "BackoffPolicy",
    "Balance",
    "BookFeed",
    "BookFeedConfig",
    "BookStatus",
    "BreakerConfig",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "DeadMansSwitch",
    "DeadMansSwitchConfig",
    "DepthSnapshot",
    "EndpointGroup",
    "Fill",
    "GatewayConfig",
    "Instrument",
    "InsufficientFundsError",
    "NotPlaced",
    "OrderClient",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "PublicTrade",
    "RateLimitConfig",
    "RateLimitedError",
    "ResolvePolicy",
    "RetryPolicy",
    "SequenceGapError",
    "StreamWatchdog",
    "SystemClock",
    "TopOfBook",
    "TradeFeed",
    "TradeFeedConfig",
    "UnknownOutcomeError",
    "VenueGateway",
    "VenueProtocolError",
    "VenueSession",
    "WeightTracker",
    "book_to_levels",
    "call_with_retry",
    "checked_levels",
    "create_rest_client",
    "create_ws_client",
    "fetch_depth",
    "fetch_public_trades",
    "fetch_top_of_book",
    "instrument_from_market",
    "integrity_problem",
    "load_instruments",
    "open_session",
    "trades_to_records",
]
