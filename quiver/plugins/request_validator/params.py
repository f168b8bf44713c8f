"""Parameters: from the text of a query, header, cookie or path to the values a schema checks.

Query strings, headers and paths carry text, so each value is first read the way
OpenAPI 3 serializes it (its ``style`` and ``explode``) and converted to the type its
schema asks for: ``?limit=10`` becomes the integer 10, ``?ids=1&ids=2`` the array
[1, 2] (``form`` style, exploded), ``X-Ids: 1,2`` the same (``simple`` style).  Text
that does not convert is kept as text, so the schema reports it ("must be of type
integer").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from quiver.plugins.request_validator.schemas import (
    Location,
    SchemaProblem,
    Violation,
    pointer,
    violation,
)

Resolve = Callable[[str], Any]
Shape = Literal["scalar", "array", "object"]

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,300})\Z", re.ASCII)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)
# OpenAPI 3 §4.8.12.4: the styles each location allows, the first being the default
_STYLES: dict[str, tuple[str, ...]] = {
    "path": ("simple",),  # label and matrix are not read
    "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
    "header": ("simple",),
    "cookie": ("form",),
}
_SEPARATORS = {"spaceDelimited": " ", "pipeDelimited": "|"}


@dataclass(frozen=True)
class Param:
    """How the text of one parameter becomes the value its schema is checked against."""

    name: str
    shape: Shape = "scalar"
    types: frozenset[str] = frozenset()  # of the value, or of each item of an array
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # of an object
    separator: str = ","  # between the items (or parts) written in one value
    repeated: bool = False  # an array given as one occurrence per item (?id=1&id=2)
    pairs: bool = False  # an object written "k=v,k=v" rather than "k,v,k,v"
    deep: bool = False  # an object written name[k]=v (deepObject)
    json: bool = False  # the value is JSON text (``content: application/json``)


def types_of(schema: Any, resolve: Resolve, depth: int = 0) -> frozenset[str]:
    """The JSON types ``schema`` allows, as far as they help convert text (empty: any)."""
    if depth > 16 or not isinstance(schema, dict):
        return frozenset()
    kind = schema.get("type")
    found = {kind} if isinstance(kind, str) else {k for k in kind or () if isinstance(k, str)}
    ref = schema.get("$ref")
    if not found and isinstance(ref, str):
        found |= types_of(resolve(ref), resolve, depth + 1)
    if not found:
        for key in ("allOf", "anyOf", "oneOf"):
            for member in schema.get(key) or ():
                found |= types_of(member, resolve, depth + 1)
    return frozenset(found)


def concrete(schema: Any, resolve: Resolve) -> dict[str, Any]:
    """``schema`` with any ``$ref`` in its place followed."""
    for _ in range(16):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or "type" in schema:
            return schema
        schema = resolve(ref)
    return {}


def describe(
    name: str,
    schema: Any,
    resolve: Resolve,
    *,
    location: Location,
    style: str | None = None,
    explode: bool | None = None,
    is_json: bool = False,
) -> Param:
    """The Param for an OpenAPI parameter (or a property of a query or header schema)."""
    styles = _STYLES[location]
    style = style or styles[0]
    if style not in styles:
        allowed = ", ".join(styles)
        raise SchemaProblem(f"style {style!r} is not read in {location} (use: {allowed})")
    explode = style == "form" if explode is None else explode
    if is_json:
        return Param(name, json=True)
    types = types_of(schema, resolve)
    body = concrete(schema, resolve)
    separator = _SEPARATORS.get(style, ",")
    if types == {"array"}:
        items = types_of(body.get("items"), resolve)
        repeated = explode and style == "form"
        return Param(name, "array", items, separator=separator, repeated=repeated)
    if types == {"object"}:
        if style == "form" and explode:
            raise SchemaProblem(
                f"object parameter {name!r} in style form, exploded, is not read: "
                "use style deepObject, or explode: false"
            )
        properties = body.get("properties") or {}
        members = {key: types_of(value, resolve) for key, value in properties.items()}
        deep = style == "deepObject"
        return Param(name, "object", members=members, pairs=explode and not deep, deep=deep)
    if style == "deepObject":
        raise SchemaProblem(f"style deepObject is for object parameters, not {name!r}")
    return Param(name, types=types)


def coerce(text: str, types: frozenset[str]) -> Any:
    """``text`` as the first of ``types`` it reads as; else ``text`` itself."""
    if not types or types == {"string"}:
        return text
    if ("integer" in types or "number" in types) and _INTEGER.match(text):
        return int(text)
    if "number" in types and _NUMBER.match(text):
        number = float(text)
        if math.isfinite(number):
            return number
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if "null" in types and "string" not in types and text in ("", "null"):
        return None
    return text


class _Unreadable(ValueError):
    pass


def gather(
    params: Mapping[str, Param], raw: Mapping[str, list[str]], location: Location
) -> tuple[dict[str, Any], list[Violation]]:
    """The object of every value in ``raw`` (each once, else a list), declared ones read
    as their Param says, and violations for values that could not be read."""
    values: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in raw.items()}
    problems: list[Violation] = []
    for name, param in params.items():
        if param.deep:
            _gather_deep(param, raw, values, problems, location)
            continue
        texts = raw.get(name)
        if texts is None:
            continue
        if param.repeated:
            values[name] = [coerce(text, param.types) for text in texts]
            continue
        if len(texts) > 1:
            problems.append(violation(location, pointer([name]), "must be given only once"))
        try:
            values[name] = _read(param, texts[0], location)
        except _Unreadable as exc:  # the text stays, for "required" to be satisfied
            problems.append(violation(location, pointer([name]), str(exc)))
    return values, problems


def _read(param: Param, text: str, location: Location) -> Any:
    if param.json:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise _Unreadable("is not valid JSON") from None
    if param.shape == "scalar":
        return coerce(text, param.types)
    parts = [p.strip(" \t") if location == "header" else p for p in text.split(param.separator)]
    if text == "":
        parts = []
    if param.shape == "array":
        return [coerce(part, param.types) for part in parts]
    if param.pairs:
        pairs = [part.partition("=") for part in parts]
        if any(not sep for _, sep, _ in pairs):
            raise _Unreadable("must be written as name=value pairs separated by ','")
        items = [(key, value) for key, _, value in pairs]
    else:
        if len(parts) % 2:
            raise _Unreadable("must be written as name,value pairs separated by ','")
        items = list(zip(parts[::2], parts[1::2], strict=True))
    return {key: coerce(value, param.members.get(key, frozenset())) for key, value in items}


def _gather_deep(
    param: Param,
    raw: Mapping[str, list[str]],
    values: dict[str, Any],
    problems: list[Violation],
    location: Location,
) -> None:
    prefix = param.name + "["
    found: dict[str, Any] = {}
    for key, texts in raw.items():
        if key.startswith(prefix) and key.endswith("]"):
            member = key[len(prefix) : -1]
            del values[key]
            if len(texts) > 1:
                problems.append(violation(location, pointer([param.name, member]), "is repeated"))
            found[member] = coerce(texts[0], param.members.get(member, frozenset()))
    if found:
        values[param.name] = found
