"""The operations of an OpenAPI 3.0/3.1 document as MCP tools.

- :func:`tools_from_openapi` reads a document into :class:`Operation` records, one
  per path-item method, each able to say its ``Tool`` (:meth:`Operation.tool`).
- :func:`build_request` turns a tool call's arguments into the HTTP request the
  operation stands for (:class:`OutgoingRequest`), after checking them against the
  tool's ``inputSchema``.
- :func:`tool_result` turns that request's answer into a ``CallToolResult``.

(The last two live in :mod:`quiver.mcp.openapi_calls`, the schema conversion in
:mod:`quiver.mcp.openapi_schema`; this module is the one to import.)

Pure: no I/O.  A document that cannot be published is a ``ValueError`` naming what
is wrong; an operation a tool call cannot carry (a multipart or binary body, a path
variable without its parameter) is left out and listed in
:attr:`Operations.skipped` with the reason.

How arguments are laid out (``inputSchema``):

- path, query and header parameters are properties under their own names (path
  parameters are always required); cookie parameters are left out, and so are
  header parameters named Accept, Content-Type or Authorization (OpenAPI 3.1.0
  §4.8.12.1: such definitions are ignored).  Two parameters of one name in different
  locations are *both* named ``<in>_<name>`` (``path_id`` and ``query_id``).
- a JSON body whose schema is a plain object (``type: object`` with ``properties``
  and no composition or additional properties) is spread: its properties sit beside
  the parameters, its ``required`` joined to theirs.  It is not spread when a
  property name is taken by a parameter, or when the body is optional yet has
  required properties (spreading would lose that "all or nothing").  Otherwise the
  whole body is one property, ``body`` (``request_body`` when a parameter is named
  ``body``), required when ``requestBody.required`` is.
- a ``text/*`` body is a string ``body``; an ``application/x-www-form-urlencoded``
  body an object ``body``.  ``*/*`` is taken as JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from quiver.mcp.openapi_calls import (
    ERROR_TEXT_LIMIT,
    BodyEncoding,
    OutgoingRequest,
    build_request,
    media_kind,
    tool_result,
)
from quiver.mcp.openapi_schema import Document, SchemaWriter

__all__ = [
    "ERROR_TEXT_LIMIT",
    "METHODS",
    "TOOL_NAME",
    "Body",
    "Operation",
    "Operations",
    "OutgoingRequest",
    "Parameter",
    "build_request",
    "tool_result",
    "tools_from_openapi",
]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: MCP's rule for a tool name
TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: RFC 9110 §9.2.1 and §9.2.2
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_IDEMPOTENT = _SAFE | {"PUT", "DELETE"}
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2

Location = Literal["path", "query", "header"]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A path, query or header parameter and the argument that carries it."""

    name: str
    location: Location
    argument: str
    style: str
    explode: bool
    allow_reserved: bool = False
    #: a parameter described by ``content`` rather than ``schema``: sent as JSON text
    as_json: bool = False


@dataclass(frozen=True, slots=True)
class Body:
    """How an operation's request body is made from the arguments."""

    media_type: str
    encoding: BodyEncoding
    #: the argument holding the whole body; None when its properties are spread
    argument: str | None
    #: the spread properties (empty unless ``argument`` is None)
    fields: tuple[str, ...] = ()
    required: bool = False


@dataclass(eq=False)
class Operation:
    """One operation of the document, published as one tool."""

    name: str
    method: str  # upper case
    path: str  # the path template, e.g. /items/{id}
    operation_id: str | None
    summary: str | None
    description: str
    parameters: tuple[Parameter, ...]
    body: Body | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any]
    #: checks arguments against ``input_schema``
    validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.validator = Draft202012Validator(self.input_schema)

    def tool(self) -> dict[str, Any]:
        """The MCP ``Tool`` object."""
        tool: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            tool["outputSchema"] = self.output_schema
        tool["annotations"] = self.annotations
        return tool


class Operations(list[Operation]):
    """The operations published as tools, with those that could not be."""

    def __init__(self) -> None:
        super().__init__()
        #: (tool name, reason) of each operation left out
        self.skipped: list[tuple[str, str]] = []


