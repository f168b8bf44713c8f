"""JSON Schema -> Gemini's ``Schema`` object (a subset of OpenAPI 3.0's schema).

Gemini reads tool parameters and ``responseSchema`` in its own dialect: upper-case
``type`` names, ``nullable`` instead of ``null`` in a type union, no ``$ref``, no
``additionalProperties``, string-only enums and a few formats.  Gemini answers 400 to
anything else, so the rewrite drops what it cannot express rather than pass it on.
"""

from __future__ import annotations

from typing import Any

from quiver.ai.converters.chat import ConversionError

__all__ = ["json_schema_to_gemini"]

# keywords of Gemini's Schema object that mean the same as in JSON Schema
_SCHEMA_KEEP = (
    "title",
    "description",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
    "propertyOrdering",
    "example",
    "default",
)
_FORMATS = {
    "STRING": ("enum", "date-time"),
    "NUMBER": ("float", "double"),
    "INTEGER": ("int32", "int64"),
}
_MAX_DEPTH = 32


def json_schema_to_gemini(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema rewritten into Gemini's ``Schema`` (a subset of OpenAPI 3.0's).

    ``type: [T, "null"]`` and ``anyOf``/``oneOf`` with ``{"type": "null"}`` become
    ``nullable``; local ``$ref`` (``#/$defs/...``, ``#/definitions/...``) are inlined
    (recursive schemas are cut at depth 32); ``const`` becomes a one-value ``enum``;
    enums are strings; ``additionalProperties``, ``$schema`` and formats Gemini does not
    know are dropped.
    """
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _schema(schema, defs, 0)


def _schema(node: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        if not isinstance(target, dict):
            raise ConversionError(f"schema reference {ref!r} cannot be resolved")
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    kind = node.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            out["nullable"] = True
        kinds = [k for k in kind if k != "null"]
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            kind = None
            if kinds:
                out["anyOf"] = [{"type": str(k).upper()} for k in kinds]
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind.upper()
    variants = node.get("anyOf") or node.get("oneOf")
    if isinstance(variants, list):
        kept = []
        for variant in variants:
            if isinstance(variant, dict) and variant.get("type") == "null":
                out["nullable"] = True
            else:
                kept.append(_schema(variant, defs, depth + 1))
        if len(kept) == 1:
            out = {**kept[0], **out}
        elif kept:
            out["anyOf"] = kept
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        for part in all_of:
            out = {**_schema(part, defs, depth + 1), **out}
    for key in _SCHEMA_KEEP:
        if key in node:
            out[key] = node[key]
    if "const" in node:
        out["enum"] = [str(node["const"])]
    elif isinstance(node.get("enum"), list):
        out["enum"] = [str(value) for value in node["enum"] if value is not None]
        if None in node["enum"]:
            out["nullable"] = True
    if "enum" in out and out.get("type", "STRING") == "STRING":
        out["type"] = "STRING"
        out["format"] = "enum"
    elif "enum" in out:
        del out["enum"]  # Gemini's enums are strings: a numeric enum keeps its type only
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt
    properties = node.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            name: _schema(value, defs, depth + 1) for name, value in properties.items()
        }
        if "type" not in out:
            out["type"] = "OBJECT"
    if isinstance(node.get("required"), list):
        out["required"] = node["required"]
    if "items" in node:
        out["items"] = _schema(node["items"], defs, depth + 1)
        if "type" not in out:
            out["type"] = "ARRAY"
    return out
