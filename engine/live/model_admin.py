"""Admin actions of the engine's model: shadow, canary, promote, abort, load.

Each runs on the engine loop (the control server schedules it there), so the swap it
makes lands between two decision batches (:mod:`engine.live.model_slot`). A candidate is
fetched from the registry and its SHA-256 verified *before* anything changes; the fetch
awaits off the loop while the engine keeps deciding. Every change of the model the
kernel runs (canary on, promote, abort of a canary or of a promotion, load) is journaled
as ``model_change`` with ``events_decided``: the new model decides from the next event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from engine.journal.models import JournalKind
from engine.live.engine import LiveEngine
from engine.models.artifact import ModelWeights

log = structlog.get_logger(__name__)

FetchModel = Callable[[str], Awaitable[ModelWeights]]
"""``fetch(version)``: the registry's artifact, checksum verified (ModelArtifactError)."""


class ModelAdmin:
    """The model half of the engine's admin actions (mixed into ``EngineAdmin``)."""

    engine: LiveEngine
    fetch_model: FetchModel | None

    async def _fetch(self, version: str) -> ModelWeights:
        if self.fetch_model is None:
            raise ValueError("this engine has no model registry configured")
        weights = await self.fetch_model(version)
        self.engine.decider.models.check_fits(weights)
        return weights

    async def _journal_change(
        self, *, action: str, before: str, after: str, by: str, reason: str, **extra: object
    ) -> dict[str, object]:
        decider = self.engine.decider
        body: dict[str, object] = {
            "action": action,
            "from": before,
            "to": after,
            "by": by,
            "reason": reason,
            # the events the previous model decided; the new one decides from the next
            "events_decided": decider.events_decided,
            "batches": decider.batches,
            **extra,
        }
        decider.models.last_change = body
        # after the swap, never before: the journal write awaits, decisions go on meanwhile
        journaled = await self.engine.journal(JournalKind.MODEL_CHANGE, body)
        log.warning("model_changed", journaled=journaled, **body)
        return {**body, "journaled": journaled}

    async def model_shadow(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Fetch ``version`` (checksum verified) and score it beside the active model."""
        weights = await self._fetch(version)
        self.engine.decider.models.shadow(weights)
        log.info("model_shadow", version=version, by=by, reason=reason)
        return self.engine.decider.models.status()

    async def model_canary(
        self, version: str, fraction: float, *, by: str, reason: str
    ) -> dict[str, object]:
        """Let the shadowed ``version`` carry ``fraction`` of the live prediction."""
        models = self.engine.decider.models
        before = models.active.version
        models.canary(version, fraction)
        if fraction <= 0.0:  # gates only: the kernel's model did not change
            return {**models.status(), "change": None}
        change = await self._journal_change(
            action="canary", before=before, after=version, by=by, reason=reason, fraction=fraction
        )
        return {**models.status(), "change": change}

    async def model_promote(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Make the candidate the active model (hot swap; idempotent once active)."""
        models = self.engine.decider.models
        if models.active.version == version and models.candidate is None:
            return {**models.status(), "change": None}
        replaced = models.promote(version)
        change = await self._journal_change(
            action="promote", before=replaced.version, after=version, by=by, reason=reason
        )
        return {**models.status(), "change": change}

    async def model_abort(self, version: str = "", *, by: str, reason: str) -> dict[str, object]:
        """Undo ``version``'s rollout (any candidate when empty); idempotent."""
        models = self.engine.decider.models
        before = models.active.version if models.mode != "canary" else f"{version}(canary)"
        undone = models.abort(version or None)
        change = None
        if undone in ("canary", "promoted"):  # the kernel's model changed back
            change = await self._journal_change(
                action=f"abort_{undone}",
                before=before,
                after=models.active.version,
                by=by,
                reason=reason,
            )
        return {**models.status(), "undone": undone, "change": change}

    async def load_model(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Fetch ``version`` from the registry (checksum verified) and run it now."""
        models = self.engine.decider.models
        if models.active.version == version:
            return {**models.status(), "change": None}
        weights = await self._fetch(version)
        before = models.active.version
        models.activate(weights)
        change = await self._journal_change(
            action="load", before=before, after=version, by=by, reason=reason
        )
        return {**models.status(), "change": change}