class _Skip(Exception):
    """An operation a tool call cannot carry (not a fault of the document)."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    method: str
    path: str
    item: dict[str, Any]
    operation: dict[str, Any]
    name: str

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


# -- reading the document ---------------------------------------------------------


def tools_from_openapi(
    document: dict[str, Any],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> Operations:
    """The operations of ``document`` as tools.

    ``include`` and ``exclude`` entries match a tool name, an operationId or
    ``METHOD /path`` (the method in any case), with ``*`` globs; ``include`` None
    takes every operation, and ``exclude`` wins.  An entry matching no operation is
    a ValueError (it is most likely a typo), as is a document that is not OpenAPI
    3.0/3.1 or that two operations would publish under one tool name::

        tools = tools_from_openapi(document, exclude=["DELETE /*"])
        listed = [operation.tool() for operation in tools]
    """
    doc = _document(document)
    candidates = list(_candidates(doc))
    chosen = _select(candidates, include, exclude)
    operations = Operations()
    for candidate in chosen:
        try:
            operations.append(_operation(doc, candidate))
        except _Skip as skip:
            operations.skipped.append((candidate.name, f"{candidate.label}: {skip}"))
        except ValueError as exc:
            raise ValueError(f"{candidate.label}: {exc}") from exc
    return operations


def _document(document: object) -> Document:
    if not isinstance(document, dict):
        raise ValueError(
            f"an OpenAPI document must be a JSON object, not {type(document).__name__}"
        )
    if "swagger" in document:
        raise ValueError(
            f"Swagger {document['swagger']} documents are not supported: "
            "convert the document to OpenAPI 3.0 or 3.1"
        )
    version = document.get("openapi")
    if not isinstance(version, str) or not re.match(r"3\.[01](\.|$)", version):
        raise ValueError(f"openapi version {version!r} is not supported: 3.0.x or 3.1.x")
    if not isinstance(document.get("paths"), dict):
        raise ValueError("the document has no 'paths' object")
    return Document(document)


def _candidates(doc: Document) -> Iterator[_Candidate]:
    by_name: dict[str, str] = {}
    for path, raw in doc.raw["paths"].items():
        if not isinstance(path, str) or not path.startswith("/"):
            continue  # extensions (x-...)
        try:
            item = doc.resolve(raw)
        except ValueError as exc:
            raise ValueError(f"path {path}: {exc}") from exc
        if not isinstance(item, dict):
            raise ValueError(f"path item {path!r} is not an object")
        for method in METHODS:
            label = f"{method.upper()} {path}"
            try:
                operation = doc.resolve(item.get(method))
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from exc
            if operation is None:
                continue
            if not isinstance(operation, dict):
                raise ValueError(f"{label} is not an object")
            name = _tool_name(operation.get("operationId"), method, path)
            if name in by_name:
                raise ValueError(
                    f"{by_name[name]} and {label} would both be the tool {name!r}; "
                    "give them distinct operationIds"
                )
            by_name[name] = label
            yield _Candidate(method.upper(), path, item, operation, name)


def _tool_name(operation_id: object, method: str, path: str) -> str:
    if isinstance(operation_id, str) and TOOL_NAME.fullmatch(operation_id):
        return operation_id
    if isinstance(operation_id, str) and (name := _sanitize(operation_id)):
        return name
    return _sanitize(f"{method}_{path}")


def _sanitize(text: str) -> str:
    name = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9_.-]", "_", text)).strip("_")
    return name[:128].rstrip("_")


def _select(
    candidates: list[_Candidate], include: Sequence[str] | None, exclude: Sequence[str]
) -> list[_Candidate]:
    for key, entries in (("include", include), ("exclude", exclude)):
        if isinstance(entries, str):
            raise ValueError(f"{key} must be a list of patterns, not a string")
        for entry in entries or ():
            if not any(_matches(entry, c) for c in candidates):
                raise ValueError(f"{key} entry {entry!r} matches no operation")
    return [
        c
        for c in candidates
        if (include is None or any(_matches(e, c) for e in include))
        and not any(_matches(e, c) for e in exclude)
    ]


def _matches(pattern: str, candidate: _Candidate) -> bool:
    method, space, path = pattern.partition(" ")
    if space and fnmatchcase(candidate.label, f"{method.upper()} {path.strip()}"):
        return True
    operation_id = candidate.operation.get("operationId")
    return fnmatchcase(candidate.name, pattern) or (
        isinstance(operation_id, str) and fnmatchcase(operation_id, pattern)
    )


# -- one operation ------------------------------------------------------------------


def _operation(doc: Document, candidate: _Candidate) -> Operation:
    operation = candidate.operation
    writer = SchemaWriter(doc, "request")
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters = _parameters(doc, candidate, writer, properties, required)
    body = _body(doc, operation.get("requestBody"), writer, properties, required)
    input_schema = writer.finish({"type": "object", "properties": properties})
    if required:
        input_schema["required"] = required
    try:
        Draft202012Validator.check_schema(input_schema)
    except SchemaError as exc:
        raise _Skip(f"its input schema is not valid JSON Schema: {exc.message}") from exc

    summary = operation.get("summary") if isinstance(operation.get("summary"), str) else None
    text = operation.get("description")
    parts = [p for p in (summary, text if isinstance(text, str) else None) if p]
    annotations: dict[str, Any] = {}
    if summary:
        annotations["title"] = summary
    if candidate.method in _SAFE:
        annotations["readOnlyHint"] = True
    if candidate.method == "DELETE":
        annotations["destructiveHint"] = True
    if candidate.method in _IDEMPOTENT:
        annotations["idempotentHint"] = True
    operation_id = operation.get("operationId")
    return Operation(
        name=candidate.name,
        method=candidate.method,
        path=candidate.path,
        operation_id=operation_id if isinstance(operation_id, str) else None,
        summary=summary,
        description="\n\n".join(parts) or candidate.label,
        parameters=parameters,
        body=body,
        input_schema=input_schema,
        output_schema=_output_schema(doc, operation.get("responses")),
        annotations=annotations,
    )


def _parameters(
    doc: Document,
    candidate: _Candidate,
    writer: SchemaWriter,
    properties: dict[str, Any],
    required: list[str],
) -> tuple[Parameter, ...]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (candidate.item.get("parameters"), candidate.operation.get("parameters")):
        for raw in source or ():
            parameter = doc.resolve(raw)
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise ValueError("a parameter must be an object with a name")
            merged[(parameter["name"], parameter.get("in", ""))] = parameter  # operation wins
    variables = re.findall(r"\{([^{}]+)\}", candidate.path)
    kept = []
    for (name, where), parameter in merged.items():
        if where not in ("path", "query", "header", "cookie"):
            raise ValueError(f"parameter {name!r} has an unknown location {where!r}")
        if where == "cookie" or (where == "header" and name.lower() in _IGNORED_HEADERS):
            continue
        if where == "path" and name not in variables:
            continue
        if where == "header" and not _TOKEN.fullmatch(name):
            raise _Skip(f"header parameter {name!r} is not a valid field name")
        kept.append(parameter)
    declared = {p["name"] for p in kept if p["in"] == "path"}
    for variable in variables:
        if variable not in declared:
            raise _Skip(f"path variable {{{variable}}} has no path parameter")

    clashing = {n for n, count in Counter(p["name"] for p in kept).items() if count > 1}
    result = []
    for parameter in kept:
        name, where = parameter["name"], parameter["in"]
        argument = f"{where}_{name}" if name in clashing else name
        if argument in properties:
            raise ValueError(f"two parameters would both be the argument {argument!r}")
        schema, as_json = _parameter_schema(parameter, writer)
        properties[argument] = schema
        if where == "path" or parameter.get("required") is True:
            required.append(argument)
        style = parameter.get("style") or ("form" if where == "query" else "simple")
        explode = parameter.get("explode", style == "form")
        result.append(
            Parameter(
                name,
                where,
                argument,
                style,
                explode is True,
                parameter.get("allowReserved") is True,
                as_json,
            )
        )
    return tuple(result)


def _parameter_schema(parameter: dict[str, Any], writer: SchemaWriter) -> tuple[Any, bool]:
    as_json = "schema" not in parameter and isinstance(parameter.get("content"), dict)
    if as_json:
        media = next(iter(parameter["content"].values()), None) or {}
        raw = media.get("schema", {}) if isinstance(media, dict) else {}
    else:
        raw = parameter.get("schema", {"type": "string"})
    schema = writer.convert(raw)
    description = parameter.get("description")
    if isinstance(description, str) and description:
        if schema is True:
            schema = {}
        if isinstance(schema, dict) and "description" not in schema:
            schema = {**schema, "description": description}
    return schema, as_json


def _body(
    doc: Document,
    raw: object,
    writer: SchemaWriter,
    properties: dict[str, Any],
    required: list[str],
) -> Body | None:
    request_body = doc.resolve(raw)
    if request_body is None:
        return None
    content = request_body.get("content") if isinstance(request_body, dict) else None
    if not isinstance(content, dict) or not content:
        return None
    kinds = {media: media_kind(media) for media in content}
    chosen = next(
        (m for kind in ("json", "form", "text") for m, k in kinds.items() if k == kind), None
    )
    if chosen is None:
        raise _Skip(f"a tool call cannot carry a {' or '.join(content)} request body")
    encoding = kinds[chosen]
    assert encoding is not None
    media = content[chosen] if isinstance(content[chosen], dict) else {}
    default = {"type": "string"} if encoding == "text" else {"type": "object"}
    schema = writer.convert(media.get("schema", default))
    if encoding == "text":
        schema = {"type": "string"}  # sent as it is, whatever its schema says
    body_required = request_body.get("required") is True
    media_type = "application/json" if chosen == "*/*" else chosen
    if encoding == "text" and "charset" not in media_type.lower():
        media_type += "; charset=utf-8"

    if encoding == "json" and _spreadable(schema, body_required, properties):
        fields = tuple(schema["properties"])
        properties.update(schema["properties"])
        if body_required:
            required.extend(n for n in schema.get("required", ()) if n in schema["properties"])
        return Body(media_type, encoding, None, fields, body_required)

    argument = "request_body" if "body" in properties else "body"
    if argument in properties:
        raise ValueError("parameters named 'body' and 'request_body' leave no name for the body")
    description = request_body.get("description")
    if isinstance(description, str) and isinstance(schema, dict):
        schema = {"description": description, **schema}
    properties[argument] = schema
    if body_required:
        required.append(argument)
    return Body(media_type, encoding, argument, (), body_required)


_PLAIN_OBJECT_KEYS = frozenset(
    {"type", "properties", "required", "title", "description", "examples", "additionalProperties"}
)


def _spreadable(schema: Any, body_required: bool, taken: dict[str, Any]) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "object"
        and isinstance(schema.get("properties"), dict)
        and set(schema) <= _PLAIN_OBJECT_KEYS
        and schema.get("additionalProperties", False) is False
        and (body_required or not schema.get("required"))
        and not set(schema["properties"]) & set(taken)
    )


def _output_schema(doc: Document, raw: object) -> dict[str, Any] | None:
    """The first 2xx response's JSON schema, when it describes an object (MCP asks
    an ``outputSchema`` to be one)."""
    responses = doc.resolve(raw)
    if not isinstance(responses, dict):
        return None
    by_code = {str(code).upper(): response for code, response in responses.items()}
    codes = sorted(c for c in by_code if re.fullmatch(r"2\d\d", c))
    for code in [*codes, "2XX"] if "2XX" in by_code else codes:
        response = doc.resolve(by_code[code])
        content = response.get("content") if isinstance(response, dict) else None
        for media_type, media in (content or {}).items():
            if media_kind(media_type) != "json" or not isinstance(media, dict):
                continue
            if "schema" not in media:
                continue
            writer = SchemaWriter(doc, "response")
            schema = writer.convert(media["schema"])
            if not isinstance(schema, dict) or schema.get("type") != "object":
                return None
            schema = writer.finish(dict(schema))
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError:
                return None  # the tool still works, its results unchecked
            return schema
    return None
