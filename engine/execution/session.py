"""Open everything the engine needs at one venue, from its ExchangeSettings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot4.settings import ExchangeSettings
from engine.execution.account import AccountClient
from engine.execution.clock import Clock, SystemClock
from engine.execution.gateway import EndpointGroup, GatewayConfig, VenueGateway
from engine.execution.instruments import Instrument, instrument_from_market
from engine.execution.orders import OrderClient, ResolvePolicy
from engine.execution.venue import DEFAULT_TIMEOUT_MS, create_rest_client, create_ws_client


@dataclass(kw_only=True, slots=True)
class VenueSession:
    """REST and websocket access to one venue, with its instruments loaded.

    Attributes:
        rest: gateway over the ccxt async REST client (orders, account).
        streams: gateway over the ccxt.pro client (book and trade feeds, snapshots).
        instruments: configured symbols, by unified symbol.
        orders: order client over ``rest``.
        account: balances and fills over ``rest``.
    """

    rest: VenueGateway
    streams: VenueGateway
    instruments: dict[str, Instrument]
    orders: OrderClient
    account: AccountClient

    async def close(self) -> None:
        """Close both ccxt clients."""
        try:
            await self.streams.close()
        finally:
            await self.rest.close()


async def load_instruments(
    gateway: VenueGateway, symbols: tuple[str, ...]
) -> dict[str, Instrument]:
    """Load the venue's markets and return the configured symbols as instruments.

    Raises:
        ValueError: a configured symbol is not listed by the venue.
        EngineError: the translated venue error.
    """

    async def load(exchange: Any) -> Any:
        return await exchange.load_markets()

    markets = await gateway.request(EndpointGroup.MARKET_DATA, "load_markets", load)
    missing = [s for s in symbols if s not in markets]
    if missing:
        raise ValueError(f"BOT4_EXCHANGE__SYMBOLS: {gateway.venue} does not list {missing}")
    mode = int(gateway.exchange.precisionMode)
    return {
        symbol: instrument_from_market(markets[symbol], symbol_id=index, precision_mode=mode)
        for index, symbol in enumerate(symbols)
    }


async def open_session(
    settings: ExchangeSettings,
    *,
    config: GatewayConfig | None = None,
    resolve_policy: ResolvePolicy | None = None,
    clock: Clock | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> VenueSession:
    """Create both clients, load markets, and return the session (close it when done).

    Raises:
        EngineError: the venue could not be reached or refused us.
        ValueError: a configured symbol is not listed.
    """
    clock = clock or SystemClock()
    secrets = (settings.api_key.get_secret_value(), settings.api_secret.get_secret_value())
    rest = VenueGateway(
        create_rest_client(settings, timeout_ms=timeout_ms),
        venue=settings.venue,
        secrets=secrets,
        config=config,
        clock=clock,
    )
    streams = VenueGateway(
        create_ws_client(settings, timeout_ms=timeout_ms),
        venue=settings.venue,
        secrets=secrets,
        config=config,
        clock=clock,
    )
    try:
        instruments = await load_instruments(rest, settings.symbols)
        await load_instruments(streams, settings.symbols)
    except BaseException:
        await streams.close()
        await rest.close()
        raise
    return VenueSession(
        rest=rest,
        streams=streams,
        instruments=instruments,
        orders=OrderClient(rest, instruments=instruments, resolve_policy=resolve_policy),
        account=AccountClient(rest),
    )
