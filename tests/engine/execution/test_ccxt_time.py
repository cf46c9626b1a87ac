"""The ccxt time counter: only the steps a call runs on the loop count, and a wrapped
call behaves like the call itself (result, error, cancellation)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot4.settings import ExchangeSettings
from engine.execution.ccxt_time import counted, spent_ns, timed
from engine.execution.venue import create_ws_client

SPIN_S = 0.02
SLEEP_S = 0.1


def _spin(seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


async def _busy_wait_busy() -> str:
    _spin(SPIN_S)  # like ccxt preparing a request
    await asyncio.sleep(SLEEP_S)  # like waiting for the venue: not ccxt's time on the loop
    _spin(SPIN_S)  # like ccxt parsing the answer
    return "answer"


async def _engine_work_meanwhile() -> None:
    await asyncio.sleep(SLEEP_S / 4)  # runs while the call waits for its answer
    _spin(2 * SPIN_S)


async def test_the_steps_run_on_the_loop_count_and_the_waits_and_others_do_not() -> None:
    before = spent_ns()
    other = asyncio.create_task(_engine_work_meanwhile())
    assert await timed(_busy_wait_busy()) == "answer"
    await other
    spent_s = (spent_ns() - before) / 1e9
    assert 2 * SPIN_S <= spent_s < 3.5 * SPIN_S, spent_s  # not the wait, not the other task


async def test_an_error_of_the_call_is_raised_and_its_time_counted() -> None:
    async def fails() -> None:
        _spin(SPIN_S)
        raise ValueError("venue said no")

    before = spent_ns()
    with pytest.raises(ValueError, match="venue said no"):
        await timed(fails())
    assert spent_ns() - before >= SPIN_S * 1e9


async def test_a_cancellation_reaches_the_wrapped_call() -> None:
    seen: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def caller() -> None:
        await timed(waits())

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


def test_a_counted_callback_adds_its_run_time_and_keeps_its_result_and_errors() -> None:
    def parse(message: str) -> str:
        _spin(SPIN_S)  # like ccxt parsing a websocket message
        if message == "bad":
            raise ValueError("cannot parse")
        return message.upper()

    handle = counted(parse)
    before = spent_ns()
    assert handle("book") == "BOOK"
    with pytest.raises(ValueError, match="cannot parse"):
        handle("bad")
    assert 2 * SPIN_S * 1e9 <= spent_ns() - before < 3.5 * SPIN_S * 1e9
    assert handle.__name__ == "parse"


def test_the_websocket_clients_message_handler_is_counted() -> None:
    """The venue factory wraps ccxt.pro's per-message callback (the reader's parse)."""
    client = create_ws_client(ExchangeSettings())
    assert client.handle_message.__wrapped__.__self__ is client
