"""The operations of an OpenAPI 3.0/3.1 document as MCP tools.

- :func:`tools_from_openapi` reads a document into :class:`Operation` records, one
  per path-item method, each able to say its ``Tool`` (:meth:`Operation.tool`).
- :func:`build_request` turns a tool call's arguments into the HTTP request the
  operation stands for (:class:`OutgoingRequest`), after checking them against the
  tool's ``inputSchema``.
- :func:`tool_result` turns that request's answer into a ``CallToolResult``.

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

import base64
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import quote

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from quiver.mcp.contract import INVALID_PARAMS, McpError
from quiver.mcp.openapi_schema import Document, SchemaWriter

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: MCP's rule for a tool name
TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: RFC 9110 §9.2.1 and §9.2.2
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_IDEMPOTENT = _SAFE | {"PUT", "DELETE"}
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2
#: RFC 3986 §2.2, left as they are in a query value with ``allowReserved``
_RESERVED = ":/?#[]@!$&'()*+,;="
#: the most of an error body a result's text carries
ERROR_TEXT_LIMIT = 8192

Location = Literal["path", "query", "header"]
BodyEncoding = Literal["json", "form", "text"]


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
    _validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validator = Draft202012Validator(self.input_schema)

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


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """The HTTP request a tool call stands for; ``path`` and ``query`` are
    percent-encoded, ``content_type`` is not among ``headers``."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str | None

    @property
    def target(self) -> str:
        """The request target: path and query."""
        return f"{self.path}?{self.query}" if self.query else self.path


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


def _media_kind(media_type: str) -> BodyEncoding | None:
    base = media_type.split(";")[0].strip().lower()
    if base in ("application/json", "*/*") or base.endswith("+json"):
        return "json"
    if base == "application/x-www-form-urlencoded":
        return "form"
    if base.startswith("text/"):
        return "text"
    return None


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
    kinds = {media: _media_kind(media) for media in content}
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
            if _media_kind(media_type) != "json" or not isinstance(media, dict):
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


# -- a tool call as a request ---------------------------------------------------------


def build_request(operation: Operation, arguments: dict[str, Any]) -> OutgoingRequest:
    """The request ``arguments`` make of ``operation``; McpError(INVALID_PARAMS)
    naming the argument when they do not fit its ``inputSchema``."""
    if not isinstance(arguments, dict):
        raise McpError(INVALID_PARAMS, f"the arguments of {operation.name} must be an object")
    properties = operation.input_schema["properties"]
    for name in arguments:
        if name not in properties:
            raise McpError(INVALID_PARAMS, f"{operation.name} has no argument {name!r}")
    for name in operation.input_schema.get("required", ()):
        if name not in arguments:
            raise McpError(INVALID_PARAMS, f"argument {name!r} of {operation.name} is required")
    error = best_match(operation._validator.iter_errors(arguments))
    if error is not None:
        where = error.absolute_path[0] if error.absolute_path else None
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
        subject = f"argument {where!r}" if where is not None else "the arguments"
        raise McpError(INVALID_PARAMS, f"{subject} of {operation.name}: {message}")

    path = operation.path
    query: list[str] = []
    headers: list[tuple[str, str]] = []
    for parameter in operation.parameters:
        value = arguments.get(parameter.argument)
        if value is None and parameter.location == "path" and parameter.argument in arguments:
            raise McpError(INVALID_PARAMS, f"argument {parameter.argument!r} cannot be null")
        if value is None:
            continue  # an absent or null optional parameter is not sent
        if parameter.location == "path":
            path = path.replace("{" + parameter.name + "}", _path_value(parameter, value))
        elif parameter.location == "query":
            query.extend(_query_pairs(parameter, value))
        else:
            headers.append((parameter.name, _header_value(parameter, value)))
    body, content_type = _request_body(operation.body, arguments)
    return OutgoingRequest(operation.method, path, "&".join(query), headers, body, content_type)


