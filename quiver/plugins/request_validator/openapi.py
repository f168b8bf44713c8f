"""Reading an OpenAPI 3.0 or 3.1 document, inline or from a file, into plain JSON data.

A 3.1 document's schemas are JSON Schema 2020-12 as they stand.  A 3.0 document's
are an extended subset of draft 4 (OpenAPI 3.0.3 §4.7.24): they are validated with
the draft 4 rules once ``nullable: true`` has become a type that includes "null".
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from quiver.plugins.request_validator.schemas import (
    DATA_KEYS,
    NAME_MAPS,
    SchemaProblem,
    lookup,
    references,
)

_VERSION = re.compile(r"3\.([01])\.[0-9]+(?:-[0-9A-Za-z.-]+)?\Z")


def load_document(value: dict[str, Any] | str) -> dict[str, Any]:
    """The document ``value`` holds, or the one in the file it names (SchemaProblem if
    it cannot be read, or is no OpenAPI 3.0.x or 3.1.x document)."""
    if isinstance(value, str):
        data = _read_file(value)
        where = f"{value}: "
    else:
        data = value
        where = ""
    if not isinstance(data, dict):
        raise SchemaProblem(f"{where}an OpenAPI document is a mapping")
    document: dict[str, Any] = _plain(data)
    if "swagger" in document:
        raise SchemaProblem(f"{where}Swagger 2.0 is not read; convert the document to OpenAPI 3")
    version = document.get("openapi")
    if not isinstance(version, str) or _VERSION.match(version) is None:
        raise SchemaProblem(
            f"{where}'openapi' must be a 3.0.x or 3.1.x version such as '3.1.0' "
            f"(quoted in YAML), not {version!r}"
        )
    paths = document.get("paths", {})
    if not isinstance(paths, dict):
        raise SchemaProblem(f"{where}'paths' must be a mapping")
    for template in paths:
        if not template.startswith("/"):
            raise SchemaProblem(f"{where}path {template!r} must start with '/'")
    for ref in references(document):
        try:
            lookup(document, ref)
        except SchemaProblem as exc:
            raise SchemaProblem(f"{where}{exc}") from None
    return document


def is_30(document: dict[str, Any]) -> bool:
    return str(document["openapi"]).startswith("3.0")


def _read_file(name: str) -> Any:
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SchemaProblem(f"cannot read OpenAPI document {name!r}: {reason}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)  # (JSON is YAML too)
    except (ValueError, yaml.YAMLError) as exc:
        raise SchemaProblem(f"{name}: not valid JSON or YAML: {exc}") from None


def _plain(node: Any) -> Any:
    """``node`` as JSON data: YAML's integer keys (response codes) and dates as text."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(item) for item in node]
    if isinstance(node, datetime | date):
        return node.isoformat()
    if node is None or isinstance(node, str | bool | int | float):
        return node
    raise SchemaProblem(f"{node!r} is no JSON value")


def from_30(node: Any, names: bool = False) -> Any:
    """A 3.0 document (or part) with its schemas made draft 4: ``nullable: true`` turned
    into a type union (or "anyOf" with null), and empty ``required`` lists dropped."""
    if isinstance(node, list):
        return [from_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:  # a mapping of names: each value is translated, none is a keyword
        return {key: from_30(value) for key, value in node.items()}
    out = {
        key: value if key in DATA_KEYS else from_30(value, key in NAME_MAPS)
        for key, value in node.items()
    }
    if out.get("required") == []:
        del out["required"]  # draft 4 asks for at least one name
    if out.get("nullable") is True and "$ref" not in out:  # beside $ref it is ignored
        del out["nullable"]
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            enum = out.get("enum")
            if isinstance(enum, list) and None not in enum:
                out["enum"] = [*enum, None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out
