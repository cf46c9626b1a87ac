"""The operations console: one web page for the desk, served by ``bot4 api`` at ``/``.

Static HTML, CSS and vanilla JavaScript modules (``static/``), no build step and nothing
fetched from anywhere but the API itself: the page signs in with an API key and then
calls the same ``/v1`` routes as the CLI, so every action is role-checked and audited
under the signed-in key. :class:`ConsoleAssets` serves the files, ahead of the
control-plane door: they hold no data and need no key (an unauthenticated browser must
load the sign-in page), and are not audited for the same reason.

========  ===============================================================================
assets    the ASGI layer serving ``/`` and ``/console/...`` with a strict CSP
static/   index.html, console.css, js/ (one module per page, plus api, dom, chart, markdown)
========  ===============================================================================
"""

from bot4.api.console.assets import CONTENT_SECURITY_POLICY, ConsoleAssets

__all__ = ["CONTENT_SECURITY_POLICY", "ConsoleAssets"]