def _text(value: Any) -> str:
    """A scalar as parameter text: booleans as ``true``/``false``, structures as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return _json(value).decode()


def _json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise McpError(INVALID_PARAMS, f"a value cannot be sent as JSON: {exc}") from exc


def _path_value(parameter: Parameter, value: Any) -> str:
    """RFC 6570 simple, label or matrix expansion, every reserved character
    percent-encoded (a ``/`` in a value does not make a new segment)."""
    if parameter.as_json:
        return quote(_json(value), safe="")
    if isinstance(value, list):
        items = [quote(_text(v), safe="") for v in value]
    elif isinstance(value, dict):
        joint = "=" if parameter.explode else ","
        items = [
            quote(str(k), safe="") + joint + quote(_text(v), safe="") for k, v in value.items()
        ]
    else:
        text = _text(value)
        if text in ("", ".", ".."):
            # would drop or climb a path segment and reach another resource
            raise McpError(INVALID_PARAMS, f"argument {parameter.argument!r} cannot be {text!r}")
        items = [quote(text, safe="")]
    if parameter.style == "label":
        return "." + ("." if parameter.explode else ",").join(items)
    if parameter.style == "matrix":
        if parameter.explode and isinstance(value, list):
            return "".join(f";{parameter.name}={item}" for item in items)
        return f";{parameter.name}=" + ",".join(items)
    return ",".join(items)


def _query_pairs(parameter: Parameter, value: Any) -> list[str]:
    safe = _RESERVED if parameter.allow_reserved else ""
    name = quote(parameter.name, safe="")

    def encode(text: str) -> str:
        return quote(text, safe=safe)

    if parameter.as_json:
        return [f"{name}={quote(_json(value), safe=safe)}"]
    if isinstance(value, list):
        items = [encode(_text(v)) for v in value]
        if parameter.style == "form" and parameter.explode:
            return [f"{name}={item}" for item in items]
        joint = {"spaceDelimited": "%20", "pipeDelimited": "%7C"}.get(parameter.style, ",")
        return [f"{name}={joint.join(items)}"]
    if isinstance(value, dict):
        if parameter.style == "deepObject":
            return [
                f"{name}%5B{quote(str(k), safe='')}%5D={encode(_text(v))}"
                for k, v in value.items()
                if v is not None
            ]
        return [f"{name}={encode(_json(value).decode())}"]
    return [f"{name}={encode(_text(value))}"]


def _header_value(parameter: Parameter, value: Any) -> str:
    if parameter.as_json or isinstance(value, dict):
        text = _json(value).decode()
    elif isinstance(value, list):
        text = ",".join(_text(v) for v in value)
    else:
        text = _text(value)
    # RFC 9110 §5.5: no control characters but HTAB; CR or LF would start a new field
    if any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in text):
        raise McpError(
            INVALID_PARAMS,
            f"argument {parameter.argument!r} holds a control character and cannot be "
            "sent in a header",
        )
    return text.strip(" \t")


def _request_body(body: Body | None, arguments: dict[str, Any]) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if body.argument is None:
        given = {n: arguments[n] for n in body.fields if n in arguments}
        if not given and not body.required:
            return b"", None
        value: Any = given
    elif body.argument in arguments:
        value = arguments[body.argument]
    else:
        return b"", None
    if body.encoding == "json":
        return _json(value), body.media_type
    if body.encoding == "text":
        return _text(value).encode(), body.media_type
    pairs: list[str] = []
    for key, item in (value or {}).items():
        for one in item if isinstance(item, list) else [item]:
            if one is not None:
                pairs.append(f"{quote(str(key), safe='')}={quote(_text(one), safe='')}")
    return "&".join(pairs).encode(), body.media_type


# -- an answer as a tool result --------------------------------------------------------


def tool_result(
    operation: Operation, status: int, content_type: str | None, body: bytes
) -> dict[str, Any]:
    """The ``CallToolResult`` for the answer to ``operation``'s request.

    - 2xx JSON: the JSON text as text content, and the parsed value as
      ``structuredContent`` when it is an object.  When the operation declares an
      ``outputSchema`` (always an object) and the answer is not an object, the
      result is an error saying so: a client checks structured content against
      the schema and would refuse the result anyway.
    - 2xx text: one text content; ``image/*`` and ``audio/*``: image or audio
      content; other binary: an embedded resource with the bytes as a base64
      ``blob`` (``uri`` ``openapi://<tool name>/result``).  An empty body (204):
      one empty text content.
    - any other status: ``isError``, text content with the status and the problem
      document's ``title``/``detail`` (or the body's text, at most
      :data:`ERROR_TEXT_LIMIT` characters), the JSON document as
      ``structuredContent`` when it is an object.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if not 200 <= status < 300:
        return _error_result(status, media, content_type, body)
    if not body:
        return {"content": [{"type": "text", "text": ""}], "isError": False}
    if _media_kind(media) == "json":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = None
        else:
            text = body.decode("utf-8", "replace")
            result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
            if isinstance(value, dict):
                result["structuredContent"] = value
            elif operation.output_schema is not None:
                note = (
                    f"{operation.name} answered {status} with JSON that is not the object "
                    "its document describes:\n"
                )
                return {"content": [{"type": "text", "text": note + text}], "isError": True}
            result["isError"] = False
            return result
    decoded = _decoded(media, content_type, body)
    if decoded is not None:
        return {"content": [{"type": "text", "text": decoded}], "isError": False}
    data = base64.b64encode(body).decode()
    mime = media or "application/octet-stream"
    kind = mime.partition("/")[0]
    if kind in ("image", "audio"):
        content: dict[str, Any] = {"type": kind, "data": data, "mimeType": mime}
    else:
        uri = f"openapi://{operation.name}/result"
        content = {"type": "resource", "resource": {"uri": uri, "mimeType": mime, "blob": data}}
    return {"content": [content], "isError": False}


def _decoded(media: str, content_type: str | None, body: bytes) -> str | None:
    """``body`` as text when its media type is textual (or absent and the bytes are
    UTF-8); None for binary."""
    textual = (
        media.startswith("text/")
        or _media_kind(media) in ("json", "form")
        or media.endswith(("+xml", "/xml", "/yaml", "/javascript"))
    )
    charset = re.search(r"charset=\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    encoding = charset.group(1) if charset else "utf-8"
    if textual:
        try:
            return body.decode(encoding, "replace")
        except LookupError:
            return body.decode("utf-8", "replace")
    if not media:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _error_result(status: int, media: str, content_type: str | None, body: bytes) -> dict[str, Any]:
    result: dict[str, Any] = {"isError": True}
    document: Any = None
    if _media_kind(media) == "json" and body:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
    if isinstance(document, dict) and (
        isinstance(document.get("title"), str) or isinstance(document.get("detail"), str)
    ):
        said = ": ".join(
            str(document[k]) for k in ("title", "detail") if isinstance(document.get(k), str)
        )
    else:
        decoded = _decoded(media, content_type, body)
        said = decoded if decoded is not None else f"{len(body)} bytes of {media or 'binary'}"
    if len(said) > ERROR_TEXT_LIMIT:
        said = said[:ERROR_TEXT_LIMIT] + " [cut]"
    text = f"HTTP {status}: {said}" if said else f"HTTP {status}"
    result["content"] = [{"type": "text", "text": text}]
    if isinstance(document, dict):
        result["structuredContent"] = document
    return result
