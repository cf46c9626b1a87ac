"""The control API's routes, one module per area; each route declares its least role."""

from bot4.api.routes import (
    alerts,
    audit,
    console,
    drills,
    engines,
    flows,
    keys,
    models,
    runbooks,
    status,
)

ROUTERS = (
    status.router,
    engines.router,
    keys.router,
    audit.router,
    runbooks.router,
    models.router,
    flows.router,
    drills.router,
    alerts.router,
    console.router,
)

__all__ = ["ROUTERS"]
