"""Building blocks shared by the config models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from quiver.config.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class Strict(BaseModel):
    """Unknown keys are errors; a validated model is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
