"""The control API's routes, one module per area; each route declares its least role."""

from bot4.api.routes import audit, engines, keys, runbooks, status

ROUTERS = (status.router, engines.router, keys.router, audit.router, runbooks.router)

__all__ = ["ROUTERS"]
