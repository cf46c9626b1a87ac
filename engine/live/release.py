"""The release manifest: what one engine color runs (DESIGN.md §4, §5 blue-green).

A release is a JSON file an operator or a deploy workflow writes::

    {
      "version": "2026.11.27-1",
      "symbols": ["BTC/USDT", "ETH/USDT"],
      "model": {"builtin": "mlp"}            # or {"path": "models/mlp8-v2.npz"}
      "strategy": {"quote_lots": 5},         # engine.strategy.MarketMakerConfig
      "risk": {"max_position_lots": 500},    # engine.replay.config.RiskConfig
      "post_trade": {"stop_loss_ticks": 50}, # engine.replay.config.PostTradeConfig
      "fees": {"maker_fee_bps": 0, "taker_fee_bps": 4},
      "position_tolerance_lots": 0
    }

Every section is optional except ``version`` and ``symbols``; an unknown key anywhere is
refused (a typo in a risk limit must not silently fall back to the default).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from engine.kernels.model_nb import MODEL_LINEAR, MODEL_MLP
from engine.models.artifact import ModelArtifactError, ModelWeights, default_weights
from engine.replay.config import FillModelConfig, PostTradeConfig, ReplayConfig, RiskConfig
from engine.strategy.config import MarketMakerConfig

VERSION: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOP_LEVEL: Final = frozenset(
    {"version", "symbols", "model", "strategy", "risk", "post_trade", "fees",
     "position_tolerance_lots"}
)  # fmt: skip
_BUILTIN_MODELS: Final = {"linear": MODEL_LINEAR, "mlp": MODEL_MLP}
_C = TypeVar("_C", RiskConfig, PostTradeConfig, FillModelConfig)


class ReleaseError(ValueError):
    """The release manifest is missing, malformed or names something that does not exist."""


@dataclass(frozen=True, kw_only=True)
class Release:
    """A parsed, checked release manifest."""

    version: str
    symbols: tuple[str, ...]
    config: ReplayConfig = field(default_factory=ReplayConfig)
    model: ModelWeights = field(default_factory=lambda: default_weights(MODEL_MLP))
    position_tolerance_lots: int = 0
    source: str = "<built-in>"

    @classmethod
    def load(cls, path: Path) -> Release:
        """Read and check a manifest file.

        Raises:
            ReleaseError: names the file and the field that is wrong.
        """
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReleaseError(f"{path}: release manifest not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ReleaseError(f"{path}: not a readable JSON release manifest ({e})") from e
        return cls.from_mapping(document, source=str(path), base=path.parent)

    @classmethod
    def from_mapping(cls, document: object, *, source: str, base: Path | None = None) -> Release:
        """Build from a parsed manifest; ``base`` resolves a relative model path.

        Raises:
            ReleaseError: names the source and the field that is wrong.
        """
        if not isinstance(document, dict):
            raise ReleaseError(f"{source}: a release manifest is a JSON object")
        unknown = sorted(set(document) - _TOP_LEVEL)
        if unknown:
            raise ReleaseError(f"{source}: unknown keys {unknown}; known: {sorted(_TOP_LEVEL)}")
        version = document.get("version")
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise ReleaseError(
                f"{source}: version must be 1-64 characters of A-Z a-z 0-9 . _ - (got {version!r})"
            )
        symbols = document.get("symbols")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) and "/" in s for s in symbols)
            or len(set(symbols)) != len(symbols)
        ):
            raise ReleaseError(
                f"{source}: symbols must be a non-empty list of distinct 'BASE/QUOTE' strings"
                f" (got {symbols!r})"
            )
        tolerance = document.get("position_tolerance_lots", 0)
        if not isinstance(tolerance, int) or tolerance < 0:
            raise ReleaseError(f"{source}: position_tolerance_lots must be an int >= 0")
        try:
            config = ReplayConfig(
                strategy=MarketMakerConfig.from_mapping(_section(document, "strategy", source)),
                risk=_build(RiskConfig, _section(document, "risk", source), "risk"),
                post_trade=_build(
                    PostTradeConfig, _section(document, "post_trade", source), "post_trade"
                ),
                fills=_build(FillModelConfig, _section(document, "fees", source), "fees"),
            )
        except (TypeError, ValueError) as e:
            raise ReleaseError(f"{source}: {e}") from e
        model = _model(document.get("model", {"builtin": "mlp"}), source=source, base=base)
        return cls(
            version=version,
            symbols=tuple(symbols),
            config=config,
            model=model,
            position_tolerance_lots=tolerance,
            source=source,
        )

    def with_model(self, model: ModelWeights) -> Release:
        """Return this release running another model version (a model rollout)."""
        return replace(self, model=model)

    def describe(self) -> dict[str, Any]:
        """Return what ``/status`` and the journal show of this release."""
        return {
            "version": self.version,
            "symbols": list(self.symbols),
            "model_version": self.model.version,
            "model_checksum": self.model.checksum(),
            "source": self.source,
            # the limits in force: the daily report measures their use from the journal
            "risk": asdict(self.config.risk),
        }


def _section(document: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise ReleaseError(f"{source}: {name} must be a JSON object")
    return value


def _build(cls: type[_C], values: dict[str, Any], name: str) -> _C:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {name} keys {unknown}; known: {sorted(known)}")
    return cls(**values)


def _model(spec: object, *, source: str, base: Path | None) -> ModelWeights:
    if not isinstance(spec, dict) or len(spec) != 1 or not ({"builtin", "path"} & set(spec)):
        raise ReleaseError(
            f'{source}: model must be {{"builtin": "linear"|"mlp"}} or {{"path": FILE}}'
        )
    if "builtin" in spec:
        kind = _BUILTIN_MODELS.get(spec["builtin"])
        if kind is None:
            raise ReleaseError(
                f"{source}: model.builtin must be one of {sorted(_BUILTIN_MODELS)}"
                f" (got {spec['builtin']!r})"
            )
        return default_weights(kind)
    path = Path(str(spec["path"]))
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        return ModelWeights.load(path)
    except ModelArtifactError as e:
        raise ReleaseError(f"{source}: model: {e}") from e
