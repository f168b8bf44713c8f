"""A tool call as the HTTP request its operation stands for, and the answer as a result.

:func:`build_request` checks a call's arguments against the tool's ``inputSchema``
and lays them out as the operation says (path variables, query string, header
fields, body); :func:`tool_result` makes the ``CallToolResult`` of the answer.  The
operations come from :func:`quiver.mcp.openapi_tools.tools_from_openapi`, which
re-exports both.  Pure: no I/O.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import orjson
from jsonschema.exceptions import best_match

from quiver.mcp.contract import INVALID_PARAMS, McpError

if TYPE_CHECKING:
    from quiver.mcp.openapi_tools import Body, Operation, Parameter

#: RFC 3986 §2.2, left as they are in a query value with ``allowReserved``
_RESERVED = ":/?#[]@!$&'()*+,;="
#: the most of an error body a result's text carries
ERROR_TEXT_LIMIT = 8192

BodyEncoding = Literal["json", "form", "text"]


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


def media_kind(media_type: str) -> BodyEncoding | None:
    """The encoding a tool call uses for ``media_type`` (None: none it can)."""
    base = media_type.split(";")[0].strip().lower()
    if base in ("application/json", "*/*") or base.endswith("+json"):
        return "json"
    if base == "application/x-www-form-urlencoded":
        return "form"
    if base.startswith("text/"):
        return "text"
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
    error = best_match(operation.validator.iter_errors(arguments))
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
    if media_kind(media) == "json":
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
        or media_kind(media) in ("json", "form")
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
    if media_kind(media) == "json" and body:
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
