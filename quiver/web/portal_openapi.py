"""An API's reference, read from its OpenAPI document for the portal to render on the
server: operations grouped by tag, each with its parameters and the fields of its
request body, as rows of readable tables.  No script renders anything in the page.

Only local references (``#/components/...``) are followed, and only so deep: a
document that refers to itself still renders.  An operation's request body carries
its example, as text, for the "Try it" form to start from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_DEPTH = 8
_TEMPLATE_NAME = re.compile(r"\{([^{}/]+)\}")


@dataclass(frozen=True)
class Field:
    name: str
    where: str  # path, query, header, cookie, or body
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Field]
    body: list[Field]
    body_type: str | None
    anchor: str
    example: str = ""  # the request body's example, as text ("" when it has none)

    @property
    def path_names(self) -> list[str]:
        """The parameters of its path template, in order (``{id}`` is ``id``)."""
        return _TEMPLATE_NAME.findall(self.path)

    def described(self, name: str) -> Field | None:
        """The path parameter ``name`` as the document describes it, if it does."""
        return next((p for p in self.parameters if p.where == "path" and p.name == name), None)

    @property
    def takes_body(self) -> bool:
        """Whether "Try it" offers a body: the operation describes one, or its method
        is one that carries one."""
        return self.body_type is not None or self.method in ("POST", "PUT", "PATCH")


@dataclass
class Section:
    tag: str
    description: str
    operations: list[Operation] = field(default_factory=list)


def reference(document: Any) -> list[Section]:
    """The document's operations by tag (in the document's tag order, then the rest;
    untagged ones last, under "Other")."""
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return []
    sections: dict[str, Section] = {}
    for tag in document.get("tags") or []:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            sections[tag["name"]] = Section(tag["name"], str(tag.get("description") or ""))
    other: list[Operation] = []
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            continue
        item = _resolved(document, item)
        shared = item.get("parameters") or []
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            made = _operation(document, str(path), method, op, shared)
            tags = [t for t in op.get("tags") or [] if isinstance(t, str)]
            if not tags:
                other.append(made)
            for tag in tags:
                sections.setdefault(tag, Section(tag, "")).operations.append(made)
    found = [section for section in sections.values() if section.operations]
    if other:
        found.append(Section("Other", "", other))
    return found


def _operation(
    document: dict[str, Any], path: str, method: str, op: dict[str, Any], shared: list[Any]
) -> Operation:
    parameters: dict[tuple[str, str], Field] = {}
    for raw in [*shared, *(op.get("parameters") or [])]:
        item = _resolved(document, raw)
        if not isinstance(item, dict) or "name" not in item:
            continue
        schema = _resolved(document, item.get("schema") or {})
        parameters[(str(item["name"]), str(item.get("in", "")))] = Field(
            str(item["name"]),
            str(item.get("in", "")),
            _type_of(document, schema),
            bool(item.get("required")) or item.get("in") == "path",
            str(item.get("description") or ""),
        )
    request_body = _resolved(document, op.get("requestBody") or {})
    body, body_type = _body(document, request_body)
    anchor = f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "")
    return Operation(
        method.upper(),
        path,
        str(op.get("summary") or op.get("operationId") or ""),
        str(op.get("description") or ""),
        list(parameters.values()),
        body,
        body_type,
        anchor.strip("-").lower(),
        _example(document, request_body, body_type),
    )


def _body(document: dict[str, Any], request_body: Any) -> tuple[list[Field], str | None]:
    content = request_body.get("content") if isinstance(request_body, dict) else None
    if not isinstance(content, dict) or not content:
        return [], None
    media = "application/json" if "application/json" in content else next(iter(content))
    schema = _resolved(document, (content[media] or {}).get("schema") or {})
    if not isinstance(schema, dict):
        return [], media
    required = set(schema.get("required") or [])
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        type_name = _type_of(document, schema)
        return [Field("(body)", "body", type_name, bool(request_body.get("required")), "")], media
    fields = [
        Field(
            str(name),
            "body",
            _type_of(document, prop),
            name in required,
            str((_resolved(document, prop) or {}).get("description") or ""),
        )
        for name, prop in properties.items()
    ]
    return fields, media


def _example(document: dict[str, Any], request_body: Any, media: str | None) -> str:
    """The body's ``example``, else its first ``examples`` value, else its schema's
    example; JSON is written indented."""
    if media is None:
        return ""
    content = _resolved(document, request_body["content"][media] or {})
    found: Any = None
    if isinstance(content, dict):
        if "example" in content:
            found = content["example"]
        elif isinstance(content.get("examples"), dict) and content["examples"]:
            first = _resolved(document, next(iter(content["examples"].values())))
            found = first.get("value") if isinstance(first, dict) else None
        else:
            schema = _resolved(document, content.get("schema") or {})
            found = schema.get("example") if isinstance(schema, dict) else None
    if found is None or isinstance(found, str):
        return found or ""
    return json.dumps(found, indent=2, ensure_ascii=False)


def _type_of(document: dict[str, Any], schema: Any, depth: int = 0) -> str:
    if not isinstance(schema, dict) or depth > _DEPTH:
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return name
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items") or {}
        inner = items.get("$ref", "").rsplit("/", 1)[-1] if isinstance(items, dict) else ""
        return f"array of {inner or _type_of(document, items, depth + 1)}"
    for combined in ("oneOf", "anyOf"):
        if isinstance(schema.get(combined), list):
            return " | ".join(_type_of(document, s, depth + 1) for s in schema[combined])
    text = str(kind or ("object" if "properties" in schema else "any"))
    if schema.get("format"):
        text += f" ({schema['format']})"
    if isinstance(schema.get("enum"), list):
        text += ": " + ", ".join(str(v) for v in schema["enum"][:8])
    return text


def _resolved(document: dict[str, Any], item: Any, depth: int = 0) -> Any:
    """``item`` with a local ``$ref`` followed (an empty mapping when it leads nowhere)."""
    while isinstance(item, dict) and isinstance(item.get("$ref"), str) and depth < _DEPTH:
        ref = item["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        item, depth = (target if isinstance(target, dict) else {}), depth + 1
    return item
