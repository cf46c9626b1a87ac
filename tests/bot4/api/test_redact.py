"""Secrets are cut out of text and parameters; parameters are bounded (no server)."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from bot4.api.audit import ParamsCodec
from bot4.api.keys import new_key
from bot4.api.redact import MAX_ITEMS, REDACTED, Scrubber

VENUE_SECRET = "venue-secret-0123456789"


def test_text_loses_keys_url_passwords_and_configured_secrets():
    scrubber = Scrubber([VENUE_SECRET, "abc"])  # too short to scrub: ordinary words survive
    key = new_key().token
    text = f"key={key} dsn=postgresql://bot4:hunter2@db:5432/x venue={VENUE_SECRET} abc"
    cleaned = scrubber.text(text)
    assert key not in cleaned
    assert "hunter2" not in cleaned
    assert VENUE_SECRET not in cleaned
    assert cleaned.endswith(" abc")
    assert "postgresql://bot4:[redacted]@db:5432/x" in cleaned


def test_fields_named_like_secrets_are_redacted_whatever_they_hold():
    shaped = Scrubber().value(
        {"api_key": 1, "Password": "x", "nested": [{"token": {"a": 1}}], "key_id": "abc",
         "reason": "fine"}
    )  # fmt: skip
    assert shaped == {
        "api_key": REDACTED,
        "Password": REDACTED,
        "nested": [{"token": REDACTED}],
        "key_id": "abc",
        "reason": "fine",
    }


def test_values_are_bounded_and_json_ready():
    shaped = Scrubber().value(
        {"long": "x" * 10_000, "many": list(range(500)), "nan": float("nan"), "deep": [[[[[[1]]]]]]}
    )
    assert isinstance(shaped, dict)
    assert len(str(shaped["long"])) < 600
    assert isinstance(shaped["many"], list)
    assert len(shaped["many"]) == MAX_ITEMS + 1
    assert shaped["nan"] == "nan"
    json.dumps(shaped, allow_nan=False)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text() | st.integers(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=30))  # fmt: skip
def test_any_json_input_encodes_and_never_keeps_a_planted_secret(value: object):
    codec = ParamsCodec(Scrubber([VENUE_SECRET]), audit_key=Fernet.generate_key(),
                        sensitive=("reason",))  # fmt: skip
    stored = codec.encode({"body": value, "planted": f"x{VENUE_SECRET}y"})
    assert VENUE_SECRET not in stored
    assert "\x00" not in stored  # PostgreSQL text refuses NUL
    json.loads(stored)


def test_sensitive_values_are_encrypted_and_only_decrypted_on_request():
    audit_key = Fernet.generate_key()
    codec = ParamsCodec(Scrubber(), audit_key=audit_key, sensitive=("reason",))
    stored = codec.encode({"body": {"reason": "fat finger on desk 3", "color": "blue"}})
    assert "fat finger" not in stored
    assert codec.decode(stored, decrypt=True) == {
        "body": {"reason": "fat finger on desk 3", "color": "blue"}
    }
    other = ParamsCodec(Scrubber(), audit_key=Fernet.generate_key(), sensitive=("reason",))
    unreadable = other.decode(stored, decrypt=True)
    assert isinstance(unreadable, dict)
    assert "not decryptable" in json.dumps(unreadable)
