"""The ``request-validator`` plugin: refuse requests that do not match their schemas."""

from __future__ import annotations

from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.request_validator.checks import BodyCheck, Inputs
from quiver.plugins.request_validator.config import RequestValidatorConfig
from quiver.plugins.request_validator.problems import InvalidRequest
from quiver.plugins.request_validator.schemas import Violation


class RequestValidator(Plugin[RequestValidatorConfig]):
    """Checks each request against JSON Schemas before it goes upstream: either one per
    part (`body`, `query`, `headers`), or an OpenAPI 3.0/3.1 document (`openapi`) whose
    operation for the request's method and path gives the schemas of its path, query,
    header and cookie parameters and of its body. Parameter values are text, converted
    to the type their schema asks for (`?limit=10` is the integer 10, `?id=1&id=2` the
    array [1, 2]); OpenAPI 3.0 `nullable: true` is understood; `format` is checked
    (date, date-time, email, uuid, ipv4, ipv6, int32, int64 and more). A body is checked
    when its Content-Type is JSON (application/json or any +json type); a body of
    another type than the operation's content lists, or a missing required body, is a
    violation too. A request that does not match gets 400 with an
    application/problem+json document whose `violations` member lists every mismatch
    (the first 100) as `{"in": "body", "pointer": "/items/0/price", "message": "must be
    >= 0"}`: `in` is body, query, header, path or cookie, `pointer` an RFC 6901 JSON
    pointer into the body, or to the parameter by name (`/limit`, `/x-tenant`, `/id`;
    header names in lowercase), "" for the body as a whole; messages name the rule
    broken and never repeat the value sent, so no credential comes back. The node
    never sees a refused request. Not checked: responses, an operation's `security`
    (that is for the authentication plugins), `readOnly`/`writeOnly`, and path
    parameters in label or matrix style (refused when the config loads). Example:
    `request-validator: {openapi: specs/orders.yaml, base_path: /v1}`, or `{query:
    {type: object, properties: {limit: {type: integer, maximum: 100}}}}`. It runs after
    authentication, `acl` and `request-size-limit` (priority 900), so callers not let
    in learn nothing of the schemas and their bodies are never buffered, and before
    `request-transformer` (800), so the request is checked as the client sent it."""

    name = "request-validator"
    priority = 900
    Config = RequestValidatorConfig

    def __init__(self, config: RequestValidatorConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        # everything was compiled while the config validated
        self.checks = config.checks
        self.operations = config.operations
        if self.operations is not None:
            self.reads_body = self.operations.reads_body
        else:
            self.reads_body = any(isinstance(check, BodyCheck) for check in self.checks)

    def access(self, request: PluginRequest) -> None:
        checks = self.checks
        inputs = Inputs(request)
        if self.operations is not None:
            checks, inputs.path = self.operations.find(request.method, request.raw_path)
        found: list[Violation] = []
        for check in checks:
            found += check.run(inputs)
        if found:
            raise InvalidRequest(found)
