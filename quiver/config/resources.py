"""The ``resources`` section: declared REST resources the gateway stores and serves.

Each resource is a table in a SQLite file (or PostgreSQL) and a REST API under its path
(docs/resources.md)::

    resources:
      - name: items
        path: /items
        fields:
          name: {type: string, minLength: 1, maxLength: 60}
          price: {type: number, minimum: 0}
        required: [name, price]
        unique: [name]

Fields are JSON Schema (the keywords in :data:`FIELD_KEYWORDS`); ``required`` and
``unique`` are written at the resource level, as in JSON Schema.  A child resource
names its ``parent`` and is served under it (``/events/{event_id}/guests``).

The declaration compiles the section into ordinary targets and routes
(:func:`expand`): one in-process target of type ``resource`` and one route per
resource, so every gateway plugin applies to resource routes as to any other, and
one serving their OpenAPI document at :data:`OPENAPI_PATH`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, ValidationInfo, field_validator, model_validator

from quiver.config.base import Strict
from quiver.config.upstream import NAME_PATTERN

RESOURCE_TARGET_TYPE = "resource"
#: the target type of a resource in the json-server dialect (quiver/resources/jsonserver)
JSON_SERVER_TARGET_TYPE = "resource-json-server"
#: the targets and routes the section compiles into are named after it with this prefix
RESOURCE_PREFIX = "resource-"
DEFAULT_DATABASE = "resources.db"
OPENAPI_TARGET_TYPE = "resources-openapi"
#: where the resources' OpenAPI document is served
OPENAPI_PATH = "/openapi/resources.json"

#: how schema changes that would lose data are met: refused, or applied anyway
MigrateMode = Literal["safe", "force"]
#: how an item's key is made: by the store (an integer), at random (a UUID), or sent
KeyType = Literal["auto", "uuid", "given"]
FieldType = Literal["string", "number", "integer", "boolean", "array", "object"]
FIELD_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")
#: the JSON Schema keywords a field may carry
FIELD_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "default",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
        "minItems",
        "maxItems",
        "description",
    }
)
#: names of columns and query parameters: SQL identifiers that need no quoting
_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: field names of the json-server dialect: camelCase too (`postId`), as db.json has them
_JSON_SERVER_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RESERVED_PARAMS = frozenset({"sort", "fields", "limit", "page", "count", "cursor"})
TIMESTAMPS = ("created_at", "updated_at")


class Limit(Strict):
    """How many items a list answers."""

    default: int = Field(20, ge=1, description="Items per page when `limit` is not sent.")
    max: int = Field(100, ge=1, description="The largest `limit` a client may ask for.")

    @model_validator(mode="after")
    def _order(self) -> Limit:
        if self.default > self.max:
            raise ValueError("'default' is larger than 'max'")
        return self


class Parent(Strict):
    """The resource a child belongs to: it is served under the parent's items."""

    resource: str = Field(description="Name of the parent resource (in `resources`).")
    field: str = Field(
        pattern=_COLUMN.pattern,
        description="The child's column holding its parent's key, and the path parameter "
        "naming it, e.g. `event_id` for `/events/{event_id}/guests`.",
    )
    on_delete: Literal["restrict", "cascade"] = Field(
        "restrict",
        description="Deleting a parent with children: restrict refuses it (409), cascade "
        "deletes the children too.",
    )


class PrimaryKey(Strict):
    """The long form of ``primary_key``: its name and how it is made."""

    name: str = Field("id", pattern=_COLUMN.pattern, description="Name of the key.")
    type: KeyType = Field(
        "auto",
        description="auto: an integer the store assigns; uuid: a random UUID the store "
        "assigns; given: one of the fields (string or integer), sent by the client on create.",
    )


Dialect = Literal["quiver", "json-server"]


