"""Config sections as plain frozen objects for the hot path.

pydantic models define ``__getattr__``, which keeps CPython from specializing
attribute reads on them: each read costs several times a slot read.  The data
plane reads a handful of settings per request, so it reads them from copies.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, TypeVar, cast

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def plain(model: M) -> M:
    """A frozen, slotted copy of ``model``'s fields (typed as the model, for readers)."""
    copy_type = _plain_type(type(model))
    return cast(M, copy_type(**{name: getattr(model, name) for name in type(model).model_fields}))


@functools.cache
def _plain_type(model_type: type[BaseModel]) -> Any:
    return dataclasses.make_dataclass(
        model_type.__name__, list(model_type.model_fields), frozen=True, slots=True
    )
