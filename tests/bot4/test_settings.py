"""The settings root: environment names, bounds and derived addresses."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from bot4.settings import DatabaseSettings, ExchangeSettings, Settings, StorageSettings


def test_nested_environment_variables_reach_their_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT4_DB__PRIMARY_PORT", "6433")
    monkeypatch.setenv("BOT4_TEMPORAL__ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("BOT4_HOME", "/tmp/somewhere")
    settings = Settings()
    assert settings.db.primary_port == 6433
    assert settings.temporal.effective_address() == "temporal.internal:7233"
    assert str(settings.home) == "/tmp/somewhere"


def test_defaults_match_the_design_addresses() -> None:
    settings = Settings()
    assert (settings.db.primary_port, settings.db.standby_port) == (5433, 5434)
    assert (settings.temporal.port, settings.temporal.ui_port) == (7233, 8233)
    assert settings.prefect.port == 4200
    assert settings.storage.port == 9000
    assert settings.home.is_absolute()


def test_local_dsn_lists_both_nodes_and_follows_the_primary() -> None:
    dsn = DatabaseSettings(primary_port=1111, standby_port=2222).local_dsn()
    assert dsn == (
        "postgresql://postgres@127.0.0.1:1111,127.0.0.1:2222/bot4?target_session_attrs=read-write"
    )


def test_external_dsn_wins_over_the_local_stack() -> None:
    db = DatabaseSettings(dsn=SecretStr("postgresql://u@db.example:5432/bot4"))
    assert db.effective_dsn() == "postgresql://u@db.example:5432/bot4"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("BOT4_DB__PRIMARY_PORT", "70000", "primary_port"),
        ("BOT4_DB__PRIMARY_PORT", "abc", "primary_port"),
        ("BOT4_DB__DATABASE", 'bot4"; drop', "database"),
        ("BOT4_STORAGE__BACKUP_URI", "ftp://x", "backup_uri"),
        ("BOT4_STORAGE__BACKUP_URI", "s3:///nobucket", "backup_uri"),
        ("BOT4_DB__NO_SUCH_FIELD", "1", "no_such_field"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=field):
        Settings()


def test_backup_bucket_comes_from_the_uri() -> None:
    assert StorageSettings(backup_uri="s3://b1/some/prefix").backup_bucket() == "b1"
    assert StorageSettings(backup_uri="file:///srv/backups").backup_bucket() is None


def test_to_env_rebuilds_equal_settings_in_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        db=DatabaseSettings(primary_port=1234, dsn=SecretStr("postgresql://x@y/z")),
        storage=StorageSettings(backup_uri="file:///srv/b"),
        exchange=ExchangeSettings(
            symbols=("BTC/USDT",), simulator=False, api_secret=SecretStr("s3cr3t")
        ),
    )
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
