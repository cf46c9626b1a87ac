"""Stored workflow histories replay against today's workflow code.

A running workflow is resumed by replaying its history: a change to a workflow that
alters the commands it issues for a history already recorded (a new activity before an
old one, a different timer) breaks every run in flight during a deploy of the worker.
The histories under ``histories/`` were recorded from real runs on the local stack (the
Temporal dev server, real engines and the simulator): a completed blue-green rollout with
an approved handoff, one rolled back at the shadow gate, one rolled back during the bake
after a handoff, an emergency stop, a stack check with an approved guarded step, a model
rollout that promoted its candidate and a liquidation that ended flat (the last two from
``make demo``).
Replaying needs no server. When a workflow must change incompatibly, use
``workflow.patched`` and keep these files; record new ones next to them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {path.stem.split("-")[0] for path in HISTORIES}
    hosted = {getattr(w, "__temporal_workflow_definition").name for w in WORKFLOWS}
    assert hosted <= recorded, f"record a history for {sorted(hosted - recorded)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    result = await Replayer(workflows=list(WORKFLOWS)).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
