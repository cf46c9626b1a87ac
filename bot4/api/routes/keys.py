"""Key management (admin, allow-listed networks only). A key's secret is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from bot4.api.auth import Admin, ServicesDep, actor, route_options
from bot4.api.keys import KEY_ID_PATTERN, KeyMaterial, KeyRecord
from bot4.api.models import KeyCreateBody, KeyRevokeBody, KeyRotateBody
from bot4.api.roles import Role
from bot4.api.runtime import Services

router = APIRouter(prefix="/v1/keys", tags=["keys"])
ADMIN = route_options(Role.ADMIN, admin=True)
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, description="The key's public id")]
NO_STORE = {"Cache-Control": "no-store"}


def _shown_once(services: Services, record: KeyRecord, material: KeyMaterial) -> dict[str, object]:
    return {
        **record.as_json(services.clock.now()),
        "key": material.token,
        "note": "the key is shown once: store it now; only its hash is kept",
    }


@router.get("", **ADMIN)
async def list_keys(
    _key: Admin,
    services: ServicesDep,
    include_inactive: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, object]]:
    """Return the keys (usable ones unless ``all``), newest first; never a secret."""
    now = services.clock.now()
    return [
        k.as_json(now) for k in await services.keys.list_keys(include_inactive=include_inactive)
    ]


@router.post("", status_code=201, **ADMIN)
async def create_key(body: KeyCreateBody, key: Admin, services: ServicesDep) -> JSONResponse:
    """Create a key; the answer holds the key, once."""
    lifetime_s = services.config.key_lifetime_s if body.expires_in_s is None else body.expires_in_s
    record, material = await services.keys.create(
        name=body.name, role=Role.parse(body.role), lifetime_s=lifetime_s, by=actor(key)
    )
    return JSONResponse(_shown_once(services, record, material), status_code=201, headers=NO_STORE)


@router.get("/{key_id}", **ADMIN)
async def get_key(key_id: KeyId, _key: Admin, services: ServicesDep) -> dict[str, object]:
    """Return one key (never its secret)."""
    return (await services.keys.get(key_id)).as_json(services.clock.now())


@router.post("/{key_id}/rotate", status_code=201, **ADMIN)
async def rotate_key(
    key_id: KeyId, body: KeyRotateBody, key: Admin, services: ServicesDep
) -> JSONResponse:
    """Create the key's successor; the old key keeps working until the overlap ends."""
    overlap_s = services.config.key_overlap_s if body.overlap_s is None else body.overlap_s
    old, new, material = await services.keys.rotate(
        key_id, overlap_s=overlap_s, lifetime_s=body.expires_in_s, by=actor(key)
    )
    document = {
        **_shown_once(services, new, material),
        "replaces": old.as_json(services.clock.now()),
    }
    return JSONResponse(document, status_code=201, headers=NO_STORE)


@router.post("/{key_id}/revoke", **ADMIN)
async def revoke_key(
    key_id: KeyId, body: KeyRevokeBody, key: Admin, services: ServicesDep
) -> dict[str, object]:
    """Revoke a key at once (its successor, if any, is not affected)."""
    record = await services.keys.revoke(key_id, by=actor(key), reason=body.reason)
    return record.as_json(services.clock.now())
