"""Where engines run: the local machine today, a Kubernetes cluster later.

Workflows (blue-green deploys, emergency stops) start and stop engines only through
:class:`Platform`, so a second implementation replaces processes with pods without
touching them.
"""

from infra.platform.base import (
    Color,
    EngineAlreadyRunningError,
    EngineProcess,
    EngineStopError,
    Platform,
    PlatformError,
)
from infra.platform.local import LocalPlatform

__all__ = [
    "Color",
    "EngineAlreadyRunningError",
    "EngineProcess",
    "EngineStopError",
    "LocalPlatform",
    "Platform",
    "PlatformError",
]
