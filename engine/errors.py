"""The engine's error tree: every class is named for what the caller must do.

::

    EngineError
     ├── TemporaryError            retry later, with backoff (only these are ever retried)
     ├── RequestRejectedError      the venue refused this request: do not retry it as is
     ├── OperationalError          halt trading and page someone: retrying cannot help
     └── InvalidMarketDataError    drop the data and resynchronise the stream
          └── OffGridError         a price or quantity that is not on the instrument's grid

Packages extend the tree below these categories (``engine/execution/errors.py`` adds the
venue leaves); callers catch the category that says what they must do. Third-party errors
are translated into this tree at exactly one boundary per package, always chained
(``raise TemporaryError(...) from e``).
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class TemporaryError(EngineError):
    """A transient failure: the same call may succeed later, after a backoff."""


class RequestRejectedError(EngineError):
    """The venue answered and refused the request; sending it again cannot succeed."""


class OperationalError(EngineError):
    """A failure no retry can fix (credentials, configuration, a bug): halt, page someone."""


class InvalidMarketDataError(EngineError):
    """Market data failed an integrity check: drop it and resynchronise the stream."""


class OffGridError(InvalidMarketDataError, ValueError):
    """A price or quantity is not an integral multiple of the tick or lot size.

    Never rounded silently: an off-grid value means the instrument's precision is wrong
    or the data is corrupt, and either must be seen.
    """
