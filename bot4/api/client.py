"""The CLI's client of the control API.

It calls ``BOT4_API_URL`` with the key from ``BOT4_API_KEY`` or the bootstrap key file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot4.api.errors import ApiRefusedError, ApiUnreachableError
from bot4.api.keyfile import read_secret_file, too_open
from bot4.settings import Settings


@dataclass(frozen=True, kw_only=True, slots=True)
class KeySource:
    """An API key and where it came from (for messages; never the key itself)."""

    key: str = field(repr=False)
    origin: str


def find_key(settings: Settings) -> KeySource | None:
    """Return the CLI's key: BOT4_API_KEY, else the bootstrap key file, else None."""
    if settings.api_key is not None:
        return KeySource(key=settings.api_key.get_secret_value(), origin="BOT4_API_KEY")
    path = settings.api.effective_key_file(settings.home)
    key = read_secret_file(path)
    return None if key is None else KeySource(key=key, origin=str(path))


def key_file_warning(path: Path) -> str | None:
    """Return a warning when the key file is readable by others."""
    if too_open(path):
        return f"{path} is readable by group or others; run: chmod 600 {path}"
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Answer:
    """A JSON answer of the API."""

    status: int
    body: Any
    correlation_id: str | None


class ApiClient:
    """Calls the control API with one key.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080``.
        key: the API key.
        timeout_s: bound of one request.
    """

    def __init__(self, base_url: str, key: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._timeout_s = timeout_s

    def get(self, path: str, *, params: dict[str, Any] | None = None) -> Answer:
        """GET ``path``; see :meth:`request`."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any], *, accept: tuple[int, ...] = ()) -> Answer:
        """POST ``body`` to ``path``; see :meth:`request`."""
        return self.request("POST", path, body=body, accept=accept)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        accept: tuple[int, ...] = (),
    ) -> Answer:
        """Send one request; return the answer if 2xx or in ``accept``.

        Raises:
            ApiUnreachableError: no connection or no answer in time.
            ApiRefusedError: any other error status (401, 403, 429, 5xx...).
        """
        headers = {"Authorization": f"Bearer {self._key}"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with httpx.Client(timeout=self._timeout_s) as http:
                response = http.request(
                    method, f"{self.base_url}{path}", params=query, json=body, headers=headers
                )
        except httpx.HTTPError as e:
            raise ApiUnreachableError(
                f"no answer from the control API at {self.base_url} ({type(e).__name__});"
                " is it running (`bot4 stack status`)? Set BOT4_API_URL to reach another one."
            ) from None  # the chained error would carry the request, Authorization included
        correlation_id = response.headers.get("x-correlation-id")
        try:
            document: Any = response.json()
        except ValueError:
            document = {"error": response.text[:300]}
        if response.is_success or response.status_code in accept:
            return Answer(status=response.status_code, body=document, correlation_id=correlation_id)
        message = document.get("error") if isinstance(document, dict) else None
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "?")
            message = f"{message or 'rate limited'} (Retry-After: {retry} s)"
        raise ApiRefusedError(
            response.status_code, str(message or document), correlation_id=correlation_id
        )
