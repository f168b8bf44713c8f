"""``request-transformer``: change the headers and query of requests before they go upstream."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.transform import (
    EditsConfig,
    HeaderEdits,
    HeaderNames,
    HeaderRenames,
    HeaderValues,
    QueryEdits,
    header_name,
    renamed_once,
)
from quiver.proxy.request import CONSUMER_FIELDS, SPECIAL_REQUEST_HEADERS

# Fields the proxy interprets or writes itself (Host, framing, hop-by-hop, X-Forwarded-*).
# The proxy's own fields, except the consumer identity: a plugin may rename that one
# after authentication (e.g. X-Consumer-Username to the X-User a service expects).
_check_name = header_name(name.decode() for name in SPECIAL_REQUEST_HEADERS - CONSUMER_FIELDS)
HeaderName = Annotated[str, AfterValidator(_check_name)]
QueryName = Annotated[str, Field(min_length=1)]


class RequestNames(HeaderNames[HeaderName]):
    """Names of request headers and query parameters."""

    query: list[QueryName] = Field(
        default_factory=list, description="Query parameter names (case-sensitive)."
    )


class RequestRenames(HeaderRenames[HeaderName]):
    """Request headers and query parameters to rename, old name to new name."""

    check_name = _check_name
    query: Annotated[dict[QueryName, QueryName], AfterValidator(renamed_once(fold_case=False))] = (
        Field(
            default_factory=dict,
            description="Query parameter names, old to new (case-sensitive).",
        )
    )


class RequestValues(HeaderValues):
    """Request headers and query parameters with the values to give them."""

    check_name = _check_name
    query: dict[QueryName, str] = Field(
        default_factory=dict, description="Query parameter names to values (sent form-encoded)."
    )


class RequestTransformerConfig(EditsConfig):
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
        self.headers = HeaderEdits.build(*config.edits("headers"))
        self.query = QueryEdits.build(*config.edits("query"))

    def access(self, request: PluginRequest) -> None:
        if self.headers:
            self.headers.apply(request.get, request.set_header, request.remove_header)
        if self.query:
            query = self.query.apply(request.query)
            if query is not None:
                request.set_query(query)
