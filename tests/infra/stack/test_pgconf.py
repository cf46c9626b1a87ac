"""Editing postgresql.auto.conf while a server is down."""

from __future__ import annotations

from pathlib import Path

from infra.stack.pgconf import read_auto_conf, write_auto_conf


def test_settings_are_replaced_and_other_lines_kept(tmp_path: Path) -> None:
    (tmp_path / "postgresql.auto.conf").write_text(
        "# header\nport = '5433'\nprimary_conninfo = 'host=x port=1'\n"
    )
    write_auto_conf(tmp_path, {"port": "6000", "wal_level": "replica"})
    text = (tmp_path / "postgresql.auto.conf").read_text()
    assert text.startswith("# header\n")
    assert read_auto_conf(tmp_path) == {
        "primary_conninfo": "host=x port=1",
        "port": "6000",
        "wal_level": "replica",
    }
    assert text.count("port =") == 1


def test_quotes_in_values_survive_a_round_trip(tmp_path: Path) -> None:
    value = "FIRST 1 (node_a, node_b) it's"
    write_auto_conf(tmp_path, {"synchronous_standby_names": value})
    assert read_auto_conf(tmp_path)["synchronous_standby_names"] == value
