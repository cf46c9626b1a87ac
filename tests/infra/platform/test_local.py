"""LocalPlatform with real processes: a stand-in for ``bot4 engine run`` that prints its
color and sleeps (one honouring SIGTERM, one ignoring it), so pid files, refusal, logs and
the SIGTERM-then-SIGKILL bound are exercised without a whole engine."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.platform import Color, EngineAlreadyRunningError, LocalPlatform
from infra.stack.process import process_start_ticks

pytestmark = pytest.mark.timeout(60)

POLITE = "import sys, time; print('engine', sys.argv[2], flush=True); time.sleep(120)"
STUBBORN = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('engine', sys.argv[2], flush=True); time.sleep(120)"
)


def stand_in(script: str) -> Callable[[Color, Path], list[str]]:
    def command(color: Color, release: Path) -> list[str]:
        return [sys.executable, "-c", script, "--color", color, "--release", str(release)]

    return command


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    platform = LocalPlatform(tmp_path, command=stand_in(POLITE), stop_timeout_s=5.0)
    yield platform
    colors: tuple[Color, ...] = ("blue", "green")
    for color in colors:
        platform.stop(color)


def wait_for_log(path: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


def test_start_records_pid_and_release_and_logs_under_the_colors_folder(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    release = tmp_path / "release.json"

    started = platform.start("blue", release)

    assert started.running
    assert started.pid is not None
    assert started.release_path == release
    assert (tmp_path / "engines" / "blue" / "engine.pid").exists()
    wait_for_log(platform.logs("blue"), "engine blue")
    assert platform.status("green").running is False


def test_start_refuses_a_color_that_already_runs(platform: LocalPlatform, tmp_path: Path) -> None:
    first = platform.start("blue", tmp_path / "a.json")

    with pytest.raises(EngineAlreadyRunningError, match="blue already runs"):
        platform.start("blue", tmp_path / "b.json")

    assert platform.status("blue").pid == first.pid
    assert platform.start("green", tmp_path / "b.json").running  # the other color may run


def test_stop_ends_the_process_and_removes_the_pid_file(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    pid = platform.start("blue", tmp_path / "r.json").pid
    assert pid is not None

    assert platform.stop("blue") is True

    assert process_start_ticks(pid) is None
    assert platform.status("blue").running is False
    assert not (tmp_path / "engines" / "blue" / "engine.pid").exists()
    assert platform.stop("blue") is False


def test_stop_kills_an_engine_that_ignores_sigterm_after_the_bound(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path, command=stand_in(STUBBORN), stop_timeout_s=0.5)
    pid = platform.start("green", tmp_path / "r.json").pid
    assert pid is not None
    wait_for_log(platform.logs("green"), "engine green")  # the handler is installed
    started = time.monotonic()

    assert platform.stop("green") is True

    assert process_start_ticks(pid) is None
    assert 0.5 <= time.monotonic() - started < 6


def test_a_dead_engines_leftover_pid_file_does_not_block_a_start(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    platform.start("blue", tmp_path / "r.json")
    record = platform.status("blue")
    assert record.pid is not None
    os.killpg(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while platform.status("blue").running:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert platform.start("blue", tmp_path / "r2.json").running
