"""How long the event loop has spent running ccxt's code, for latencies that exclude it.

The engine hands its orders to ccxt one after another on one event loop, and ccxt's
synchronous part of a request (market lookup, number formatting, signing, building the
HTTP request) runs before the next hand-off. So the wall time from a market-data message
to an order's hand-off contains, besides the engine's own work, the ccxt time of the
orders handed off before it. Tick-to-order is specified *excluding ccxt's own time*:
every ccxt call made through the gateway or a feed is wrapped in :func:`timed`, which
adds the time each step of the call ran on the loop to one counter, and a latency
excluding ccxt is ``(t1 - t0) - (spent at t1 - spent at t0)``.

The websocket reader is a task of ccxt's own: its parsing of each incoming message (the
``handle_message`` callback, which also updates ccxt's order-book cache) is counted by
:func:`counted`. What is still not counted (so it stays in the engine's share): aiohttp
reading the frames, and ccxt's other internal tasks (its request throttler).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class _Spent:
    # one counter for the process: under the GIL one thread runs Python at a time, so a
    # ccxt call on another thread's loop holds the engine's loop up just the same
    ns = 0


def spent_ns() -> int:
    """Return the nanoseconds the loop has run inside timed ccxt calls (since import)."""
    return _Spent.ns


class _HandOver:
    at_ns = 0
    spent_ns = 0


def mark_hand_over() -> tuple[int, int]:
    """Stamp the moment ccxt handed a feed market data (its watch call returned).

    Where tick-to-order starts: a feed calls this first thing after the watch returns,
    before converting and checking the data, and the engine reads it when the records
    reach it, in the same synchronous call, so no other feed stamps in between (a feed
    that awaits something first puts its stamp back with :func:`restore_hand_over`).
    Returns the stamp, as :func:`last_hand_over` would.
    """
    _HandOver.at_ns = time.monotonic_ns()
    _HandOver.spent_ns = _Spent.ns
    return _HandOver.at_ns, _HandOver.spent_ns


def restore_hand_over(stamp: tuple[int, int]) -> None:
    """Make ``stamp`` (from :func:`mark_hand_over`) the latest hand-over again."""
    _HandOver.at_ns, _HandOver.spent_ns = stamp


def last_hand_over() -> tuple[int, int]:
    """Return ``(time.monotonic_ns(), spent_ns())`` of the latest :func:`mark_hand_over`."""
    return _HandOver.at_ns, _HandOver.spent_ns


# (time.monotonic_ns(), spent_ns()) when the adapter began the current venue request:
# per task context, so the order task that made a request reads its own stamp
_REQUEST_STARTED: ContextVar[tuple[int, int] | None] = ContextVar("request_started", default=None)


def mark_request_start() -> None:
    """Stamp the moment the adapter hands a request towards ccxt (its first attempt only).

    Where tick-to-order ends: after the order client's translation, the retry wrapper and
    the circuit breaker, before the venue-weight pacing (which waits only when the
    venue's request budget runs low, and is counted apart) and ccxt's own call.
    """
    if _REQUEST_STARTED.get() is None:
        _REQUEST_STARTED.set((time.monotonic_ns(), _Spent.ns))


def begin_request() -> None:
    """Forget the stamp of an earlier request made in this context."""
    _REQUEST_STARTED.set(None)


def request_started() -> tuple[int, int] | None:
    """Return the stamp of the request begun in this context (None: it never got that far)."""
    return _REQUEST_STARTED.get()


class _Timed(Awaitable[T]):
    """Drives a coroutine step by step, adding each step's run time to the counter."""

    __slots__ = ("_awaitable",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self._awaitable = awaitable

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine: Any = self._awaitable.__await__()  # send, throw and close, like a generator
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.monotonic_ns()
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            finally:
                _Spent.ns += time.monotonic_ns() - started
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as e:  # a cancellation, passed into the call
                value, error = None, e


def timed(call: Awaitable[T]) -> Awaitable[T]:
    """Await ``call`` with its run time on the loop counted as ccxt's."""
    return _Timed(call)


def counted(function: Callable[P, T]) -> Callable[P, T]:
    """Return ``function`` with the time of each call counted as ccxt's (a sync callback)."""

    @wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.monotonic_ns()
        try:
            return function(*args, **kwargs)
        finally:
            _Spent.ns += time.monotonic_ns() - started

    return call
