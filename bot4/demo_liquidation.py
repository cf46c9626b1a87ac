"""The demo's last trading step: liquidate every position the demo's engines built.

Runs the ``liquidation`` runbook's workflow through the stack's worker, as ``bot4
liquidate --symbol BTC/USDT --symbol ETH/USDT`` would: the symbols leave the strategy, the
positions are unwound in reduce-only IOC children sent by the leading engine (TWAP, never
priced outside a 50 bps band around the live mid), and the run verifies that the desk is
flat in the journal and at the venue. Naming the symbols (rather than ``--all``) needs no
second operator's approval.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from bot4 import console
from bot4.settings import Settings


@dataclass(kw_only=True, slots=True)
class LiquidationDemo:
    """How the demo's liquidation ended."""

    ok: bool = False
    detail: str = ""
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict."""
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 2),
                "result": self.result}  # fmt: skip


async def liquidate(
    settings: Settings, *, symbols: tuple[str, ...], quiet: bool
) -> LiquidationDemo:
    """Liquidate ``symbols`` on the leading engine; report flatness and shortfall."""
    from workflows.liquidation import (
        ID_CONFLICT_POLICY,
        ID_REUSE_POLICY,
        LiquidationInput,
        LiquidationWorkflow,
        workflow_id,
    )

    demo = LiquidationDemo()
    started = time.monotonic()
    request = LiquidationInput(symbols=symbols, deadline_s=60, mode="twap", band_bps=50.0,
                               slice_interval_ms=500, reason="bot4 demo",
                               requested_by="demo")  # fmt: skip
    try:
        client = await Client.connect(
            settings.temporal.effective_address(), namespace=settings.temporal.namespace
        )
        handle = await client.start_workflow(
            LiquidationWorkflow.run,
            request,
            id=workflow_id(request),
            task_queue=settings.temporal.task_queue,
            id_reuse_policy=ID_REUSE_POLICY,
            id_conflict_policy=ID_CONFLICT_POLICY,
        )
        waiting = asyncio.ensure_future(handle.result())
        seen = ""
        while not waiting.done():
            try:
                step = (await handle.query(LiquidationWorkflow.progress)).step
            except Exception:  # a query can race the workflow's end; the result tells
                step = seen
            if step != seen and not quiet:
                console.say(f"    step {step}")
            seen = step
            await asyncio.wait({waiting}, timeout=0.5)
        result = waiting.result()
    except Exception as e:  # reported in the demo's table
        demo.detail = f"{type(e).__name__}: {e}"
        demo.seconds = time.monotonic() - started
        return demo
    before = ", ".join(f"{p.symbol} {p.qty}" for p in result.plan.positions) or "nothing"
    slices = result.unwind.slices if result.unwind is not None else 0
    demo.ok = bool(result.flat)
    if result.flat:
        demo.detail = (
            f"flat in the journal and at the venue after {slices} slices (positions were"
            f" {before}; shortfall {result.shortfall_bps} bps vs arrival mid)"
        )
    else:
        left = ", ".join(f"{p.symbol} {p.qty}" for p in result.remaining)
        demo.detail = f"NOT flat: {left} remain after {slices} slices (positions were {before})"
    demo.result = {"flat": result.flat, "slices": slices, "shortfall_bps": result.shortfall_bps,
                   "positions_before": before}  # fmt: skip
    # the symbols stay out of the strategy after a liquidation (journaled, so the next
    # leader keeps them out) until an operator gives them back; the demo does, or the
    # next `make demo` would start an engine that quotes nothing
    restored = await _restore(settings, symbols)
    if not restored:
        demo.ok = False
        demo.detail += "; could not give the symbols back to the strategy (POST /admin/restore)"
    demo.seconds = time.monotonic() - started
    return demo


async def _restore(settings: Settings, symbols: tuple[str, ...]) -> bool:
    """Give ``symbols`` back to the strategy on the leading engine; return whether it did."""
    from engine.live.control import ControlUnreachableError, post_admin
    from engine.live.run import control_token

    token = control_token(settings)
    for port in (settings.engine.blue_control_port, settings.engine.green_control_port):
        url = f"http://{settings.engine.host}:{port}"
        try:
            payload = {"symbols": ",".join(symbols), "by": "demo", "reason": "demo is done"}
            answer = await post_admin(url, "restore", token=token, payload=payload)
        except ControlUnreachableError:
            continue
        if answer.status == 200:
            return True
    return False
