"""Keep secrets out of everything the control plane stores, logs or answers.

Three nets, applied to every audited parameter and every answer built from other
servers' data (status documents):

- **by name**: a field whose name says secret (``api_key``, ``password``, ``token``...)
  has its value replaced, whatever it is;
- **by shape**: anything that looks like a bot4 API key (``b4_<id>_<secret>``) or a
  password in a URL's user info (``postgresql://user:pw@host``) is cut out of any string;
- **by value**: the process's own configured secrets (venue keys, tokens, the audit key)
  are cut out of any string they appear in.

Shaping bounds what a request can put into the audit log: strings, lists, objects and
nesting are truncated, and floats that JSON cannot carry become strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

from bot4.api.keys import KEY_PATTERN

REDACTED: Final = "[redacted]"
SECRET_NAME: Final = re.compile(
    r"key|secret|token|passw|pwd|authori[sz]ation|credential|cookie|signature|private",
    re.IGNORECASE,
)
PUBLIC_NAMES: Final = frozenset({"key_id", "key_name"})  # ids and labels, not secrets
_URL_PASSWORD: Final = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_MIN_SECRET_LENGTH: Final = 6  # shorter values would cut ordinary words out of text

MAX_STRING: Final = 500
MAX_ITEMS: Final = 50
MAX_DEPTH: Final = 5

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def is_secret_name(name: str) -> bool:
    """Tell whether a field called ``name`` holds a secret."""
    return name not in PUBLIC_NAMES and SECRET_NAME.search(name) is not None


class Scrubber:
    """Removes secrets from text and JSON-like values.

    Args:
        secrets: values that must never appear (configured keys, tokens, passwords).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(s) for s in known)) if known else None

    def text(self, value: str) -> str:
        """Return ``value`` with every known or key-shaped secret cut out."""
        value = KEY_PATTERN.sub(REDACTED, value)
        value = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", value)
        if self._known is not None:
            value = self._known.sub(REDACTED, value)
        return value

    def value(self, value: object, *, depth: int = 0) -> JsonValue:
        """Return a bounded, JSON-ready copy of ``value`` without secrets."""
        if value is None or isinstance(value, str | int | float):  # bool is an int
            return self._scalar(value)
        if depth >= MAX_DEPTH:
            return "[too deep]"
        if isinstance(value, dict):
            return self._object(value, depth)
        if isinstance(value, list | tuple):
            return self._array(value, depth)
        return self.text(_truncate(repr(value)))

    def _scalar(self, value: str | float | None) -> JsonValue:
        if isinstance(value, str):
            return self.text(_truncate(value))
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)  # JSON has no NaN or Infinity
        return value

    def _object(self, value: dict[object, object], depth: int) -> JsonValue:
        shaped: dict[str, JsonValue] = {}
        for index, (name, item) in enumerate(value.items()):
            if index == MAX_ITEMS:
                shaped["[more]"] = f"{len(value) - MAX_ITEMS} more fields"
                break
            field = self.text(_truncate(str(name), 100))
            secret = is_secret_name(field)
            shaped[field] = REDACTED if secret else self.value(item, depth=depth + 1)
        return shaped

    def _array(self, value: list[object] | tuple[object, ...], depth: int) -> JsonValue:
        items = [self.value(item, depth=depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"[{len(value) - MAX_ITEMS} more items]")
        return items


def _truncate(value: str, limit: int = MAX_STRING) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}...[{len(value) - limit} more characters]"
