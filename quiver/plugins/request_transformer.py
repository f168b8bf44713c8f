"""``request-transformer``: change the headers and query of requests before they go upstream."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from quiver.config.base import Strict
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.transform import (
    HeaderEdits,
    QueryEdits,
    check_value,
    distinct,
    header_keys,
    header_name,
    renamed_once,
)
from quiver.proxy.request import SPECIAL_REQUEST_HEADERS

# Fields the proxy interprets or writes itself (Host, framing, hop-by-hop, X-Forwarded-*).
# The proxy's own fields, except the consumer identity: a plugin may rename that one
# after authentication (e.g. X-Consumer-Username to the X-User a service expects).
_check_name = header_name(
    name.decode() for name in SPECIAL_REQUEST_HEADERS if not name.startswith(b"x-consumer-")
)
HeaderName = Annotated[str, AfterValidator(_check_name)]
HeaderValue = Annotated[str, AfterValidator(check_value)]
QueryName = Annotated[str, Field(min_length=1)]


class RequestNames(Strict):
    """Names of request headers and query parameters."""

    headers: Annotated[list[HeaderName], AfterValidator(distinct)] = Field(
        default_factory=list, description="Header names (case-insensitive)."
    )
    query: list[QueryName] = Field(
        default_factory=list, description="Query parameter names (case-sensitive)."
    )


class RequestRenames(Strict):
    """Request headers and query parameters to rename, old name to new name."""

    headers: Annotated[
        dict[str, HeaderName],
        AfterValidator(header_keys(_check_name)),
        AfterValidator(renamed_once(fold_case=True)),
    ] = Field(default_factory=dict, description="Header names, old to new (case-insensitive).")
    query: Annotated[dict[QueryName, QueryName], AfterValidator(renamed_once(fold_case=False))] = (
        Field(
            default_factory=dict,
            description="Query parameter names, old to new (case-sensitive).",
        )
    )


class RequestValues(Strict):
    """Request headers and query parameters with the values to give them."""

    headers: Annotated[dict[str, HeaderValue], AfterValidator(header_keys(_check_name))] = Field(
        default_factory=dict, description="Header names to values (printable ASCII)."
    )
    query: dict[QueryName, str] = Field(
        default_factory=dict, description="Query parameter names to values (sent form-encoded)."
    )


class RequestTransformerConfig(PluginConfig):
    remove: RequestNames = Field(
        default_factory=RequestNames,
        description="Headers and query parameters to drop: "
        "`{headers: [name, ...], query: [name, ...]}`.",
    )
    rename: RequestRenames = Field(
        default_factory=RequestRenames,
        description="Headers and query parameters to rename when present, keeping their "
        "value: `{headers: {old: new}, query: {old: new}}`; one already called by the new "
        "name is replaced.",
    )
    replace: RequestValues = Field(
        default_factory=RequestValues,
        description="New values for headers and query parameters the request has: "
        "`{headers: {name: value}, query: {name: value}}`; absent ones are not added.",
    )
    add: RequestValues = Field(
        default_factory=RequestValues,
        description="Headers and query parameters to add when the request lacks them: "
        "`{headers: {name: value}, query: {name: value}}`; present ones are kept.",
    )

    @model_validator(mode="after")
    def _something_to_do(self) -> RequestTransformerConfig:
        edits = (self.remove, self.rename, self.replace, self.add)
        if not any(edit.headers or edit.query for edit in edits):
            raise ValueError("nothing to change: give 'remove', 'rename', 'replace' or 'add'")
        return self


class _UpstreamFields:
    """The request's header fields as a ``HeaderEdits`` changes them."""

    __slots__ = ("request",)

    def __init__(self, request: PluginRequest) -> None:
        self.request = request

    def get(self, lname: bytes) -> bytes | None:
        return self.request.get(lname)

    def set(self, name: bytes, value: bytes) -> None:
        self.request.set_header(name, value)

    def remove(self, name: bytes) -> None:
        self.request.remove_header(name)

    def rename(self, lname: bytes, new: bytes) -> None:
        value = self.request.get(lname)  # repeated fields come joined with ", "
        if value is not None:
            self.request.remove_header(lname)
            self.request.set_header(new, value)


class RequestTransformer(Plugin[RequestTransformerConfig]):
    """Changes the request before it goes upstream: headers and query parameters are
    removed, then renamed, then replaced (only those present), then added (only those
    absent), each step seeing the result of the one before. Values are sent as written,
    with no templates. Header names are case-insensitive, query parameter names are
    not; a query parameter given several times is removed or renamed everywhere, and a
    replaced one stays once, where it first was. Parameters the plugin does not touch
    keep their bytes as the client sent them. Host, Content-Length, Transfer-Encoding,
    Connection and the other hop-by-hop fields, Expect, X-Forwarded-* and X-Request-ID
    are the proxy's and are refused in the config. Request bodies are not changed:
    plugins cannot see them yet, so JSON or form body fields are out of reach."""

    name = "request-transformer"
    priority = 800
    Config = RequestTransformerConfig

    def __init__(self, config: RequestTransformerConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        remove, rename, replace, add = config.remove, config.rename, config.replace, config.add
        self.headers = HeaderEdits.build(
            remove.headers, rename.headers, replace.headers, add.headers
        )
        self.query = QueryEdits.build(remove.query, rename.query, replace.query, add.query)

    def access(self, request: PluginRequest) -> None:
        if self.headers:
            self.headers.apply(_UpstreamFields(request))
        if self.query:
            query = self.query.apply(request.query)
            if query is not None:
                request.set_query(query)
