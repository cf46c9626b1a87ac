"""The chaos desk, shared by every scenario of the module (see :mod:`tests.chaos.rig`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from infra.stack.launcher import Stack
from tests.chaos.rig import Rig, chaos_rig


@pytest.fixture(scope="module")
async def rig(running_stack: Stack) -> AsyncIterator[Rig]:
    """The pair, worker, API and venue port of the chaos suite; stopped at its end."""
    async with chaos_rig(running_stack.settings) as shared:
        yield shared
