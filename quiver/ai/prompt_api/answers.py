"""Checking a request's variables and the model's answer against their schemas, and
the refusals that say where they do not match."""

from __future__ import annotations

import re
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from quiver.errors import BadRequest, HTTPError
from quiver.http.fields import reason_phrase

#: violations listed in a refusal at most
MAX_VIOLATIONS = 10
_FENCED = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def violations(validator: Draft202012Validator, value: Any) -> list[dict[str, str]]:
    """Where ``value`` breaks the schema: JSON Pointers (RFC 6901) and messages."""
    found = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        pointer = "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
        )
        found.append({"pointer": pointer, "message": error.message})
        if len(found) == MAX_VIOLATIONS:
            break
    return found


class InvalidVariables(BadRequest):
    """400: the request body is not the object of variables its schema describes;
    ``violations`` lists where (RFC 9457 §3.2 extension member)."""

    slug = "invalid-variables"
    close_connection = False

    def __init__(self, detail: str, found: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, extensions={"violations": found or []})


class InvalidModelOutput(HTTPError):
    """502: the model's answer is not JSON, or does not match ``output_schema``."""

    status_code = 502
    title = "Bad Gateway"
    slug = "invalid-model-output"

    def __init__(self, detail: str, found: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, extensions={"violations": found or []})


class ModelCallFailed(HTTPError):
    """The model could not be called (the route's own error, with its status)."""

    slug = "model-call-failed"

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        headers = ((b"Retry-After", b"%d" % max(1, round(retry_after))),) if retry_after else ()
        super().__init__(detail, headers=headers)
        self.status_code = status
        self.title = reason_phrase(status).decode("latin-1")


def read_variables(body: bytes | None, validator: Draft202012Validator) -> dict[str, Any]:
    """The variables of a request body, checked."""
    try:
        variables = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        raise InvalidVariables("the request body must be a JSON object of variables") from None
    if not isinstance(variables, dict):
        raise InvalidVariables("the request body must be a JSON object of variables")
    found = violations(validator, variables)
    if found:
        count = len(found)
        raise InvalidVariables(
            f"the variables break their schema in {count} place{'s' if count > 1 else ''}", found
        )
    return variables


def read_output(text: str, validator: Draft202012Validator) -> Any:
    """The model's answer as the JSON value ``output_schema`` describes (a fenced
    ```json block is taken for its content)."""
    fenced = _FENCED.match(text)
    if fenced is not None:
        text = fenced.group(1)
    try:
        output = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidModelOutput("the model's answer is not JSON") from None
    found = violations(validator, output)
    if found:
        raise InvalidModelOutput("the model's answer does not match output_schema", found)
    return output
