"""The config reference in Markdown, generated from the models' field descriptions.

``python -m quiver.config.reference`` prints it; docs/configuration.md embeds it
between markers, and a test keeps the two equal.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from quiver.config.models import Config

BEGIN = "<!-- reference:begin -->"
END = "<!-- reference:end -->"


def render_reference() -> str:
    sections: list[str] = []
    _render(Config, "", sections, set())
    return "\n".join(sections).rstrip() + "\n"


def _render(model: type[BaseModel], path: str, out: list[str], seen: set[str]) -> None:
    title = path or "top level"
    out.append(f"### `{title}`\n")
    if model.__doc__ and model is not Config:
        out.append(" ".join(model.__doc__.split()) + "\n")
    out.append("| key | type | default | meaning |")
    out.append("|---|---|---|---|")
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        default = describe_default(info)
        out.append(
            f"| `{name}` | {type_name(info.annotation)} | {default} | {info.description or ''} |"
        )
        for sub in _models_in(info.annotation):
            key = f"{path}.{name}" if path else name
            if sub.__name__ not in seen:
                nested.append((key + ("[]" if _is_list(info.annotation) else ""), sub))
                seen.add(sub.__name__)
    out.append("")
    for key, sub in nested:
        _render(sub, key, out, seen)


def describe_default(info: Any, *, nested: str | None = "see below") -> str:
    """A field's default as the docs show it; a nested model's default is ``nested``
    (its fields are described below it), or its values when ``nested`` is None."""
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel):
            return nested or f"`{value.model_dump(by_alias=True, exclude_none=True)!r}`"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return ", ".join(f"`{item.model_dump(exclude_none=True)}`" for item in value)
        return f"`{value!r}`" if value not in ([], {}) else "empty"
    if info.default is PydanticUndefined or info.default is None:
        return "unset"
    return f"`{info.default!r}`"


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if origin is typing.Literal:
        return " or ".join(f"`{a!r}`" for a in args)
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # a model without fields of its own (a consumer's credential) is described elsewhere
        return [annotation] if annotation.model_fields else []
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(_is_list(arg) for arg in typing.get_args(annotation))


if __name__ == "__main__":
    print(render_reference(), end="")
