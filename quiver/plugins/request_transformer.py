"""``request-transformer``: change the headers, query and JSON body of requests before
they go upstream."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from quiver.http.fields import CONSUMER_FIELDS, SPECIAL_REQUEST_HEADERS
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.json_body import (
    JsonEdits,
    JsonNames,
    JsonRenames,
    JsonValues,
    is_identity,
    is_json,
)
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

# Fields the proxy interprets or writes itself (Host, framing, hop-by-hop, X-Forwarded-*).
# The proxy's own fields, except the consumer identity: a plugin may rename that one
# after authentication (e.g. X-Consumer-Username to the X-User a service expects).
_check_name = header_name(name.decode() for name in SPECIAL_REQUEST_HEADERS - CONSUMER_FIELDS)
HeaderName = Annotated[str, AfterValidator(_check_name)]
QueryName = Annotated[str, Field(min_length=1)]


class RequestNames(HeaderNames[HeaderName], JsonNames):
    """Names of request headers, query parameters and JSON body fields."""

    query: list[QueryName] = Field(
        default_factory=list, description="Query parameter names (case-sensitive)."
    )


class RequestRenames(HeaderRenames[HeaderName], JsonRenames):
    """Request headers, query parameters and JSON body fields to rename, old name to new."""

    check_name = _check_name
    query: Annotated[dict[QueryName, QueryName], AfterValidator(renamed_once(fold_case=False))] = (
        Field(
            default_factory=dict,
            description="Query parameter names, old to new (case-sensitive).",
        )
    )


class RequestValues(HeaderValues, JsonValues):
    """Request headers, query parameters and JSON body fields with the values to give them."""

    check_name = _check_name
    query: dict[QueryName, str] = Field(
        default_factory=dict, description="Query parameter names to values (sent form-encoded)."
    )


class RequestTransformerConfig(EditsConfig):
    remove: RequestNames = Field(
        default_factory=RequestNames,
        description="Headers, query parameters and JSON body fields to drop: "
        "`{headers: [name, ...], query: [name, ...], json: [field, ...]}`.",
    )
    rename: RequestRenames = Field(
        default_factory=RequestRenames,
        description="Headers, query parameters and JSON body fields to rename when present, "
        "keeping their value: `{headers: {old: new}, query: {old: new}, json: {old: new}}`; "
        "one already called by the new name is replaced.",
    )
    replace: RequestValues = Field(
        default_factory=RequestValues,
        description="New values for headers, query parameters and JSON body fields the "
        "request has: `{headers: {name: value}, query: {name: value}, json: {field: value}}`; "
        "absent ones are not added.",
    )
    add: RequestValues = Field(
        default_factory=RequestValues,
        description="Headers, query parameters and JSON body fields to add when the request "
        "lacks them: `{headers: {name: value}, query: {name: value}, json: {field: value}}`; "
        "present ones are kept.",
    )


class RequestTransformer(Plugin[RequestTransformerConfig]):
    """Changes the request before it goes upstream: headers, query parameters and
    top-level fields of a JSON body are removed, then renamed, then replaced (only those
    present), then added (only those absent), each step seeing the result of the one
    before. Values are sent as written, with no templates. Header names are
    case-insensitive, query parameter and JSON field names are not; a query parameter
    given several times is removed or renamed everywhere, and a replaced one stays once,
    where it first was. Parameters the plugin does not touch keep their bytes as the
    client sent them. Host, Content-Length, Transfer-Encoding, Connection and the other
    hop-by-hop fields, Expect, X-Forwarded-* and X-Request-ID are the proxy's and are
    refused in the config.

    JSON field values are any JSON written in YAML, e.g. `{remove: {json: [debug]},
    rename: {json: {userId: user_id}}, add: {json: {source: gateway, tags: [a, b],
    limit: 10, dry_run: false, note: null}}}` (quote `"10"` to send a string); a field is
    present when the object has it, even with a null value. With JSON edits the proxy
    reads each request body whole before forwarding it, whatever its type (one larger
    than `limits.max_buffered_body` is refused with 413), and edits it when the
    Content-Type it is sent with (after the header edits) is application/json or
    application/*+json, it has no Content-Encoding, and it holds a JSON object: the
    edited body is compact UTF-8 JSON with a new Content-Length, and one no edit applies
    to keeps its bytes. An empty body counts as `{}`, so `add` gives it its fields, as
    in Kong. A body that is not a JSON object (invalid JSON, an array, not UTF-8) is
    forwarded unchanged, as Kong does: the node is the one to refuse it.
    """

    name = "request-transformer"
    priority = 800
    Config = RequestTransformerConfig

    def __init__(self, config: RequestTransformerConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.headers = HeaderEdits.build(*config.edits("headers")) or None
        self.query = QueryEdits.build(*config.edits("query")) or None
        self.json = JsonEdits.build(*config.edits("json_fields")) or None
        # Only JSON edits need the body: other routes keep streaming it.
        self.reads_body = self.json is not None

    def access(self, request: PluginRequest) -> None:
        if self.headers is not None:
            self.headers.apply(request.get, request.set_header, request.remove_header)
        if self.query is not None:
            query = self.query.apply(request.query)
            if query is not None:
                request.set_query(query)
        if (
            self.json is not None
            and request.body is not None
            and is_json(request.get(b"content-type"))
            and is_identity(request.get(b"content-encoding"))
        ):
            body = self.json.apply_to_body(request.body, empty_is_object=True)
            if body is not None:
                request.set_body(body)
