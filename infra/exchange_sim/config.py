"""Frozen configuration of the exchange simulator, built once from :class:`Settings`.

Only the entry point reads :class:`bot4.settings.Settings`; every component of the
simulator receives the :class:`SimConfig` (or a part of it) built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bot4.settings import Settings

# Every balance is an integer count of this unit (Binance shows eight decimals).
ASSET_UNIT: Final = Decimal("0.00000001")


@dataclass(frozen=True, kw_only=True, slots=True)
class SymbolSpec:
    """One listed spot symbol and its trading filters.

    Attributes:
        base: base asset, e.g. ``BTC``.
        quote: quote asset, e.g. ``USDT``.
        tick_size: PRICE_FILTER tick; prices are whole ticks inside the engine.
        step_size: LOT_SIZE step; quantities are whole lots inside the engine.
        min_qty: smallest order quantity.
        max_qty: largest order quantity.
        min_price: smallest limit price.
        max_price: largest limit price.
        min_notional: NOTIONAL filter: price * quantity of a limit order.
        start_price: the fundamental price the market starts from.
        volatility: annualised volatility of the fundamental (random walk).
    """

    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_notional: Decimal = Decimal("5")
    start_price: Decimal
    volatility: float = 0.6

    @property
    def symbol(self) -> str:
        """Exchange id, e.g. ``BTCUSDT``."""
        return f"{self.base}{self.quote}"

    @property
    def quote_units_per_tick_lot(self) -> int:
        """Quote asset units of one tick times one lot (exact by construction)."""
        value = self.tick_size * self.step_size / ASSET_UNIT
        if value != value.to_integral_value() or value <= 0:
            raise ValueError(
                f"{self.symbol}: tick_size * step_size must be a whole multiple of {ASSET_UNIT}"
            )
        return int(value)

    @property
    def base_units_per_lot(self) -> int:
        """Base asset units of one lot."""
        value = self.step_size / ASSET_UNIT
        if value != value.to_integral_value() or value <= 0:
            raise ValueError(f"{self.symbol}: step_size must be a whole multiple of {ASSET_UNIT}")
        return int(value)


DEFAULT_SPECS: Final[dict[str, SymbolSpec]] = {
    "BTC/USDT": SymbolSpec(
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        max_qty=Decimal("9000"),
        start_price=Decimal("60000"),
        volatility=0.6,
    ),
    "ETH/USDT": SymbolSpec(
        base="ETH",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        min_qty=Decimal("0.0001"),
        max_qty=Decimal("90000"),
        start_price=Decimal("3000"),
        volatility=0.75,
    ),
    "SOL/USDT": SymbolSpec(
        base="SOL",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("900000"),
        start_price=Decimal("150"),
        volatility=0.9,
    ),
}

DEMO_BALANCES: Final[dict[str, Decimal]] = {
    "USDT": Decimal("1000000"),
    "BTC": Decimal("10"),
    "ETH": Decimal("100"),
    "SOL": Decimal("1000"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountSpec:
    """An API account: its key, secret and the balances it starts with."""

    name: str
    api_key: str
    api_secret: str
    balances: dict[str, Decimal] = field(default_factory=lambda: dict(DEMO_BALANCES))


@dataclass(frozen=True, kw_only=True, slots=True)
class SimConfig:
    """Everything the simulator needs; tests build it directly.

    Attributes:
        host: address to bind.
        port: REST + websocket port (0 picks a free one, in-process only).
        state_dir: folder of ``sim.db``; None keeps everything in memory.
        symbols: listed symbols.
        accounts: API accounts (the first is the demo account).
        admin_token: token of the ``/admin`` routes.
        seed: seed of the market's random walks and agents.
        agent_orders_per_s: background agents' order rate; 0 is a quiet, static book.
        maker_fee: maker fee rate, charged in the asset received.
        taker_fee: taker fee rate, charged in the asset received.
        weight_limit_per_minute: request weight per IP and minute before 429.
        depth_interval_ms: period of the ``@depth@100ms`` diff stream.
        ws_heartbeat_s: websocket ping period; a client missing a pong is dropped.
        max_recv_window_ms: the largest recvWindow accepted.
    """

    host: str = "127.0.0.1"
    port: int = 8900
    state_dir: Path | None = None
    symbols: tuple[SymbolSpec, ...] = tuple(DEFAULT_SPECS.values())
    accounts: tuple[AccountSpec, ...] = (
        AccountSpec(name="demo", api_key="bot4-demo-key", api_secret="bot4-demo-secret"),  # noqa: S106 - public demo default, same as ExchangeSettings
    )
    admin_token: str = "bot4-sim-admin"  # noqa: S105 - demo default, as in ExchangeSettings
    seed: int = 42
    agent_orders_per_s: float = 0.0
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    weight_limit_per_minute: int = 6000
    depth_interval_ms: int = 100
    ws_heartbeat_s: float = 20.0
    max_recv_window_ms: int = 60_000

    def spec(self, symbol: str) -> SymbolSpec | None:
        """Return the spec of an exchange symbol id (``BTCUSDT``), or None."""
        for spec in self.symbols:
            if spec.symbol == symbol:
                return spec
        return None


def config_from_settings(settings: Settings) -> SimConfig:
    """Build the simulator's config from the settings root (entry points only).

    Raises:
        ValueError: a configured symbol has no simulator definition.
    """
    exchange = settings.exchange
    specs = []
    for unified in exchange.symbols:
        spec = DEFAULT_SPECS.get(unified)
        if spec is None:
            known = ", ".join(DEFAULT_SPECS)
            raise ValueError(f"BOT4_EXCHANGE__SYMBOLS: the simulator lists only {known}")
        specs.append(spec)
    demo = AccountSpec(
        name="demo",
        api_key=exchange.api_key.get_secret_value(),
        api_secret=exchange.api_secret.get_secret_value(),
    )
    return SimConfig(
        host=exchange.host,
        port=exchange.port,
        state_dir=settings.home / "exchange",
        symbols=tuple(specs),
        accounts=(demo,),
        admin_token=exchange.sim_admin_token.get_secret_value(),
        seed=exchange.sim_seed,
        agent_orders_per_s=exchange.sim_agent_orders_per_s,
    )
