"""The venue's dead-man's switch, kept armed while the engine is alive.

Binance's ``countdownCancelAll`` (POST ``/api/v3/countdownCancelAll``, ``symbol`` and
``countdownTime`` in ms) cancels every open order of the symbol when the countdown ends
without a refresh. A task refreshes it well before it runs out; if the engine dies,
hangs, or loses its network, the refreshes stop and the venue cancels our orders. The
refresh interval must leave room for a few failed refreshes (backoff, retries) inside
one countdown. :meth:`DeadMansSwitch.disarm` sends ``countdownTime=0`` (cancel the
countdown) on an orderly stop that wants to keep its orders.

ccxt 4.5 has no implicit method for the spot endpoint (only fapi/dapi/eapi ones), so the
request goes through ccxt's generic signed ``request`` on the ``private`` API, which
signs it like any other private spot call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from engine.errors import EngineError, TemporaryError
from engine.execution import metrics
from engine.execution.gateway import EndpointGroup, VenueGateway
from engine.execution.instruments import Instrument

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadMansSwitchConfig:
    """Countdown and refresh period.

    Attributes:
        countdown_ms: the venue cancels our orders this long after the last refresh.
        refresh_every_s: time between refreshes (well under the countdown).
    """

    countdown_ms: int = 60_000
    refresh_every_s: float = 15.0

    def __post_init__(self) -> None:
        if self.countdown_ms < 1000:
            raise ValueError(f"countdown_ms must be >= 1000 (got {self.countdown_ms})")
        if not 0 < self.refresh_every_s * 1000 < self.countdown_ms / 2:
            raise ValueError("refresh_every_s must be > 0 and under half the countdown")


class DeadMansSwitch:
    """Refreshes ``countdownCancelAll`` for each instrument until stopped."""

    def __init__(
        self,
        gateway: VenueGateway,
        *,
        instruments: Sequence[Instrument],
        config: DeadMansSwitchConfig | None = None,
    ) -> None:
        self._gateway = gateway
        self._instruments = list(instruments)
        self._config = config or DeadMansSwitchConfig()
        self.refreshes = 0

    async def arm(self, instrument: Instrument, countdown_ms: int) -> None:
        """Set the countdown of one symbol (0 disarms it).

        Raises:
            EngineError: the translated venue error.
        """
        params = {"symbol": instrument.market_id, "countdownTime": countdown_ms}

        async def send(exchange: Any) -> Any:
            # Binance's sign() reads the API name as api[0]: pass a list, as implicit
            # methods do
            return await exchange.request("countdownCancelAll", ["private"], "POST", params)

        await self._gateway.request(EndpointGroup.ORDERS, "countdown_cancel_all", send)

    async def refresh_once(self) -> bool:
        """Refresh every symbol's countdown; return whether all succeeded."""
        ok = True
        for instrument in self._instruments:
            try:
                await self.arm(instrument, self._config.countdown_ms)
            except TemporaryError as e:
                ok = False
                metrics.DEADMAN_REFRESHES.labels(venue=self._gateway.venue, outcome="failed").inc()
                log.warning("deadman_refresh_failed", symbol=instrument.symbol, error=str(e))
            else:
                metrics.DEADMAN_REFRESHES.labels(venue=self._gateway.venue, outcome="ok").inc()
        self.refreshes += 1
        return ok

    async def run(self) -> None:
        """Refresh periodically until cancelled.

        Raises:
            EngineError: a non-temporary error (e.g. credentials): the switch cannot be
                kept armed, which the caller must treat as an operational failure.
        """
        while True:
            await self.refresh_once()
            await self._gateway.clock.sleep(self._config.refresh_every_s)

    async def disarm(self) -> None:
        """Cancel the countdown of every symbol (orders then stay after we stop)."""
        for instrument in self._instruments:
            try:
                await self.arm(instrument, 0)
            except EngineError as e:
                log.warning("deadman_disarm_failed", symbol=instrument.symbol, error=str(e))
