"""An OpenAPI document's local references and schemas, as standalone JSON Schema.

:class:`Document` follows local ``$ref`` pointers (``#/components/...``, RFC 6901
escapes, percent-encoded fragments) and refuses remote ones.  :class:`SchemaWriter`
turns the schemas of one operation's input or output into one JSON Schema 2020-12
document: references are inlined, a reference met again inside itself becomes a
``$ref`` into the produced schema's ``$defs`` (so recursive schemas end), and the
OpenAPI 3.0 dialect is rewritten (``nullable``, boolean ``exclusiveMinimum``,
``example``); keywords JSON Schema has no use for (``discriminator``, ``xml``,
``externalDocs``, extensions) are dropped, and so are read-only properties of a
request and write-only properties of a response.

Pure: no I/O.  Every problem with the document is a ``ValueError`` naming it.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import unquote

Json = Any

#: keywords whose value is one schema
_ONE_SCHEMA = frozenset(
    {
        "additionalProperties",
        "items",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "additionalItems",
        "contentSchema",
    }
)
#: keywords whose value is a list of schemas
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
#: keywords whose value maps names to schemas
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"}
)
#: OpenAPI keywords (and JSON Schema identifiers that would move the base of our
#: ``#/$defs`` references) left out of the produced schema
_DROPPED = frozenset(
    {
        "discriminator",
        "xml",
        "externalDocs",
        "example",
        "nullable",
        "$id",
        "$schema",
        "$anchor",
        "$dynamicAnchor",
        "$dynamicRef",
        "$recursiveAnchor",
        "$recursiveRef",
    }
)

Direction = Literal["request", "response"]


class Document:
    """An OpenAPI 3.0 or 3.1 document whose local references can be followed."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.raw = document
        version = document.get("openapi")
        self.version_30 = isinstance(version, str) and version.startswith("3.0")

    def pointer(self, ref: object) -> Json:
        """The value ``ref`` (``#/a/b``) points at; ValueError when it cannot."""
        if not isinstance(ref, str):
            raise ValueError(f"a $ref must be a string, not {type(ref).__name__}")
        if not ref.startswith("#"):
            raise ValueError(
                f"$ref {ref!r} points outside the document; only local references "
                "(#/components/...) are supported"
            )
        fragment = unquote(ref[1:])
        value: Json = self.raw
        if fragment in ("", "/"):
            return value
        if not fragment.startswith("/"):
            raise ValueError(f"$ref {ref!r} is not a JSON pointer")
        for token in fragment[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(value, dict) and token in value:
                value = value[token]
            elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
                value = value[int(token)]
            else:
                raise ValueError(f"$ref {ref!r} does not resolve in the document")
        return value

    def resolve(self, value: Json) -> Json:
        """``value`` with any chain of ``$ref`` objects followed (parameters, bodies,
        responses, path items); a chain that loops is a ValueError."""
        seen: list[str] = []
        while isinstance(value, dict) and "$ref" in value:
            ref = value["$ref"]
            if ref in seen:
                raise ValueError(f"$ref {ref!r} refers to itself")
            seen.append(ref)
            value = self.pointer(ref)
        return value


class SchemaWriter:
    """Writes the schemas of one produced JSON Schema document (an operation's
    ``inputSchema`` or ``outputSchema``), collecting the ``$defs`` they share."""

    def __init__(self, document: Document, direction: Direction) -> None:
        self.document = document
        self.direction = direction
        #: the definitions recursive references point at, by their key in ``$defs``
        self.defs: dict[str, Json] = {}
        self._def_keys: dict[str, str] = {}
        self._open: list[str] = []  # the references being inlined, outermost first

    def convert(self, schema: Json) -> Json:
        """``schema`` as JSON Schema 2020-12 (references inlined or into ``$defs``)."""
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, dict):
            raise ValueError(f"a schema must be an object, not {type(schema).__name__}")
        if "$ref" in schema:
            return self._reference(schema)
        out: dict[str, Json] = {}
        for key, value in schema.items():
            if key in _DROPPED or key.startswith("x-"):
                continue
            if key in _ONE_SCHEMA and isinstance(value, (dict, bool)):
                out[key] = self.convert(value)
            elif key in _ONE_SCHEMA and key == "items" and isinstance(value, list):
                out["prefixItems"] = [self.convert(item) for item in value]
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.convert(item) for item in value]
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            else:
                out[key] = value
        if "example" in schema and "examples" not in out:
            out["examples"] = [schema["example"]]
        out = self._drop_one_way_properties(out)
        if self.document.version_30:
            out = self._from_30(schema, out)
        return out

    def _reference(self, schema: dict[str, Json]) -> Json:
        ref = schema["$ref"]
        if ref in self._open:
            # met again inside itself: point at the definition written when the
            # outer inlining ends
            return {"$ref": f"#/$defs/{self._def_key(ref)}"}
        target = self.document.pointer(ref)
        self._open.append(ref)
        try:
            inlined = self.convert(target)
        finally:
            self._open.pop()
        if ref in self._def_keys and self._def_keys[ref] not in self.defs:
            self.defs[self._def_keys[ref]] = inlined
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        # OpenAPI 3.0 ignores a reference's siblings; 3.1 (JSON Schema) applies them
        if self.document.version_30 or not siblings:
            return inlined
        annotations = {k: v for k, v in siblings.items() if k in ("description", "title")}
        if len(annotations) == len(siblings) and isinstance(inlined, dict):
            return {**inlined, **annotations}
        return {**self.convert(siblings), "allOf": [inlined]}

    def _def_key(self, ref: str) -> str:
        key = self._def_keys.get(ref)
        if key is None:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", ref.rsplit("/", 1)[-1]) or "def"
            key, n = base, 1
            while key in self._def_keys.values():
                n += 1
                key = f"{base}_{n}"
            self._def_keys[ref] = key
        return key

    def _from_30(self, source: dict[str, Json], out: dict[str, Json]) -> dict[str, Json]:
        """OpenAPI 3.0's own keywords (3.0.3 §4.7.24) in JSON Schema terms."""
        for bound in ("Minimum", "Maximum"):
            exclusive = out.get(f"exclusive{bound}")
            if isinstance(exclusive, bool):
                del out[f"exclusive{bound}"]
                limit = bound.lower()
                if exclusive and limit in out:
                    out[f"exclusive{bound}"] = out.pop(limit)
        if source.get("nullable") is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
                if isinstance(out.get("enum"), list) and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            elif kind is None:
                return {"anyOf": [out, {"type": "null"}]}
        return out

    def _drop_one_way_properties(self, out: dict[str, Json]) -> dict[str, Json]:
        """A request leaves out what the server writes (``readOnly``), a response
        what only the client sends (``writeOnly``)."""
        properties = out.get("properties")
        if not isinstance(properties, dict):
            return out
        flag = "readOnly" if self.direction == "request" else "writeOnly"
        gone = [n for n, s in properties.items() if isinstance(s, dict) and s.get(flag) is True]
        if gone:
            out["properties"] = {n: s for n, s in properties.items() if n not in gone}
            if isinstance(out.get("required"), list):
                out["required"] = [n for n in out["required"] if n not in gone]
        return out

    def finish(self, schema: dict[str, Json]) -> dict[str, Json]:
        """``schema`` (the produced document's root) with the collected ``$defs``."""
        if self.defs:
            schema["$defs"] = {**schema.get("$defs", {}), **self.defs}
        return schema
