"""Example values built from fields' JSON Schemas, for the OpenAPI document.

A client reading the document (or a tool sending its examples) should see an item
the server takes: each value is the field's default or first enum value when it
has one, else a value of its type that keeps its bounds (length, minimum and
maximum, number of items) and, for a string, looks like its ``format``.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

#: a value of each string format JSON Schema 2020-12 names (§7.3)
_FORMATTED = {
    "date-time": "2026-01-15T09:30:00Z",
    "date": "2026-01-15",
    "time": "09:30:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri": "https://example.com/",
    "iri-reference": "https://example.com/",
    "uri-template": "https://example.com/{id}",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "json-pointer": "/name",
    "relative-json-pointer": "0/name",
    "regex": "^[a-z]+$",
}
#: strings tried in turn when a field's pattern refuses its name
_PATTERN_CANDIDATES = ("example", "EXAMPLE", "Example", "a", "A", "1", "a1", "A1", "12345")


def example_value(schema: dict[str, Any], name: str = "example") -> Any:
    """A value ``schema`` accepts, plausible for a field called ``name``."""
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "array":
        return _array(schema, name)
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: example_value(value, key) for key, value in properties.items()}
    return _string(schema, name)


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """1 (or 9.99 for a number) moved within the bounds of ``schema``."""
    low, high = -math.inf, math.inf
    step = 1 if integer else 0.01
    if "minimum" in schema:
        low = schema["minimum"]
    if "exclusiveMinimum" in schema:
        low = max(low, schema["exclusiveMinimum"] + step)
    if "maximum" in schema:
        high = schema["maximum"]
    if "exclusiveMaximum" in schema:
        high = min(high, schema["exclusiveMaximum"] - step)
    value = min(max(1 if integer else 9.99, low), high)
    if integer:  # a fractional bound: the nearest integer inside it
        return math.ceil(value) if value == low else math.floor(value)
    return value


def _array(schema: dict[str, Any], name: str) -> list[Any]:
    """One item (as many as ``minItems`` asks, as few as ``maxItems`` allows)."""
    count = min(max(1, schema.get("minItems", 1)), schema.get("maxItems", math.inf))
    items = schema.get("items")
    item = example_value(items, name) if isinstance(items, dict) else name
    return [item] * count


def _string(schema: dict[str, Any], name: str) -> str:
    if schema.get("format") in _FORMATTED:
        return _FORMATTED[schema["format"]]
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    text = f"example {name.replace('_', ' ')}"
    if "pattern" in schema:
        valid = Draft202012Validator({"type": "string", "pattern": schema["pattern"]}).is_valid
        text = next((each for each in (name, *_PATTERN_CANDIDATES) if valid(each)), text)
    text = text.ljust(low, "x")
    return text if high is None else text[:high]


def example_item(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An item with a value for each field that its schema accepts; a field whose
    value could not be made to fit (a pattern no candidate matches) is left out."""
    item: dict[str, Any] = {}
    for name, schema in fields.items():
        value = example_value(schema, name)
        if Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(value):
            item[name] = value
    return item
