"""``response-transformer``: change the headers of responses before the client gets them."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import AfterValidator, Field

from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead
from quiver.plugins.transform import (
    EditsConfig,
    HeaderEdits,
    HeaderNames,
    HeaderRenames,
    HeaderValues,
    header_name,
)

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


class ResponseNames(HeaderNames[HeaderName]):
    """Names of response headers."""


class ResponseRenames(HeaderRenames[HeaderName]):
    """Response headers to rename, old name to new name."""

    check_name = _check_name


class ResponseValues(HeaderValues):
    """Response headers with the values to give them."""

    check_name = _check_name


class ResponseTransformerConfig(EditsConfig):
    remove: ResponseNames = Field(
        default_factory=ResponseNames,
        description="Headers to drop: `{headers: [name, ...]}`.",
    )
    rename: ResponseRenames = Field(
        default_factory=ResponseRenames,
        description="Headers to rename when present, keeping their values: "
        "`{headers: {old: new}}`; one already called by the new name is replaced.",
    )
    replace: ResponseValues = Field(
        default_factory=ResponseValues,
        description="New values for headers the response has: `{headers: {name: value}}`; "
        "absent ones are not added.",
    )
    add: ResponseValues = Field(
        default_factory=ResponseValues,
        description="Headers to add when the response lacks them: "
        "`{headers: {name: value}}`; present ones are kept.",
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
    """Changes the headers of responses from the node before the client gets them:
    they are removed, then renamed, then replaced (only those present), then added
    (only those absent), each step seeing the result of the one before. Values are sent
    as written, with no templates; names are case-insensitive. A header given several
    times is removed, renamed or replaced in every occurrence (a renamed Set-Cookie
    keeps one field per cookie; a replaced one becomes a single field). Content-Length,
    Transfer-Encoding, Connection and the other hop-by-hop fields frame the response
    and are refused in the config. Answers the gateway makes itself (errors, CORS
    preflights) are not changed, and neither are response bodies: plugins cannot see
    them yet."""

    name = "response-transformer"
    priority = 800
    Config = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.headers = HeaderEdits.build(*config.edits("headers"))

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        self.headers.apply(
            response.get, response.set, response.remove, partial(_rename_fields, response)
        )
