"""Building blocks shared by the config models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from quiver.config.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class Strict(BaseModel):
    """Unknown keys are errors; a validated model is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def key_error(loc: tuple[str | int, ...], message: str, value: object) -> ValidationError:
    """The error of the key at ``loc`` (from the model being validated), for a rule
    that reads several keys.  Raised from a model validator, it is reported at that
    key and its line (``quiver check`` says ``...rate-limit.burst``, not
    ``...rate-limit``), as pydantic reports a key's own errors::

        @model_validator(mode="after")
        def _burst(self) -> RateLimitConfig:
            if self.burst is not None and self.algorithm != "token_bucket":
                raise key_error(("burst",), "burst applies to token_bucket only", self.burst)
            return self

    ``value`` is the key's value, kept in the error (nothing secret: mask it first).
    """
    kind = PydanticCustomError("value_error", "{message}", {"message": message})
    detail = InitErrorDetails(type=kind, loc=loc, input=value)
    return ValidationError.from_exception_data("config", [detail])
