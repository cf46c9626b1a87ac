"""The demo's model step: train two model versions, trade on the first, roll out the second.

The first version is trained before the engines start and shipped in the demo's release
(a model file beside the manifest, as a desk ships a model with a release); it is also
registered. The second is trained on twice the market history of the same generator (so it
should agree with the first in sign most of the time) and rolled out through the stack's
worker exactly as ``bot4 rollout model`` would: checksum, shadow beside the live model,
canary (a 20 % blend), a hot swap between two decision batches, bake. The gates decide;
the demo reports every measured value and whether the engine traded on after the swap.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
from temporalio.client import Client, WorkflowHandle

from bot4 import console
from bot4.settings import Settings

FIRST_EVENTS: Final = 200_000
SECOND_EVENTS: Final = 400_000
SEED: Final = 7


@dataclass(kw_only=True, slots=True)
class ModelDemo:
    """The versions the demo trained, and how the rollout of the second one ended."""

    first: str
    second: str
    first_path: Path
    ok: bool = False
    detail: str = ""
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict."""
        return {"first": self.first, "second": self.second, "ok": self.ok,
                "detail": self.detail, "seconds": round(self.seconds, 2),
                "result": self.result}  # fmt: skip


async def prepare_models(settings: Settings, *, run_id: str) -> ModelDemo:
    """Train and register both versions; save the first as the release's model file."""
    folder = settings.home / "demo" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    demo = ModelDemo(first=f"{run_id}-m1", second=f"{run_id}-m2",
                     first_path=folder / f"{run_id}-m1.npz")  # fmt: skip
    for version, events in ((demo.first, FIRST_EVENTS), (demo.second, SECOND_EVENTS)):
        console.say(f"  training model {version} on {events:,} generated events (seed {SEED})")
        result = await asyncio.to_thread(_train, folder, version, events)
        if version == demo.first:
            await asyncio.to_thread(result.weights.save, demo.first_path)
        await _register(settings, result)
    return demo


def _train(folder: Path, version: str, events: int) -> Any:
    from engine.data.generator import generate
    from engine.models.train import TrainOptions, train_linear

    data = folder / f"events-{events}-seed{SEED}.npy"
    if not data.exists():
        generate(data, events=events, seed=SEED)
    return train_linear(data, version=version, options=TrainOptions())


async def _register(settings: Settings, result: Any) -> None:
    from engine.models.fetch import publish
    from engine.models.registry import ModelRegistry
    from infra.model_store import model_store

    store = await asyncio.to_thread(model_store, settings.storage, create_bucket=True)
    pool = await asyncpg.create_pool(settings.db.effective_dsn(), min_size=1, max_size=2)
    try:
        await publish(ModelRegistry(pool), store, result.weights, training=result.training,
                      metrics=result.metrics, by=f"demo ({getpass.getuser()})")  # fmt: skip
    finally:
        await pool.close()


async def roll_out_second(settings: Settings, demo: ModelDemo, *, quiet: bool) -> ModelDemo:
    """Roll out ``demo.second`` on the leading engine; fill in the outcome."""
    from workflows.model_rollout import ModelRolloutInput, start_model_rollout

    started = time.monotonic()
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    request = ModelRolloutInput(version=demo.second, requested_by="demo", reason="bot4 demo",
                                shadow_s=4, canary_s=3, canary_fraction=0.2, bake_s=3,
                                check_interval_s=1)  # fmt: skip
    try:
        handle = await start_model_rollout(client, request)
        result = await _follow(handle, quiet=quiet)
    except Exception as e:  # reported in the demo's table
        demo.detail = f"{type(e).__name__}: {e}"
        demo.seconds = time.monotonic() - started
        return demo
    shadow = next((g for g in result.gates if g.step == "shadow"), None)
    measures = {m.name: m.value for m in shadow.measures} if shadow is not None else {}
    agreement = measures.get("agreement")
    drift = measures.get("relative_drift")
    seen = f"shadow agreement {agreement}, relative drift {drift}"
    if result.completed:
        demo.ok = True
        demo.detail = (
            f"{demo.first} -> {demo.second}: promoted by a hot swap at event"
            f" {result.promoted_at_event} ({seen})"
        )
    else:
        demo.detail = f"{demo.second}: rolled back at {result.failed_step} ({result.reason})"
    demo.result = {
        "completed": result.completed, "rolled_back": result.rolled_back,
        "failed_step": result.failed_step, "promoted_at_event": result.promoted_at_event,
        "gates": [{"step": g.step, "passed": g.passed,
                   "measures": {m.name: m.value for m in g.measures}} for g in result.gates],
    }  # fmt: skip
    demo.seconds = time.monotonic() - started
    return demo


async def _follow(handle: WorkflowHandle[Any, Any], *, quiet: bool) -> Any:
    from workflows.model_rollout.workflow import ModelRolloutWorkflow

    waiting = asyncio.ensure_future(handle.result())
    seen = ""
    while not waiting.done():
        try:
            step = (await handle.query(ModelRolloutWorkflow.progress)).step
        except Exception:  # a query can race the workflow's end; the result tells
            step = seen
        if step != seen and not quiet:
            console.say(f"    step {step}")
        seen = step
        await asyncio.wait({waiting}, timeout=0.5)
    return waiting.result()
