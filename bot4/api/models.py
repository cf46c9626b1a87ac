"""Request bodies of the control API: every field bounded, unknown fields refused."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bot4.api.keys import KEY_NAME_PATTERN
from bot4.settings import RoleName

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_OVERLAP_S: Final = 30 * 86_400
MAX_LIFETIME_S: Final = 5 * 365 * 86_400


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_printable)]
Color = Literal["blue", "green", "all"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonBody(_Body):
    """Why: kept with the action (in the engine's log and, encrypted, in the audit log)."""

    reason: Text


class LoadModelBody(ReasonBody):
    """Which model version the engine loads."""

    version: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")


class SymbolsBody(ReasonBody):
    """Which symbols leave (reduce) or rejoin (restore) the strategy; ``*`` means all."""

    symbols: list[Annotated[str, Field(pattern=r"^([A-Z0-9]{1,15}/[A-Z0-9]{1,15}|\*)$")]] = Field(
        min_length=1,
        max_length=15,  # joined, within the engine field's 500 characters
    )

    @model_validator(mode="after")
    def _star_alone(self) -> SymbolsBody:
        if "*" in self.symbols and len(self.symbols) > 1:
            raise ValueError("symbols: '*' (every symbol) stands alone, without other symbols")
        return self


class HaltBody(_Body):
    """A desk halt: the kill-switch flag and the engines' own halt."""

    reason: Text = "emergency halt through the control API"
    color: Color = "all"


class ResumeBody(_Body):
    """Disengage the kill switch; optionally resume the engines too."""

    reason: Text
    engines: bool = False
    color: Color = "all"


class KeyCreateBody(_Body):
    """A new key."""

    name: str = Field(pattern=KEY_NAME_PATTERN, description="Who or what uses the key.")
    role: RoleName
    expires_in_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LIFETIME_S,
        description="Lifetime in seconds; 0 = never expires; default api.key_lifetime_s.",
    )


class KeyRotateBody(_Body):
    """A rotation: a successor now, the old key valid for the overlap."""

    overlap_s: int | None = Field(
        default=None, ge=0, le=MAX_OVERLAP_S, description="Default api.key_overlap_s."
    )
    expires_in_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LIFETIME_S,
        description="Lifetime of the successor; default: the old key's lifetime.",
    )


class KeyRevokeBody(_Body):
    """Why the key dies now."""

    reason: Text


Scalar = str | int | float | bool | None
#: a runbook parameter: a scalar, or a short list of them (liquidation's ``symbols``)
ParamValue = Scalar | Annotated[list[Scalar], Field(max_length=64)]


class RunbookRunBody(_Body):
    """Start a runbook: its parameters (checked against its input model) and dry run."""

    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], ParamValue] = Field(
        default_factory=dict, max_length=32
    )
    dry_run: bool = False


class DecisionBody(_Body):
    """An approval (of the step waiting, or of ``step``) or an abort, with a note."""

    step: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    note: Text | None = None
