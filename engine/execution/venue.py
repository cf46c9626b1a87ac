"""Venue factory: ccxt clients (async REST and ccxt.pro websockets) from ExchangeSettings.

The simulator and a real venue share one code path: the same ccxt class, the same
options; ``simulator=True`` only rewrites the URLs to point at the local server. Options
applied in both cases:

* ``enableRateLimit=False``: ccxt's throttle guesses request costs and adds ~50 ms per
  call; we pace ourselves from the venue's weight headers (:mod:`.ratelimit`).
* ``fetchCurrencies=False``, ``fetchMarkets.types=['spot']``, ``fetchMargins=False``: the
  desk trades spot; loading the other market types costs requests (and, on Binance, needs
  permissions the trading key should not have).

Secrets go into the client's config and nowhere else: nothing here logs the config.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from bot4.settings import ExchangeSettings
from engine.execution.ccxt_time import counted

DEFAULT_TIMEOUT_MS: Final = 10_000

_SCHEMES: Final = {"https": "http", "http": "http", "wss": "ws", "ws": "ws"}


def client_config(
    settings: ExchangeSettings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS
) -> dict[str, Any]:
    """Return the ccxt constructor config for ``settings`` (contains the secrets)."""
    return {
        "apiKey": settings.api_key.get_secret_value(),
        "secret": settings.api_secret.get_secret_value(),
        "enableRateLimit": False,
        "timeout": timeout_ms,
        "options": {
            "defaultType": "spot",
            "fetchCurrencies": False,
            "fetchMarkets": {"types": ["spot"]},
            "fetchMargins": False,
        },
    }


def simulator_urls(urls: Any, settings: ExchangeSettings) -> Any:
    """Return ``urls`` with every host replaced by the simulator's, paths kept.

    ``https``/``wss`` become ``http``/``ws``. A websocket URL on a ``stream.*`` host gets
    the path prefix ``/stream``: ccxt.pro's Binance tells spot from futures streams by
    ``/stream`` in the URL (``is_spot_url``), which the real host name provides.
    """
    if isinstance(urls, dict):
        return {key: simulator_urls(value, settings) for key, value in urls.items()}
    if isinstance(urls, list):
        return [simulator_urls(value, settings) for value in urls]
    if not isinstance(urls, str) or "://" not in urls:
        return urls
    parts = urlsplit(urls)
    scheme = _SCHEMES.get(parts.scheme, parts.scheme)
    path = parts.path
    if (
        scheme == "ws"
        and parts.hostname
        and parts.hostname.startswith("stream.")
        and (not path.startswith("/stream"))
    ):
        path = "/stream" + path
    netloc = f"{settings.host}:{settings.port}"
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))


def _configure(exchange: Any, settings: ExchangeSettings) -> Any:
    if settings.simulator:
        exchange.urls["api"] = simulator_urls(exchange.urls["api"], settings)
    return exchange


def create_rest_client(settings: ExchangeSettings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
    """Return a ccxt async REST client for the configured venue.

    The caller owns it and must ``await client.close()``.

    Raises:
        ValueError: ccxt has no venue of that id.
    """
    return _configure(
        _venue_class(ccxt_async, settings.venue)(client_config(settings, timeout_ms=timeout_ms)),
        settings,
    )


def create_ws_client(settings: ExchangeSettings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
    """Return a ccxt.pro websocket client (it also speaks REST, for snapshots).

    The caller owns it and must ``await client.close()``.

    Raises:
        ValueError: ccxt.pro has no venue of that id.
    """
    client = _configure(
        _venue_class(ccxt_pro, settings.venue)(client_config(settings, timeout_ms=timeout_ms)),
        settings,
    )
    # the websocket reader calls this for every message (parse, cache update): ccxt's time
    client.handle_message = counted(client.handle_message)
    return client


def _venue_class(module: Any, venue: str) -> Any:
    cls = getattr(module, venue, None)
    if cls is None or venue not in getattr(module, "exchanges", ()):
        raise ValueError(f"BOT4_EXCHANGE__VENUE: ccxt has no venue {venue!r} in {module.__name__}")
    return cls
