"""The settings of ``request-validator``, compiled into checks as they validate."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from quiver.http.normalize import canonical_pattern
from quiver.plugins.base import PluginConfig
from quiver.plugins.request_validator.checks import plain_checks
from quiver.plugins.request_validator.matching import Operations
from quiver.plugins.request_validator.openapi import load_document
from quiver.plugins.request_validator.operations import Check

_SCHEMA_KEYS = ("body", "query", "headers")
_OPENAPI_KEYS = ("base_path", "reject_unknown_operations")


class RequestValidatorConfig(PluginConfig):
    body: dict[str, Any] | None = Field(
        None,
        description="JSON Schema every request body must match, e.g. `{type: object, "
        "required: [name], properties: {name: {type: string}}}`; its `$schema` picks the "
        "draft (4, 6, 7, 2019-09 or 2020-12, the default). The body must then be JSON "
        "(Content-Type application/json or application/*+json). Setting it makes the proxy "
        "read whole request bodies on the route before they go on (up to "
        "`limits.max_buffered_body`, else 413).",
    )
    body_required: bool = Field(
        True,
        description="With `body`: refuse requests that carry no body (of any method); "
        "false checks a body only when one is sent.",
    )
    query: dict[str, Any] | None = Field(
        None,
        description="JSON Schema of the query as an object of its parameters by name, e.g. "
        "`{type: object, required: [limit], properties: {limit: {type: integer, maximum: "
        "100}}}`. Values are text converted to the type their property's schema asks for "
        "(integer, number, boolean); a parameter given more than once is an array, and "
        "must have an array schema (`?id=1&id=2` is `[1, 2]`).",
    )
    headers: dict[str, Any] | None = Field(
        None,
        description="JSON Schema of the request headers as an object by lowercase name, "
        "e.g. `{type: object, required: [x-tenant], properties: {x-tenant: {type: string, "
        "pattern: '^[a-z]+$'}}}`; repeated fields are joined with ', ' and converted like "
        "query values (an array schema splits them at commas). Names must be written in "
        "lowercase.",
    )
    openapi: dict[str, Any] | str | None = Field(
        None,
        description="An OpenAPI 3.0.x or 3.1.x document, inline or the path of a YAML or "
        "JSON file (relative to the directory Quiver runs in), read when the config "
        "loads. The request's operation is found by method and path template, and its "
        "path, query, header and cookie parameters (by `style` and `explode`) and "
        "`requestBody` are checked. `$ref` must point inside the document. Used instead "
        "of `body`, `query` and `headers`.",
    )
    base_path: str = Field(
        "",
        description="With `openapi`: the part of the request path before the document's "
        "paths, e.g. '/v1' when the route serves /v1/items and the document lists /items "
        "(the document's `servers` are not looked at). Paths outside it match no operation. "
        "A base_path under which no request of the plugin's routes can match an operation "
        "(their paths are all elsewhere) is a config error.",
    )
    reject_unknown_operations: bool = Field(
        False,
        description="With `openapi`: refuse requests that match no operation of the "
        "document, with 404 (no such path) or 405 (no such method for the path, with an "
        "Allow header); by default they pass unchecked.",
    )

    _checks: tuple[Check, ...] = PrivateAttr(default=())
    _operations: Operations | None = PrivateAttr(default=None)

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str) -> str:
        if value and (not value.startswith("/") or "?" in value or "{" in value):
            raise ValueError("write a plain path such as '/v1'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _compile(self) -> RequestValidatorConfig:
        schemas = [key for key in _SCHEMA_KEYS if getattr(self, key) is not None]
        if self.openapi is None:
            if not schemas:
                raise ValueError("give 'openapi', or a schema in 'body', 'query' or 'headers'")
            for key in _OPENAPI_KEYS:
                if key in self.model_fields_set:
                    raise ValueError(f"'{key}' applies only with 'openapi'")
            if "body_required" in self.model_fields_set and self.body is None:
                raise ValueError("'body_required' applies only with 'body'")
            self._checks = plain_checks(
                body=self.body,
                body_required=self.body_required,
                query=self.query,
                headers=self.headers,
            )
            return self
        if schemas:
            raise ValueError(f"give 'openapi' or {', '.join(repr(k) for k in schemas)}, not both")
        if "body_required" in self.model_fields_set:
            raise ValueError(
                "'body_required' does not apply with 'openapi' (its "
                "requestBody says whether a body is required)"
            )
        # (the setting stays as written, a file name say; the document is read here)
        self._operations = Operations(
            load_document(self.openapi),
            base_path=self.base_path,
            reject_unknown=self.reject_unknown_operations,
        )
        return self

    def path_issues(self, paths: list[str]) -> list[tuple[str, str]]:
        """(key, message) for each problem of these settings on routes serving ``paths``
        (their path patterns): with a base_path outside them, or none where one is
        needed, no operation of the document can ever match, so every request would
        pass unchecked (or be refused, with reject_unknown_operations)."""
        operations = self._operations
        if operations is None or not operations.items or not paths:
            return []
        templates = [item.template for item in operations.items]
        if any(_may_reach(path, self.base_path, templates) for path in paths):
            return []
        served = ", ".join(repr(path) for path in paths)
        fate = "refused" if self.reject_unknown_operations else "let through unchecked"
        return [
            (
                "base_path",
                f"no request to {served} can match an operation of the OpenAPI document "
                f"under base_path {self.base_path or '/'!r}, so every request would be {fate}; "
                "give the part of the request path before the document's paths",
            )
        ]

    @property
    def checks(self) -> tuple[Check, ...]:
        """What every request goes through (for schemas given per part)."""
        return self._checks

    @property
    def operations(self) -> Operations | None:
        """The document's operations (with ``openapi``)."""
        return self._operations


def _may_reach(route_path: str, base_path: str, templates: list[str]) -> bool:
    """Whether some request a route path pattern accepts can be ``base_path`` followed by
    one of the document's path ``templates`` (generous: a regex always can)."""
    if route_path.startswith("~"):
        return True
    anchored = route_path.startswith("=")
    try:
        literal = canonical_pattern(route_path[1:] if anchored else route_path)
    except ValueError:
        return True
    route = _segments(literal.decode("latin-1"))
    base = _segments(base_path)
    for template in templates:
        full = base + _segments(template)
        if len(route) > len(full) or (anchored and len(route) != len(full)):
            continue  # (a prefix also accepts the longer paths below it)
        if all(a is None or b is None or a == b for a, b in zip(route, full, strict=False)):
            return True
    return False


def _segments(path: str) -> list[str | None]:
    """``/a/{id}/b`` -> ``["a", None, "b"]``: None where a parameter is."""
    return [None if "{" in part else part for part in path.split("/") if part]
