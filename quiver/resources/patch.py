"""Patch documents: JSON Merge Patch (RFC 7396) and JSON Patch (RFC 6902).

Both work on a copy of the item: a JSON Patch either applies whole or not at all
(RFC 6902 §5), since the stored row changes only once the result is validated.
"""

from __future__ import annotations

import copy
from typing import Any

from quiver.resources.errors import Conflict, InvalidRequest, Unprocessable, invalid


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2: objects merge member by member, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _tokens(pointer: Any, where: str) -> list[str]:
    # RFC 6901 §3-4: "" is the whole document; "~1" is "/", "~0" is "~"
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise invalid([{"pointer": where, "detail": "not a JSON Pointer"}], InvalidRequest)
    if not pointer:
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _missing(pointer)
    index = int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise _missing(pointer)
    return index


def _missing(pointer: str) -> Unprocessable:
    return Unprocessable(
        f"{pointer} is not in the item",
        extensions={"errors": [{"pointer": pointer, "detail": "no such location"}]},
    )


def _get(document: Any, tokens: list[str], pointer: str) -> Any:
    for token in tokens:
        if isinstance(document, dict) and token in document:
            document = document[token]
        elif isinstance(document, list):
            document = document[_index(document, token, pointer, adding=False)]
        else:
            raise _missing(pointer)
    return document


def _add(document: Any, tokens: list[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent = _get(document, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, adding=True), value)
    else:
        raise _missing(pointer)
    return document


def _remove(document: Any, tokens: list[str], pointer: str) -> Any:
    if not tokens:
        raise _missing(pointer)
    parent = _get(document, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, pointer, adding=False))
    raise _missing(pointer)


def json_patch(document: Any, operations: Any) -> Any:
    """The document after every operation of ``operations`` (RFC 6902 §4), or an
    error: 400 for a malformed patch, 409 for a failed ``test``, 422 for a location
    that is not there."""
    if not isinstance(operations, list):
        raise invalid([{"pointer": "", "detail": "a JSON Patch is an array"}], InvalidRequest)
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        where = f"/{index}"
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            detail = "an operation is an object with 'op' and 'path'"
            raise invalid([{"pointer": where, "detail": detail}], InvalidRequest)
        op, pointer = operation["op"], operation["path"]
        tokens = _tokens(pointer, where + "/path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise invalid([{"pointer": where, "detail": f"'{op}' needs 'value'"}], InvalidRequest)
        if op in ("move", "copy"):
            source = _tokens(operation.get("from"), where + "/from")
        if op == "add":
            result = _add(result, tokens, copy.deepcopy(operation["value"]), pointer)
        elif op == "remove":
            _remove(result, tokens, pointer)
        elif op == "replace":
            _get(result, tokens, pointer)
            if tokens:
                _remove(result, tokens, pointer)
            result = _add(result, tokens, copy.deepcopy(operation["value"]), pointer)
        elif op == "move":
            if tokens[: len(source)] == source and len(tokens) > len(source):
                detail = "a location cannot move into itself"
                raise invalid([{"pointer": where, "detail": detail}], InvalidRequest)
            value = _remove(result, source, operation["from"])
            result = _add(result, tokens, value, pointer)
        elif op == "copy":
            value = copy.deepcopy(_get(result, source, operation["from"]))
            result = _add(result, tokens, value, pointer)
        elif op == "test":
            if _get(result, tokens, pointer) != operation["value"]:
                raise Conflict(
                    f"test failed at {pointer}",
                    extensions={"errors": [{"pointer": where, "detail": "test failed"}]},
                )
        else:
            detail = f"unknown op {op!r}"
            raise invalid([{"pointer": where + "/op", "detail": detail}], InvalidRequest)
    return result
