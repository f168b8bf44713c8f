"""The checks a request goes through: its parameters of one location, or its body.

Both are built once when the config loads; per request they read the parts of the
request they need from ``Inputs``, which parses each part at most once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from jsonschema.protocols import Validator

from quiver.plugins.base import PluginRequest
from quiver.plugins.request_validator.params import Param, describe, gather
from quiver.plugins.request_validator.schemas import (
    Location,
    SchemaProblem,
    Violation,
    compile_schema,
    lookup,
    violation,
    violations,
)


class Inputs:
    """The parts of one request, as text by name, each parsed when first asked for."""

    def __init__(self, request: PluginRequest, path: Mapping[str, list[str]] | None = None):
        self.request = request
        self.path = path or {}

    @cached_property
    def query(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        text = self.request.query.decode("utf-8", "replace")
        for key, value in parse_qsl(text, keep_blank_values=True, errors="replace"):
            found.setdefault(key, []).append(value)
        return found

    @cached_property
    def header(self) -> dict[str, list[str]]:
        # by lowercase name; repeated fields joined by ", " (RFC 9110 §5.3)
        found: dict[str, list[str]] = {}
        for name, value in self.request.headers:
            found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        return {name: [", ".join(values)] for name, values in found.items()}

    @cached_property
    def cookie(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.request.headers:
            if name.lower() == b"cookie":
                for pair in value.decode("latin-1").split(";"):
                    key, sep, text = pair.strip(" \t").partition("=")
                    if sep:
                        found.setdefault(key, []).append(text)
        return found

    def of(self, location: Location) -> Mapping[str, list[str]]:
        if location == "path":
            return self.path
        if location == "body":
            raise ValueError("the body is no parameter")
        parts: Mapping[str, list[str]] = getattr(self, location)
        return parts


@dataclass(frozen=True)
class ParameterCheck:
    """The parameters in one location (query, header, path or cookie), as one object."""

    location: Location
    params: Mapping[str, Param]  # how to read the declared ones
    validator: Validator  # of the object of them all, by name

    def run(self, inputs: Inputs) -> list[Violation]:
        values, problems = gather(self.params, inputs.of(self.location), self.location)
        unread = [problem["pointer"] for problem in problems]
        for found in violations(self.validator, values, self.location):
            at = found["pointer"]
            if not any(at == u or at.startswith(u + "/") for u in unread):
                problems.append(found)
        return problems


@dataclass(frozen=True)
class BodyCheck:
    """The body: present when required, of an accepted media type, valid JSON matching
    the schema of its media type (when it is JSON and has one)."""

    required: bool
    content: Mapping[str, Validator | None]  # by media type or range, e.g. "application/*"

    def run(self, inputs: Inputs) -> list[Violation]:
        body = inputs.request.body or b""
        if not body:
            return [violation("body", "", "is required")] if self.required else []
        if not self.content:
            return []
        media = media_type(inputs.request.get(b"content-type"))
        key = _matching(media, self.content)
        if key is None:
            sent = f"Content-Type {media}" if media else "no Content-Type"
            accepted = ", ".join(self.content)
            return [violation("body", "", f"has {sent}; accepted: {accepted}")]
        validator = self.content[key]
        if validator is None or not is_json(media):
            return []
        try:
            document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except RecursionError:
            return [violation("body", "", "is nested too deeply to be read")]
        except ValueError as exc:
            return [violation("body", "", f"is not valid JSON ({exc})")]
        return violations(validator, document, "body")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON value")  # json.loads accepts NaN and Infinity


def media_type(value: bytes | None) -> str:
    """The media type of a Content-Type value, lowercased, without parameters."""
    if value is None:
        return ""
    return value.decode("latin-1").partition(";")[0].strip(" \t").lower()


def is_json(media: str) -> bool:
    """application/json, or any type with the +json structured suffix (RFC 6839 §3.1)."""
    return media == "application/json" or media.endswith("+json")


def _matching(media: str, content: Mapping[str, Any]) -> str | None:
    # the most specific key first, as OpenAPI 3 §4.8.14 has it ("text/plain" over
    # "text/*" over "*/*"), with "type/*+suffix" between the exact type and "type/*"
    kind, _, subtype = media.partition("/")
    candidates = [media]
    if "+" in subtype:
        candidates.append(f"{kind}/*+{subtype.rpartition('+')[2]}")
    candidates += [f"{kind}/*", "*/*"]
    return next((c for c in candidates if c and c in content), None)


def plain_checks(
    *,
    body: dict[str, Any] | None,
    body_required: bool,
    query: dict[str, Any] | None,
    headers: dict[str, Any] | None,
) -> tuple[ParameterCheck | BodyCheck, ...]:
    """The checks for JSON Schemas given per part of the request (SchemaProblem if not)."""
    checks: list[ParameterCheck | BodyCheck] = []
    if query is not None:
        checks.append(_parameters("query", query))
    if headers is not None:
        _check_lowercase(headers)
        checks.append(_parameters("header", headers))
    if body is not None:
        validator = compile_schema(body, where="body")
        content = {"application/json": validator, "application/*+json": validator}
        checks.append(BodyCheck(body_required, content))
    return tuple(checks)


def _parameters(location: Location, schema: dict[str, Any]) -> ParameterCheck:
    where = "headers" if location == "header" else location
    validator = compile_schema(schema, where=where)
    params = {}
    for name, member in (schema.get("properties") or {}).items():
        try:
            params[name] = describe(name, member, lambda r: lookup(schema, r), location=location)
        except SchemaProblem:
            params[name] = Param(name)  # an object: its text is checked as it is
    return ParameterCheck(location, params, validator)


def _check_lowercase(schema: dict[str, Any]) -> None:
    names = [*(schema.get("properties") or {}), *(schema.get("required") or [])]
    for name in names:
        if isinstance(name, str) and name != name.lower():
            raise SchemaProblem(
                f"headers: write header names in lowercase ({name!r} as {name.lower()!r}): "
                "they are matched case-insensitively"
            )
