"""Account queries: balances and our own trades (fills), paged by trade id."""

from __future__ import annotations

from typing import Any, Final

from engine.execution.gateway import EndpointGroup, VenueGateway
from engine.execution.models import Balance, Fill, decimal, fill

MAX_PAGE: Final = 1000
"""Largest page Binance's ``myTrades`` returns."""


class AccountClient:
    """Balances and fills through a :class:`VenueGateway`."""

    def __init__(self, gateway: VenueGateway) -> None:
        self._gateway = gateway

    async def fetch_balances(self) -> dict[str, Balance]:
        """Return every asset with a non-zero free or locked amount."""

        async def fetch(exchange: Any) -> Any:
            return await exchange.fetch_balance()

        raw = await self._gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", fetch)
        free, used = raw.get("free") or {}, raw.get("used") or {}
        balances: dict[str, Balance] = {}
        for asset in sorted(set(free) | set(used)):
            balance = Balance(
                asset=asset,
                free=decimal(free.get(asset) or 0, field=f"{asset} free"),
                locked=decimal(used.get(asset) or 0, field=f"{asset} locked"),
            )
            if balance.total:
                balances[asset] = balance
        return balances

    async def fetch_fills(
        self, symbol: str, *, after_trade_id: int | None = None, page_size: int = MAX_PAGE
    ) -> list[Fill]:
        """Return our fills of ``symbol`` with trade id greater than ``after_trade_id``.

        Pages through the venue by trade id (Binance ``fromId``, inclusive) until a short
        page; ``after_trade_id=None`` returns the venue's most recent page only.

        Args:
            symbol: unified symbol.
            after_trade_id: last trade id already known.
            page_size: trades per request (at most :data:`MAX_PAGE`).
        """
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be in [1, {MAX_PAGE}] (got {page_size})")
        fills: list[Fill] = []
        seen: set[tuple[int, str]] = set()
        cursor = after_trade_id
        while True:
            # after the first page, ask again from the last trade id (inclusive): a
            # self-trade is two entries under one id (buyer and seller) and a page may end
            # between them; the entries already seen are dropped below
            params = {} if cursor is None else {"fromId": cursor + (0 if fills else 1)}

            async def fetch(exchange: Any, params: dict[str, Any] = params) -> Any:
                return await exchange.fetch_my_trades(symbol, None, page_size, params)

            raw = await self._gateway.request(EndpointGroup.ACCOUNT, "fetch_my_trades", fetch)
            page = sorted((fill(t) for t in raw), key=lambda f: f.trade_id)
            fresh = [
                f for f in page
                if (after_trade_id is None or f.trade_id > after_trade_id)
                and (f.trade_id, f.side) not in seen
            ]  # fmt: skip
            seen.update((f.trade_id, f.side) for f in fresh)
            fills.extend(fresh)
            if cursor is None or len(page) < page_size or not fresh:
                return fills
            cursor = fresh[-1].trade_id