class Resource(Strict):
    """One resource: a table and the REST API serving it."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name; the table's name.")
    # before `fields`: their validator reads it
    dialect: Dialect = Field(
        "quiver",
        description="How the API reads and answers: `quiver` (this page), or `json-server` "
        "(json-server 0.17's query parameters, ids and answers; `quiver resources serve "
        "db.json` declares such resources). In `json-server`, a field may omit `type` (any "
        "JSON value), field names may be camelCase, and items keep undeclared fields "
        "(`fields` may be empty).",
    )
    path: str | None = Field(
        None,
        description="Where the collection is served, e.g. `/items`; `/NAME` by default. A "
        "child resource is served under its parent's items and takes no path.",
    )
    fields: dict[str, dict[str, Any]] = Field(
        description="The fields by name, each a JSON Schema with type, enum, default, "
        "format, minimum/maximum, minLength/maxLength, pattern, items.",
    )
    required: list[str] = Field(
        default_factory=list, description="Fields every item must have (NOT NULL)."
    )
    unique: list[str] = Field(
        default_factory=list, description="Fields whose values no two items share (409)."
    )
    indexes: list[list[str] | str] = Field(
        default_factory=list,
        description="Indexes for the filters and sorts clients use: a field, or a list of "
        "fields for one index on several (`[status, price]` serves `status=active&sort=price`).",
    )
    timestamps: bool = Field(
        False, description="Keep `created_at` and `updated_at` (ISO 8601, UTC) on each item."
    )
    primary_key: str | PrimaryKey = Field(
        "id",
        description="Name of the key: an integer the store assigns on create, or the "
        "client's value when it names a field; `{name, type}` (auto, uuid or given) says it "
        "explicitly.",
    )
    limit: Limit = Field(default_factory=Limit, description="Page sizes of lists.")
    require_if_match: bool = Field(
        False,
        description="PUT, PATCH and DELETE must carry If-Match (428 without it), so that "
        "no client overwrites a change it has not seen.",
    )
    parent: Parent | None = Field(
        None, description="`{resource, field, on_delete}` of a child resource."
    )

    @field_validator("name")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _COLUMN.fullmatch(value):
            raise ValueError("a resource name is lower case letters, digits and '_'")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"a path is '/' and segments without parameters, got {value!r}")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(
        cls, value: dict[str, dict[str, Any]], info: ValidationInfo
    ) -> dict[str, dict[str, Any]]:
        dialect = info.data.get("dialect", "quiver")
        if not value and dialect == "quiver":  # json-server keeps undeclared fields
            raise ValueError("declare at least one field")
        for name, schema in value.items():
            check_field(name, schema, dialect)
        return value

    @field_validator("primary_key")
    @classmethod
    def _key_name(cls, value: str | PrimaryKey) -> str | PrimaryKey:
        if isinstance(value, str) and not _COLUMN.fullmatch(value):
            raise ValueError("a key name is lower case letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _names(self) -> Resource:
        self._check_key()
        managed = set(self.managed_columns())
        if self.parent is not None and self.path is not None:
            raise ValueError("a child resource is served under its parent: no 'path'")
        for key in ("required", "unique"):
            for name in getattr(self, key):
                if name not in self.fields:
                    raise ValueError(f"'{key}' names '{name}', not a field")
        columns = {*self.fields, *managed}
        for index in self.index_columns:
            if not index:
                raise ValueError("an index in 'indexes' names no field")
            for name in index:
                if name not in columns:
                    raise ValueError(f"'indexes' names '{name}', not a field")
        for name in self.fields:
            if name in managed:
                raise ValueError(f"field '{name}' is kept by the store (key, parent, timestamps)")
        for name in self.unique:
            if self.fields[name].get("type") in ("array", "object"):
                raise ValueError(f"'unique' field '{name}' must be a scalar")
        return self

    def _check_key(self) -> None:
        key = self.primary_key
        if isinstance(key, PrimaryKey) and key.type == "given" and key.name not in self.fields:
            raise ValueError(
                f"primary_key.name: a given key is one of the fields, '{key.name}' is not"
            )
        if self.key_type == "given":
            kind = self.fields[self.key].get("type")
            if kind not in ("string", "integer"):
                raise ValueError(
                    f"primary_key: a given key is a string or integer field, '{self.key}' is {kind}"
                )

    def managed_columns(self) -> list[str]:
        """The columns the store fills, not the client: the key (unless given), the
        parent column and the timestamps."""
        managed = [] if self.key_type == "given" else [self.key]
        if self.parent is not None:
            managed.append(self.parent.field)
        if self.timestamps:
            managed.extend(TIMESTAMPS)
        return managed

    @property
    def key(self) -> str:
        """The key's name (the column and the path parameter)."""
        key = self.primary_key
        return key if isinstance(key, str) else key.name

    @property
    def key_type(self) -> KeyType:
        """How the key is made; a plain name naming a field is a given key."""
        key = self.primary_key
        if isinstance(key, PrimaryKey):
            return key.type
        return "given" if key in self.fields else "auto"

    @property
    def index_columns(self) -> list[tuple[str, ...]]:
        """Each declared index as its columns."""
        return [(index,) if isinstance(index, str) else tuple(index) for index in self.indexes]

    @property
    def collection_path(self) -> str:
        """The path of a top-level collection (a child's is built from its parents)."""
        return self.path or "/" + self.name


