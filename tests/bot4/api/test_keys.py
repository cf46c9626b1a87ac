"""Key material, its stored hash, the key lifecycle and role order (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot4.api.keys import KeyRecord, hash_secret, new_key, parse_key
from bot4.api.roles import Role

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _record(**changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": "0123456789abcdef", "name": "k", "role": Role.TRADER, "created_at": NOW,
        "created_by": "admin", "expires_at": None, "revoked_at": None, "revoked_by": None,
        "revoke_reason": None, "rotated_from": None, "rotated_to": None, "retires_at": None,
    }  # fmt: skip
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_new_key_parses_back_and_its_repr_hides_the_secret():
    material = new_key()
    assert parse_key(material.token) == material
    assert material.secret not in repr(material)
    assert len(material.secret) == 43  # 32 random bytes


@pytest.mark.parametrize(
    "token",
    ["", "b4_", "b4_0123456789abcdef", "b4_0123456789ABCDEF_" + "x" * 43,
     "b4_0123456789abcdef_" + "x" * 42, "xx_0123456789abcdef_" + "x" * 43,
     "b4_0123456789abcdef_" + "x" * 43 + "\n"],
)  # fmt: skip
def test_malformed_keys_do_not_parse(token: str):
    assert parse_key(token) is None


def test_stored_hash_depends_on_salt_and_secret():
    material = new_key()
    salt_a, salt_b = b"a" * 16, b"b" * 16
    assert hash_secret(material.secret, salt_a) == hash_secret(material.secret, salt_a)
    assert hash_secret(material.secret, salt_a) != hash_secret(material.secret, salt_b)
    assert hash_secret(material.secret, salt_a) != hash_secret(new_key().secret, salt_a)
    assert material.secret.encode() not in hash_secret(material.secret, salt_a)


@pytest.mark.parametrize(
    ("changes", "at", "state"),
    [
        ({}, NOW, "active"),
        ({"expires_at": NOW + timedelta(seconds=1)}, NOW, "active"),
        ({"expires_at": NOW + timedelta(seconds=1)}, NOW + timedelta(seconds=1), "expired"),
        ({"retires_at": NOW + timedelta(hours=1), "rotated_to": "f" * 16}, NOW, "retiring"),
        ({"retires_at": NOW, "rotated_to": "f" * 16}, NOW, "retired"),
        ({"revoked_at": NOW, "retires_at": NOW + timedelta(hours=1)}, NOW, "revoked"),
        ({"revoked_at": NOW, "expires_at": NOW}, NOW, "revoked"),
    ],
)
def test_key_state_follows_revocation_expiry_and_rotation(
    changes: dict[str, object], at: datetime, state: str
):
    assert _record(**changes).state(at) == state


def test_roles_are_ordered_by_privilege_and_parse_by_name():
    assert Role.VIEWER < Role.TRADER < Role.OPERATOR < Role.ADMIN
    assert Role.parse("Operator") is Role.OPERATOR
    assert Role.ADMIN.label == "admin"
    with pytest.raises(ValueError, match="roles are viewer, trader, operator, admin"):
        Role.parse("root")
