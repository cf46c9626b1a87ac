"""The local exchange simulator (``python -m infra.exchange_sim serve``) as a stack server."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bot4.settings import Settings
from infra.stack.component import http_ok
from infra.stack.managed import ManagedServer
from infra.stack.paths import StackPaths


class ExchangeSimServer(ManagedServer):
    """A Binance-spot-compatible venue on loopback, its state in SQLite under BOT4_HOME."""

    name = "exchange-sim"
    start_timeout_s = 30.0

    def __init__(self, *, paths: StackPaths, settings: Settings) -> None:
        super().__init__(paths=paths)
        self.settings = settings

    def argv(self) -> list[str]:
        """Run the simulator with this environment's Python."""
        return [sys.executable, "-m", "infra.exchange_sim", "serve"]

    def env(self) -> Mapping[str, str]:
        """Hand the child exactly our settings (it is an entry point and reads BOT4_*)."""
        return {**os.environ, **self.settings.to_env()}

    def ports(self) -> list[tuple[str, int, str]]:
        """Return the REST + websocket port."""
        exchange = self.settings.exchange
        return [(exchange.host, exchange.port, "BOT4_EXCHANGE__PORT")]

    def healthy(self) -> bool:
        """Ask the venue's ping route, as a client would."""
        return http_ok(f"{self.url()}/api/v3/ping")

    def url(self) -> str:
        """Return the REST base URL."""
        return self.settings.exchange.base_url()

    def details(self) -> dict[str, object]:
        """Add the websocket URL and the listed symbols."""
        exchange = self.settings.exchange
        return {"ws_url": f"{exchange.ws_url()}/ws", "symbols": list(exchange.symbols)}
