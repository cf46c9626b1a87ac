"""Spawning, finding and stopping detached server processes."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import pytest

from infra.stack.errors import CorruptStateError, PortTakenError
from infra.stack.process import (
    is_alive,
    port_is_free,
    read_pid_file,
    require_free_port,
    spawn,
    stop_process_group,
)
from tests.stubs.ports import free_ports
from tests.stubs.processes import process_tree, still_running

# A parent that forks a child and both sleep: stopping must take the whole group.
PARENT_WITH_CHILD = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "time.sleep(60)"
)


def test_spawned_process_is_recorded_and_stopped_with_its_children(tmp_path: Path) -> None:
    record = spawn(
        [sys.executable, "-c", PARENT_WITH_CHILD],
        pid_file=tmp_path / "x.pid",
        log_file=tmp_path / "x.log",
    )
    assert read_pid_file(tmp_path / "x.pid", component="x") == record
    deadline = time.monotonic() + 10
    while len(process_tree([record.pid])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = process_tree([record.pid])
    assert len(tree) == 2
    assert is_alive(record)

    stop_process_group(record, timeout_s=5)

    assert not is_alive(record)
    assert still_running(tree) == []


def test_a_recycled_pid_is_not_mistaken_for_our_server(tmp_path: Path) -> None:
    record = spawn(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        pid_file=tmp_path / "y.pid",
        log_file=tmp_path / "y.log",
    )
    try:
        impostor = dataclasses.replace(record, start_ticks=record.start_ticks - 1)
        assert is_alive(record)
        assert not is_alive(impostor)
        stop_process_group(impostor)  # must not touch a process that is not ours
        assert is_alive(record)
    finally:
        stop_process_group(record)


def test_missing_pid_file_means_not_started(tmp_path: Path) -> None:
    assert read_pid_file(tmp_path / "none.pid", component="x") is None


@pytest.mark.parametrize("content", ["", "{", "[]", json.dumps({"pid": "abc"})])
def test_garbage_pid_file_is_corrupt_state(tmp_path: Path, content: str) -> None:
    (tmp_path / "bad.pid").write_text(content)
    with pytest.raises(CorruptStateError, match="prefect: pid file"):
        read_pid_file(tmp_path / "bad.pid", component="prefect")


def test_port_in_use_is_detected_and_named() -> None:
    import socket

    (port,) = free_ports(1)
    assert port_is_free("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortTakenError, match=f"s3: port {port} .* BOT4_STORAGE__PORT"):
            require_free_port("127.0.0.1", port, component="s3", setting="BOT4_STORAGE__PORT")
