"""The API's settings: bad configuration is named clearly; durations parse (no server)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from bot4.control_cli import parse_duration
from bot4.settings import ApiSettings, RateLimit, Settings


def test_a_bad_network_is_named_with_an_example():
    with pytest.raises(ValidationError, match=r"'10\.0\.0\.1/8' is not a network in CIDR"):
        ApiSettings(admin_networks=("10.0.0.1/8",))


def test_a_bad_audit_key_says_how_to_make_one_and_does_not_echo_it():
    with pytest.raises(ValidationError) as e:
        ApiSettings(audit_key=SecretStr("too-short-secret"))
    assert "Fernet.generate_key" in str(e.value)
    assert "too-short-secret" not in str(e.value)
    ApiSettings(audit_key=SecretStr(Fernet.generate_key().decode()))


def test_rate_limits_given_for_some_roles_keep_the_others_defaults():
    api = ApiSettings(rate_limits={"viewer": RateLimit(per_s=1, burst=1)})
    assert api.rate_limits["viewer"] == RateLimit(per_s=1, burst=1)
    assert api.rate_limits["admin"] == ApiSettings().rate_limits["admin"]


def test_api_settings_survive_the_trip_to_a_child_process(monkeypatch: pytest.MonkeyPatch):
    settings = Settings(api=ApiSettings(rate_limits={"admin": RateLimit(per_s=3, burst=4)},
                                        admin_networks=("10.0.0.0/8",)))  # fmt: skip
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings().api == settings.api


def test_client_url_defaults_to_the_local_api():
    assert Settings(api=ApiSettings(port=8181)).effective_api_url() == "http://127.0.0.1:8181"
    assert Settings(api_url="https://bot4.desk/").effective_api_url() == "https://bot4.desk"
    with pytest.raises(ValidationError):
        Settings(api_url="ftp://nope")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 7_776_000), ("12h", 43_200), ("45", 45), ("never", 0), ("2w", 1_209_600)],
)
def test_durations(text: str, seconds: int):
    assert parse_duration(text, what="--expires", allow_never=True) == seconds


def test_bad_durations_name_the_option():
    with pytest.raises(ValueError, match="--overlap: 'soon' is not a duration"):
        parse_duration("soon", what="--overlap", allow_never=False)
    with pytest.raises(ValueError, match="in the past"):
        parse_duration("2001-01-01T00:00:00Z", what="--expires", allow_never=True)
    assert parse_duration("2999-01-01T00:00:00Z", what="--expires", allow_never=False) > 0
