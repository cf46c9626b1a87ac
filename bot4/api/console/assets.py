"""Serve the console's static files ahead of the control-plane door.

The files are read once, when the app is built, into a map from URL path to bytes: a
request can only ever get one of them (no file-system path is built from the URL, so no
traversal), and a missing file answers 404 without touching the disk.

Every answer carries a strict Content-Security-Policy: scripts, styles, images and API
calls from the page's own origin only, no inline script or style, no framing, no form
posts, no plugins. The page then cannot load or send anything beyond the API that served
it, even if some text it shows were crafted to try.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
PREFIX: Final = "/console/"
INDEX_PATHS: Final = frozenset({"/", "/console", "/console/"})

CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))  # fmt: skip

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # the files change with the package: always revalidate (they are small)
    (b"cache-control", b"no-cache"),
)


def load_files(root: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Return every servable file under ``root`` by URL path, with its content type."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type is not None:
            files[PREFIX + path.relative_to(root).as_posix()] = (path.read_bytes(), content_type)
    index = files.get(PREFIX + "index.html")
    if index is not None:
        for alias in INDEX_PATHS:
            files[alias] = index
    return files


class ConsoleAssets:
    """ASGI layer: answers ``GET /`` and ``GET /console/...``; passes everything else on.

    Args:
        app: the control-plane door (and the API behind it).
        root: the folder of the static files.
    """

    def __init__(self, app: ASGIApp, *, root: Path = STATIC_DIR) -> None:
        self.app = app
        self.files = load_files(root)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a console file, or hand the request to the API."""
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path in INDEX_PATHS or path.startswith(PREFIX)):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", "text/plain; charset=utf-8",
                          head=False, extra=((b"allow", b"GET, HEAD"),))  # fmt: skip
            return
        found = self.files.get(path)
        head = scope["method"] == "HEAD"
        if found is None:
            await _answer(send, 404, b"no such console file\n", "text/plain; charset=utf-8",
                          head=head)  # fmt: skip
            return
        body, content_type = found
        await _answer(send, 200, body, content_type, head=head)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    *,
    head: bool,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})
