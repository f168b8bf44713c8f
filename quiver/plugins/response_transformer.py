"""``response-transformer``: change the headers and JSON body of responses before the
client gets them."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from pydantic import AfterValidator, Field

from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.json_body import (
    JsonEdits,
    JsonNames,
    JsonRenames,
    JsonValues,
    is_identity,
    is_json,
)
from quiver.plugins.response import ResponseHead
from quiver.plugins.transform import (
    EditsConfig,
    HeaderEdits,
    HeaderNames,
    HeaderRenames,
    HeaderValues,
    header_name,
)

log = logging.getLogger("quiver.plugins")

# Framing and hop-by-hop fields: the proxy drops or rewrites them on every response.
_REFUSED = (
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
)
_check_name = header_name(_REFUSED)
HeaderName = Annotated[str, AfterValidator(_check_name)]


class ResponseNames(HeaderNames[HeaderName], JsonNames):
    """Names of response headers and JSON body fields."""


class ResponseRenames(HeaderRenames[HeaderName], JsonRenames):
    """Response headers and JSON body fields to rename, old name to new name."""

    check_name = _check_name


class ResponseValues(HeaderValues, JsonValues):
    """Response headers and JSON body fields with the values to give them."""

    check_name = _check_name


class ResponseTransformerConfig(EditsConfig):
    remove: ResponseNames = Field(
        default_factory=ResponseNames,
        description="Headers and JSON body fields to drop: "
        "`{headers: [name, ...], json: [field, ...]}`.",
    )
    rename: ResponseRenames = Field(
        default_factory=ResponseRenames,
        description="Headers and JSON body fields to rename when present, keeping their "
        "values: `{headers: {old: new}, json: {old: new}}`; one already called by the new "
        "name is replaced.",
    )
    replace: ResponseValues = Field(
        default_factory=ResponseValues,
        description="New values for headers and JSON body fields the response has: "
        "`{headers: {name: value}, json: {field: value}}`; absent ones are not added.",
    )
    add: ResponseValues = Field(
        default_factory=ResponseValues,
        description="Headers and JSON body fields to add when the response lacks them: "
        "`{headers: {name: value}, json: {field: value}}`; present ones are kept.",
    )


def _rename_fields(head: ResponseHead, lname: bytes, new: bytes) -> None:
    # Field by field rather than joined: some fields, Set-Cookie first of all,
    # cannot be combined into one line (RFC 9110 §5.3).
    fields = head.fields
    if any(name.lower() == lname for name, _ in fields):
        lnew = new.lower()
        head.fields = [
            (new if name.lower() == lname else name, value)
            for name, value in fields
            if name.lower() != lnew
        ]


class ResponseTransformer(Plugin[ResponseTransformerConfig]):
    """Changes responses from the node before the client gets them: headers and
    top-level fields of a JSON body are removed, then renamed, then replaced (only those
    present), then added (only those absent), each step seeing the result of the one
    before. Values are sent as written, with no templates; header names are
    case-insensitive, JSON field names are not. A header given several times is
    removed, renamed or replaced in every occurrence (a renamed Set-Cookie keeps one
    field per cookie; a replaced one becomes a single field). Content-Length,
    Transfer-Encoding, Connection and the other hop-by-hop fields frame the response
    and are refused in the config. Answers the gateway makes itself (errors, CORS
    preflights) are not changed.

    JSON field values are any JSON written in YAML, e.g. `{remove: {json: [internal_id]},
    rename: {json: {userId: user_id}}, add: {json: {api_version: 2, links: {docs:
    "https://example.com/docs"}}}}` (quote `"2"` to send a string); a field is present
    when the object has it, even with a null value. With JSON edits the proxy holds a
    response body back and edits it whole when the response, after the header edits,
    has a Content-Type of application/json or application/*+json and no
    Content-Encoding (a gzip-compressed body goes on as it is): the edited body is
    compact UTF-8 JSON, sent without a Content-Length (chunked). A body that is not a
    JSON object (invalid JSON, an array, empty) or that no edit applies to is sent as it
    came, and so is one larger than `limits.max_buffered_body` (1 MiB by default), which
    streams on from there (with a warning
    in the log, once per route). Routes without JSON edits keep the node's framing.
    """

    name = "response-transformer"
    priority = 800
    Config = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.headers = HeaderEdits.build(*config.edits("headers")) or None
        self.json = JsonEdits.build(*config.edits("json_fields")) or None
        self.max_body = context.limits.max_buffered_body  # larger JSON bodies go unedited
        self.warned = False  # about a body too large to edit, once per route
        if self.json is None:
            # The proxy re-frames the responses of a route with a response_body phase,
            # and runs the phases an instance has (chain.phase): drop this one.
            self.response_body = None  # type: ignore[method-assign, assignment]

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        if self.headers is not None:
            self.headers.apply(
                response.get, response.set, response.remove, partial(_rename_fields, response)
            )
        if (
            self.json is not None
            and request.method != b"HEAD"
            and response.status >= 200
            and response.status not in (204, 304)
            and is_json(response.get(b"content-type"))
            and is_identity(response.get(b"content-encoding"))
        ):
            request.ctx[self.name] = bytearray()

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        held: bytearray | None = request.ctx.get(self.name)
        if held is None:
            return chunk
        if len(held) + len(chunk) > self.max_body:
            del request.ctx[self.name]
            if not self.warned:
                self.warned = True
                log.warning(
                    "%s: the JSON response to %s %s is larger than %d bytes: "
                    "sent without its edits (logged once per route)",
                    self.name,
                    request.method.decode("latin-1"),
                    request.raw_path.decode("latin-1"),
                    self.max_body,
                )
            return bytes(held) + chunk
        held += chunk
        if not last:
            return b""
        del request.ctx[self.name]
        body = bytes(held)
        assert self.json is not None  # (the phase is dropped without JSON edits)
        return self.json.apply_to_body(body) or body
