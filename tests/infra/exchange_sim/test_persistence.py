"""The simulator as a process: `python -m infra.exchange_sim serve`, stopped and restarted."""

from __future__ import annotations

from pathlib import Path

from tests.stubs.exchange_sim import ccxt_binance, start_sim_process, stop_sim_process
from tests.stubs.ports import free_ports

BTC = "BTC/USDT"


async def _session(port: int, action: str) -> dict[str, object]:
    client = ccxt_binance(port)
    try:
        await client.load_markets()
        if action == "trade":
            resting = await client.create_order(
                BTC, "limit", "buy", 0.01, 50_000, {"clientOrderId": "keep-me"}
            )
            filled = await client.create_order(BTC, "market", "buy", 0.01)
            return {"resting": resting["id"], "filled": filled["id"]}
        opened = await client.fetch_open_orders(BTC)
        trades = await client.fetch_my_trades(BTC)
        balance = await client.fetch_balance()
        fresh = await client.create_order(BTC, "market", "buy", 0.001)
        return {"open": opened, "trades": trades, "balance": balance, "fresh": fresh}
    finally:
        await client.close()


async def test_restart_keeps_orders_trades_balances_and_continues_ids(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    process = start_sim_process(tmp_path, port)
    try:
        before = await _session(port, "trade")
    finally:
        assert stop_sim_process(process) == 0
    assert (tmp_path / "exchange" / "sim.db").exists()
    process = start_sim_process(tmp_path, port)
    try:
        after = await _session(port, "read")
    finally:
        stop_sim_process(process)
    opened, trades, balance, fresh = (
        after["open"],
        after["trades"],
        after["balance"],
        after["fresh"],
    )
    assert [o["clientOrderId"] for o in opened] == ["keep-me"]  # type: ignore[attr-defined]
    assert [t["order"] for t in trades] == [before["filled"]]  # type: ignore[attr-defined]
    assert balance["used"]["USDT"] == 500  # type: ignore[index]
    assert int(fresh["id"]) > int(str(before["filled"]))  # type: ignore[index]
    assert int(fresh["trades"][0]["id"]) > int(trades[0]["id"])  # type: ignore[index]
