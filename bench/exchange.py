"""Exchange simulator throughput and order round trip through the adapter (ccxt).

    .venv/bin/python -m bench.exchange [--seconds 10] [--orders 500] [--agent-rate 5000]

Starts the simulator as its own process on a free port (as the stack does), then:

- ``sim_messages_per_s``: market-data websocket messages (depth diffs and trades of every
  symbol) one subscriber receives per second while the background agents trade at
  ``--agent-rate`` orders per second;
- ``order_round_trip_p50_us`` / ``_p99_us``: ``OrderClient.create_order`` (create → ack)
  through the adapter and ccxt against a quiet simulator;
- ``ccxt_share``: the share of that round trip spent inside ccxt itself (signing, request
  building, parsing), i.e. inside ``create_order`` but outside its HTTP ``fetch``.

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bot4.settings import ExchangeSettings, Settings
from engine.execution import OrderRequest, fetch_top_of_book, open_session


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_simulator(agent_rate: float) -> Iterator[ExchangeSettings]:
    """Run ``python -m infra.exchange_sim serve`` until the block ends."""
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-sim-"))
    exchange = ExchangeSettings(port=_free_port(), sim_agent_orders_per_s=agent_rate)
    env = {**os.environ, **Settings(home=home, exchange=exchange).to_env()}
    with (home / "sim.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.exchange_sim", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"simulator did not start: {(home / 'sim.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{exchange.base_url()}/api/v3/ping", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield exchange
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


async def measure_messages(exchange: ExchangeSettings, seconds: float) -> float:
    """Count market-data messages one websocket subscriber receives per second."""
    streams = []
    for symbol in exchange.symbols:
        code = symbol.replace("/", "").lower()
        streams += [f"{code}@depth@100ms", f"{code}@trade"]
    received = 0
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{exchange.ws_url()}/ws") as ws,
    ):
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
        await asyncio.sleep(1.0)  # let the agents warm the books up
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            try:
                message = await asyncio.wait_for(ws.receive(), timeout=seconds - elapsed)
            except TimeoutError:
                break
            if message.type == aiohttp.WSMsgType.TEXT and '"e"' in message.data:
                received += 1
    return received / seconds


def _timed(
    original: Callable[..., Awaitable[Any]], into: list[float]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return wrapper


async def measure_ccxt_share(exchange: ExchangeSettings, orders: int) -> dict[str, float]:
    """Order round trips with the ccxt-internal share (ccxt time minus its HTTP time)."""
    venue = await open_session(exchange)
    try:
        symbol = exchange.symbols[0]
        instrument = venue.instruments[symbol]
        top = await fetch_top_of_book(venue.rest, instrument)
        assert top.bid_ticks is not None, "quiet simulator must have a bid ladder"
        price = instrument.ticks_to_price(top.bid_ticks - top.bid_ticks // 10)
        client = venue.rest.exchange
        in_ccxt: list[float] = []
        in_http: list[float] = []
        # Instance attributes shadow the class methods: only this benchmark's client.
        client.create_order = _timed(client.create_order, in_ccxt)
        client.fetch = _timed(client.fetch, in_http)
        round_trips: list[float] = []
        ccxt_only: list[float] = []
        for index in range(orders):
            request = OrderRequest(
                client_order_id=f"bench-{os.getpid()}-{index}",
                symbol=symbol,
                side="buy",
                type="limit",
                amount=instrument.lots_to_qty(1000),
                price=price,
            )
            in_ccxt.clear()
            in_http.clear()
            started = time.perf_counter()
            await venue.orders.create_order(request)
            round_trips.append(time.perf_counter() - started)
            ccxt_only.append(sum(in_ccxt) - sum(in_http))
            if index % 100 == 99:
                await venue.orders.cancel_all(symbol)  # keep the book and account small
        await venue.orders.cancel_all(symbol)
    finally:
        await venue.close()
    total_us = np.array(round_trips) * 1e6
    return {
        "order_round_trip_p50_us": round(float(np.percentile(total_us, 50)), 1),
        "order_round_trip_p99_us": round(float(np.percentile(total_us, 99)), 1),
        "ccxt_share": round(sum(ccxt_only) / sum(round_trips), 3),
        "ccxt_internal_mean_us": round(sum(ccxt_only) / orders * 1e6, 1),
    }


def main() -> None:
    """Measure and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="message-rate window")
    parser.add_argument("--orders", type=int, default=500, help="orders to time")
    parser.add_argument("--agent-rate", type=float, default=5000.0, help="agent orders/s")
    args = parser.parse_args()
    report: dict[str, object] = {"orders": args.orders, "agent_orders_per_s": args.agent_rate}
    with running_simulator(agent_rate=0.0) as quiet:
        report.update(asyncio.run(measure_ccxt_share(quiet, args.orders)))
    with running_simulator(agent_rate=args.agent_rate) as busy:
        report["sim_messages_per_s"] = round(asyncio.run(measure_messages(busy, args.seconds)))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