def check_field(name: str, schema: dict[str, Any], dialect: Dialect = "quiver") -> None:
    """ValueError naming what is wrong with field ``name``'s schema."""
    if dialect == "json-server":
        if not _JSON_SERVER_COLUMN.fullmatch(name):
            raise ValueError(f"field name {name!r}: letters, digits and '_'")
    elif not _COLUMN.fullmatch(name) or name in _RESERVED_PARAMS:
        raise ValueError(
            f"field name {name!r}: lower case letters, digits and '_', and not one of "
            f"{', '.join(sorted(_RESERVED_PARAMS))}"
        )
    unknown = sorted(set(schema) - FIELD_KEYWORDS)
    if unknown:
        raise ValueError(f"field '{name}': unknown keyword '{unknown[0]}'")
    kind = schema.get("type")
    lenient = dialect == "json-server" and "type" not in schema
    if kind not in FIELD_TYPES and not lenient:
        raise ValueError(f"field '{name}': 'type' must be one of {', '.join(FIELD_TYPES)}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        raise ValueError(f"field '{name}' {where}: {exc.message}") from None
    if "default" in schema:
        errors = list(Draft202012Validator(schema).iter_errors(schema["default"]))
        if errors:
            raise ValueError(f"field '{name}': default does not fit: {errors[0].message}")


def resource_issues(resources: Sequence[Resource]) -> list[str]:
    """What is wrong between resources: duplicates, unknown or cyclic parents, paths
    served twice."""
    issues: list[str] = []
    by_name: dict[str, Resource] = {}
    for index, resource in enumerate(resources):
        if resource.name in by_name:
            issues.append(f"resources[{index}].name: duplicate resource '{resource.name}'")
        by_name[resource.name] = resource
    for index, resource in enumerate(resources):
        seen = {resource.name}
        parent = resource.parent
        while parent is not None:
            if parent.resource not in by_name:
                known = ", ".join(f"'{name}'" for name in by_name)
                issues.append(
                    f"resources[{index}].parent.resource: unknown resource "
                    f"'{parent.resource}' (defined: {known})"
                )
                break
            if parent.resource in seen:
                issues.append(f"resources[{index}].parent: parents form a cycle")
                break
            seen.add(parent.resource)
            parent = by_name[parent.resource].parent
    if issues:
        return issues
    paths: dict[str, str] = {}
    for index, resource in enumerate(resources):
        path = path_template(resource, by_name)
        if path in paths:
            issues.append(f"resources[{index}]: path {path} is served by '{paths[path]}' too")
        paths[path] = resource.name
    return issues


def path_template(resource: Resource, by_name: dict[str, Resource]) -> str:
    """The collection's path, parents' parameters in braces: ``/events/{event_id}/guests``."""
    if resource.parent is None:
        return resource.collection_path
    parent = by_name[resource.parent.resource]
    return f"{path_template(parent, by_name)}/{{{resource.parent.field}}}/{resource.name}"


def ancestors(resource: Resource, by_name: dict[str, Resource]) -> list[Resource]:
    """The resources a child is served under, the root first."""
    found: list[Resource] = []
    parent = resource.parent
    while parent is not None:
        found.insert(0, by_name[parent.resource])
        parent = by_name[parent.resource].parent
    return found


def expand(
    resources: Sequence[Resource], database: str, migrate: MigrateMode = "safe"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The targets and routes (plain data) the section compiles into."""
    by_name = {resource.name: resource for resource in resources}
    targets: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    for resource in resources:
        name = RESOURCE_PREFIX + resource.name
        kind = RESOURCE_TARGET_TYPE if resource.dialect == "quiver" else JSON_SERVER_TARGET_TYPE
        targets.append(
            {
                "name": name,
                "type": kind,
                "options": {
                    "resource": resource.name,
                    "resources": list(resources),
                    "database": database,
                    "migrate": migrate,
                },
            }
        )
        path = path_template(resource, by_name)
        # deeper collections win over the prefix of their parents
        depth = path.count("{")
        routes.append({"name": name, "paths": [path], "target": name, "priority": depth})
    openapi = RESOURCE_PREFIX + "openapi"
    targets.append(
        {"name": openapi, "type": OPENAPI_TARGET_TYPE, "options": {"resources": list(resources)}}
    )
    routes.append({"name": openapi, "paths": ["=" + OPENAPI_PATH], "target": openapi})
    return targets, routes
