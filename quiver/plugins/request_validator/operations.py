"""The operations of an OpenAPI document as checks, and finding the one a request is for.

Each operation's parameters (those of its path item, replaced by its own of the same
name and location) become one ParameterCheck per location; its ``requestBody`` a
BodyCheck.  Schemas stay where they are in the document and are reached by
reference, so ``$ref`` between them resolves as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator, Draft202012Validator, FormatChecker, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4, specification_with

from quiver.plugins.request_validator.checks import BodyCheck, ParameterCheck, is_json
from quiver.plugins.request_validator.formats import format_checker
from quiver.plugins.request_validator.openapi import from_30, is_30
from quiver.plugins.request_validator.params import Param, describe
from quiver.plugins.request_validator.schemas import (
    Location,
    SchemaProblem,
    check_schema,
    lookup,
    pointer,
)

Check = ParameterCheck | BodyCheck

BASE = "urn:quiver:openapi"  # the document's URI, for references into it
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_LOCATIONS: tuple[Location, ...] = ("path", "query", "header", "cookie")
# OpenAPI 3 §4.8.12.1: header parameters of these names "SHALL be ignored"
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})


@dataclass(frozen=True)
class PathItem:
    """One path template with the checks of each of its operations, by method."""

    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]  # of the template's parameters, in order
    operations: Mapping[str, tuple[Check, ...]]  # by uppercase method

    def checks(self, method: str) -> tuple[Check, ...] | None:
        found = self.operations.get(method)
        if found is None and method == "HEAD":
            return self.operations.get("GET")  # a HEAD request is a GET without body
        return found


class Compiler:
    """Builds the PathItems of one document (SchemaProblem names what is wrong)."""

    def __init__(self, document: dict[str, Any]) -> None:
        if is_30(document):
            self.document = from_30(document)
            self.cls: type[Validator] = Draft4Validator
            spec = DRAFT4
        else:
            self.document = document
            dialect = document.get("jsonSchemaDialect")
            self.cls = Draft202012Validator
            if isinstance(dialect, str):
                self.cls = validators.validator_for({"$schema": dialect}, default=self.cls)
            spec = specification_with(str(self.cls.META_SCHEMA["$schema"]))
        self.registry: Registry[Any] = Registry().with_resource(
            BASE, spec.create_resource(self.document)
        )
        self.checker: FormatChecker = format_checker()
        self.checked: set[str] = set()
        components = _mapping(self.document.get("components"), "/components")
        for name in _mapping(components.get("schemas"), "/components/schemas"):
            self.check_schema(pointer(["components", "schemas", name]))

    def path_items(self) -> list[PathItem]:
        items = [self._path_item(t, p) for t, p in (self.document.get("paths") or {}).items()]
        # concrete segments before templated ones (OpenAPI 3 §4.8.8.2), else in order
        items.sort(key=lambda item: [("{" in s) for s in item.template.split("/")])
        return items

    def check_schema(self, at: str) -> None:
        if at not in self.checked:
            self.checked.add(at)
            check_schema(lookup(self.document, "#" + at), "#" + at, self.cls)

    def validator(self, schema: dict[str, Any]) -> Validator:
        return self.cls(schema, registry=self.registry, format_checker=self.checker)

    def _deref(self, node: Any, at: str) -> tuple[Any, str]:
        for _ in range(16):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not isinstance(ref, str):
                return node, at
            node, at = lookup(self.document, ref), ref[1:]
        raise SchemaProblem(f"#{at}: references go round in a circle")

    def _path_item(self, template: str, node: Any) -> PathItem:
        at = pointer(["paths", template])
        item, at = self._deref(node, at)
        if not isinstance(item, dict):
            raise SchemaProblem(f"#{at}: a path item is a mapping")
        parts = re.split(r"\{([^{}/]+)\}", template)
        names = tuple(parts[1::2])
        regex = "".join(re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(parts))
        shared = self._parameters(item.get("parameters"), at + "/parameters", names)
        operations = {}
        for method in METHODS:
            if isinstance(item.get(method), dict):
                where = f"{at}/{method}"
                operation = item[method]
                own = self._parameters(operation.get("parameters"), where + "/parameters", names)
                params = {**shared, **own}
                checks: list[Check] = self._parameter_checks(params)
                if "requestBody" in operation:
                    checks.append(self._body(operation["requestBody"], where + "/requestBody"))
                operations[method.upper()] = tuple(checks)
        return PathItem(template, re.compile(regex), names, operations)

    def _parameters(
        self, nodes: Any, at: str, names: tuple[str, ...]
    ) -> dict[tuple[str, str], tuple[Param, bool, str | None]]:
        """(location, name) -> (how to read it, whether required, its schema's pointer)."""
        found: dict[tuple[str, str], tuple[Param, bool, str | None]] = {}
        if not isinstance(nodes, list | None):
            raise SchemaProblem(f"#{at} must be a list")
        for index, node in enumerate(nodes or ()):
            param, where = self._deref(node, f"{at}/{index}")
            if not isinstance(param, dict):
                raise SchemaProblem(f"#{where}: a parameter is a mapping")
            name, location = param.get("name"), param.get("in")
            if not isinstance(name, str) or location not in _LOCATIONS:
                raise SchemaProblem(
                    f"#{where}: a parameter needs a 'name' and an 'in' of "
                    "path, query, header or cookie"
                )
            if location == "path" and name not in names:
                raise SchemaProblem(f"#{where}: path parameter {name!r} is not in the path")
            if location == "header":
                name = name.lower()
                if name in _IGNORED_HEADERS:
                    continue
            schema_at, is_json_text = self._parameter_schema(param, where)
            schema = lookup(self.document, "#" + schema_at) if schema_at else None
            try:
                read = describe(
                    name,
                    schema,
                    lambda ref: lookup(self.document, ref),
                    location=location,
                    style=param.get("style"),
                    explode=param.get("explode"),
                    is_json=is_json_text,
                )
            except SchemaProblem as exc:
                raise SchemaProblem(f"#{where}: {exc}") from None
            required = location == "path" or param.get("required") is True
            found[location, name] = (read, required, schema_at)
        return found

    def _parameter_schema(self, param: dict[str, Any], where: str) -> tuple[str | None, bool]:
        if "schema" in param:
            self.check_schema(where + "/schema")
            return where + "/schema", False
        for media, entry in _mapping(param.get("content"), where + "/content").items():
            if is_json(media.lower()) and isinstance(entry, dict) and "schema" in entry:
                at = f"{where}/content/{pointer([media])[1:]}/schema"
                self.check_schema(at)
                return at, True
        return None, False

    def _parameter_checks(
        self, params: dict[tuple[str, str], tuple[Param, bool, str | None]]
    ) -> list[Check]:
        checks: list[Check] = []
        for location in _LOCATIONS:
            mine = {name: v for (loc, name), v in params.items() if loc == location}
            if not mine:
                continue
            schema: dict[str, Any] = {
                "type": "object",
                "properties": {
                    name: {"$ref": f"{BASE}#{at}"} if at else {}
                    for name, (_, _, at) in mine.items()
                },
            }
            required = [name for name, (_, needed, _) in mine.items() if needed]
            if required:
                schema["required"] = required
            reading = {name: read for name, (read, _, _) in mine.items()}
            checks.append(ParameterCheck(location, reading, self.validator(schema)))
        return checks

    def _body(self, node: Any, at: str) -> BodyCheck:
        body, at = self._deref(node, at)
        if not isinstance(body, dict) or not isinstance(body.get("content", {}), dict):
            raise SchemaProblem(f"#{at}: a request body is a mapping with a 'content' mapping")
        content: dict[str, Validator | None] = {}
        for media, entry in (body.get("content") or {}).items():
            key = media.partition(";")[0].strip().lower()
            validator = None
            # (a JSON body may also be sent for a range such as "application/*")
            json_ok = is_json(key) or key.endswith("/*")
            if json_ok and isinstance(entry, dict) and "schema" in entry:
                schema_at = f"{at}/content/{pointer([media])[1:]}/schema"
                self.check_schema(schema_at)
                validator = self.validator({"$ref": f"{BASE}#{schema_at}"})
            content[key] = validator
        return BodyCheck(body.get("required") is True, content)


def _mapping(node: Any, at: str) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise SchemaProblem(f"#{at} must be a mapping")
    return node


def path_parameters(item: PathItem, match: re.Match[str]) -> dict[str, list[str]]:
    """The template's parameters in a matched path, percent-decoded (RFC 3986 §2.1)."""
    return {name: [unquote(value)] for name, value in zip(item.names, match.groups(), strict=True)}
