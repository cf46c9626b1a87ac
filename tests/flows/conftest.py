"""Fixtures of the flow tests: the session stack's S3 bucket under a fresh prefix."""

from __future__ import annotations

import uuid

import pytest

from flows.objstore import ObjectStore
from infra.stack.launcher import Stack


@pytest.fixture
def backup_store(running_stack: Stack) -> ObjectStore:
    """A fresh prefix of the stack's backup bucket (moto's S3 server)."""
    storage = running_stack.settings.storage
    return ObjectStore.open(f"{storage.backup_uri}/{uuid.uuid4().hex[:8]}", storage)
