"""``response-transformer``: change the headers of responses before the client gets them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from quiver.config.base import Strict
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead
from quiver.plugins.transform import (
    HeaderEdits,
    check_value,
    distinct,
    header_keys,
    header_name,
    renamed_once,
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
HeaderValue = Annotated[str, AfterValidator(check_value)]


class ResponseNames(Strict):
    """Names of response headers."""

    headers: Annotated[list[HeaderName], AfterValidator(distinct)] = Field(
        default_factory=list, description="Header names (case-insensitive)."
    )


class ResponseRenames(Strict):
    """Response headers to rename, old name to new name."""

    headers: Annotated[
        dict[str, HeaderName],
        AfterValidator(header_keys(_check_name)),
        AfterValidator(renamed_once(fold_case=True)),
    ] = Field(default_factory=dict, description="Header names, old to new (case-insensitive).")


class ResponseValues(Strict):
    """Response headers with the values to give them."""

    headers: Annotated[dict[str, HeaderValue], AfterValidator(header_keys(_check_name))] = Field(
        default_factory=dict, description="Header names to values (printable ASCII)."
    )


class ResponseTransformerConfig(PluginConfig):
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

    @model_validator(mode="after")
    def _something_to_do(self) -> ResponseTransformerConfig:
        edits = (self.remove, self.rename, self.replace, self.add)
        if not any(edit.headers for edit in edits):
            raise ValueError("nothing to change: give 'remove', 'rename', 'replace' or 'add'")
        return self


class _ResponseFields:
    """A response head as a ``HeaderEdits`` changes it."""

    __slots__ = ("head",)

    def __init__(self, head: ResponseHead) -> None:
        self.head = head

    def get(self, lname: bytes) -> bytes | None:
        return self.head.get(lname)

    def set(self, name: bytes, value: bytes) -> None:
        self.head.set(name, value)

    def remove(self, name: bytes) -> None:
        self.head.remove(name)

    def rename(self, lname: bytes, new: bytes) -> None:
        # Field by field rather than joined: some fields, Set-Cookie first of all,
        # cannot be combined into one line (RFC 9110 §5.3).
        fields = self.head.fields
        if any(name.lower() == lname for name, _ in fields):
            lnew = new.lower()
            self.head.fields = [
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
        remove, rename, replace, add = config.remove, config.rename, config.replace, config.add
        self.headers = HeaderEdits.build(
            remove.headers, rename.headers, replace.headers, add.headers
        )

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        self.headers.apply(_ResponseFields(response))
