"""The header fields of MCP that repeat a request's body (revision 2026-07-28).

``Mcp-Name`` repeats the tool or prompt name or the resource URI, and
``Mcp-Param-TOKEN`` an argument the tool's input schema marks with
``"x-mcp-header": "TOKEN"``, so that an intermediary can route on them without
reading the body.  A value that is not plain printable ASCII travels
base64-wrapped as ``=?base64?...?=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def param_headers(schema: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """(argument path, token) of each property an input schema marks with
    ``x-mcp-header``, reached through ``properties`` alone, of a string, integer or
    boolean type, its token a field name."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        token = node.get("x-mcp-header")
        if (
            path
            and isinstance(token, str)
            and _TOKEN.match(token)
            and node.get("type") in ("string", "integer", "boolean")
        ):
            yield path, token
        properties = node.get("properties")
        if isinstance(properties, dict):
            stack.extend(((*path, key), sub) for key, sub in properties.items())


def argument_value(arguments: dict[str, Any], path: tuple[str, ...]) -> str | None:
    """The argument at ``path`` as a header field says it (None: absent or not a
    scalar)."""
    value: Any = arguments
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None
