"""``cors``: cross-origin resource sharing as the Fetch standard's CORS protocol defines it.

The gateway answers preflights itself and marks responses for allowed origins; what
a browser then lets a script read is the browser's decision, made from these headers.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from quiver.errors import Answer, Forbidden
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead
from quiver.plugins.transform import check_token

_ALLOW_ORIGIN = b"Access-Control-Allow-Origin"
_ALLOW_CREDENTIALS = b"Access-Control-Allow-Credentials"
_EXPOSE_HEADERS = b"Access-Control-Expose-Headers"
# The fields through which a response grants access; on a CORS request the plugin's
# policy replaces whatever the node sent in them.
_GRANTS = (_ALLOW_ORIGIN, _ALLOW_CREDENTIALS, _EXPOSE_HEADERS)

# An origin as browsers serialize it (scheme "://" host [":" port], lowercase), where
# the host may start with "*." to stand for subdomains.
_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://(?P<host>(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?\Z"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# What "*." stands for: one or more whole DNS labels (never a "." "/" ":" or "@").
_LABELS = rb"(?:[a-z0-9_-]+\.)+"


def _check_origin(text: str) -> str:
    origin = text.lower()
    if origin in ("*", "null"):
        return origin
    match = _ORIGIN.match(origin)
    if match is None:
        scheme, sep, rest = origin.partition("://")
        if sep and "/" in rest:
            bare = scheme + "://" + rest.split("/", 1)[0]
            raise ValueError(f"{text!r}: an origin has no path; write {bare!r}")
        if not origin.isascii():
            raise ValueError(
                f"{text!r}: write the host in its ASCII (punycode) form, as browsers send it"
            )
        if "*" in origin:
            raise ValueError(
                f"{text!r}: '*' stands only for the leftmost labels of the host, "
                "as in 'https://*.example.com'"
            )
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port], '*' or 'null'")
    port = match.group("port")
    scheme = origin.partition(":")[0]
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        bare = origin[: match.start("port") - 1]
        raise ValueError(
            f"{text!r} never matches: browsers leave the default port out of an origin; "
            f"write {bare!r}"
        )
    return origin


Origin = Annotated[str, AfterValidator(_check_origin)]
Token = Annotated[str, AfterValidator(check_token)]


class CorsConfig(PluginConfig):
    origins: list[Origin] = Field(
        description="Origins allowed to read responses: exact origins such as "
        "'https://app.example.com' or 'http://localhost:8080', '*' for every origin, "
        "and patterns such as 'https://*.example.com' where '*' stands for one or more "
        "leftmost labels of the host (any subdomain, at any depth, but not "
        "'https://example.com' itself: list that too when it is allowed). Scheme and port "
        "must match; compared case-insensitively.",
    )
    methods: list[Token] = Field(
        default_factory=lambda: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"],
        description="Methods a preflight allows (Access-Control-Allow-Methods), by default "
        "GET, HEAD, PUT, PATCH, POST and DELETE; case-sensitive, so write them in capitals.",
    )
    headers: list[Token] | None = Field(
        None,
        description="Request headers a preflight allows (Access-Control-Allow-Headers); "
        "unset allows the ones the browser asks for (Access-Control-Request-Headers).",
    )
    exposed_headers: list[Token] = Field(
        default_factory=list,
        description="Response headers scripts may read besides the CORS-safelisted ones "
        "(Access-Control-Expose-Headers); none by default.",
    )
    credentials: bool = Field(
        False,
        description="Let browsers send cookies and HTTP authentication and read the "
        "response (Access-Control-Allow-Credentials: true). Access-Control-Allow-Origin "
        "then names the request's origin, never '*'.",
    )
    max_age: int | None = Field(
        None,
        ge=0,
        description="Seconds a browser may cache a preflight answer (Access-Control-Max-Age); "
        "unset leaves it to the browser (5 seconds); browsers also cap it (Chromium at "
        "2 hours, Firefox at 24).",
    )
    preflight_continue: bool = Field(
        False,
        description="Send preflights on to the node instead of answering them at the "
        "gateway; the node's answer is then treated like any other response.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CorsConfig:
        if not self.origins:
            raise ValueError("list at least one origin in 'origins' (or '*' for any)")
        if self.credentials:
            # Fetch standard, CORS protocol: with credentials, "*" is no wildcard in these
            # headers, only a name, so a config relying on it would silently not work.
            for key in ("methods", "headers", "exposed_headers"):
                if "*" in (getattr(self, key) or ()):
                    raise ValueError(
                        f"with credentials, browsers read '*' in '{key}' as a plain name, "
                        "not as a wildcard; list the names instead"
                    )
        return self


class Cors(Plugin[CorsConfig]):
    """Lets browser scripts on other origins call the route, per the CORS protocol of
    the Fetch standard. A preflight (an OPTIONS request with Origin and
    Access-Control-Request-Method) is answered at the gateway with 204 and the
    Access-Control-Allow-Origin, -Allow-Methods, -Allow-Headers, -Max-Age and
    -Allow-Credentials headers; the node never sees it, and no authentication plugin
    is asked, since browsers send preflights without credentials. A preflight from an
    origin that is not allowed gets 403 without any Access-Control-Allow-* header, so
    the browser refuses the real request and the developer can see why. Any other
    request carrying an allowed Origin goes to the node as usual, and its response
    gains Access-Control-Allow-Origin (the origin itself, or '*' when every origin is
    allowed without credentials), Access-Control-Allow-Credentials and
    Access-Control-Expose-Headers; the node's own values of these three are replaced,
    or dropped for an origin that is not allowed. Every response on the route, with an
    Origin or without, gets 'Origin' added to its Vary header, so that caches keep
    answers for different origins, and for non-browser clients, apart (Fetch standard,
    "CORS protocol and HTTP caches"); otherwise requests without an Origin are left
    alone. Answers the gateway makes itself (a 401 from key-auth, a 502) get the same
    headers, so a script can read why its request failed."""

    name = "cors"
    priority = 2000
    Config = CorsConfig

    def __init__(self, config: CorsConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.any_origin = "*" in config.origins
        listed = [origin for origin in config.origins if origin != "*"]
        self.exact = frozenset(origin.encode() for origin in listed if "*" not in origin)
        patterns = [
            re.escape(scheme.encode() + b"://") + _LABELS + re.escape(rest.encode())
            for scheme, _, rest in (p.partition("://*.") for p in listed if "*" in p)
        ]
        self.pattern = re.compile(b"|".join(patterns)) if patterns else None
        # Without credentials "*" grants every origin the same way; with them the
        # origin has to be named (Fetch standard, CORS check).
        self.fixed_origin = b"*" if self.any_origin and not config.credentials else None
        grants: list[tuple[bytes, bytes]] = []
        if config.credentials:
            grants.append((_ALLOW_CREDENTIALS, b"true"))
        preflight = [*grants, (b"Access-Control-Allow-Methods", _join(config.methods))]
        if config.headers is not None:
            preflight.append((b"Access-Control-Allow-Headers", _join(config.headers)))
        if config.max_age is not None:
            preflight.append((b"Access-Control-Max-Age", b"%d" % config.max_age))
        self.preflight = tuple(preflight)
        self.preflight_vary = (
            b"Origin" if config.headers is not None else b"Origin, Access-Control-Request-Headers"
        )
        if config.exposed_headers:
            grants.append((_EXPOSE_HEADERS, _join(config.exposed_headers)))
        self.grants = tuple(grants)

    def allowed(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for ``origin``; None when it is not allowed."""
        if self.fixed_origin is not None:
            return self.fixed_origin
        if b"," in origin:  # several Origin fields: no browser sends that
            return None
        lowered = origin.lower()
        if self.any_origin or lowered in self.exact:
            return origin
        if self.pattern is not None and self.pattern.fullmatch(lowered) is not None:
            return origin
        return None

    def access(self, request: PluginRequest) -> None:
        if request.method != b"OPTIONS" or self.config.preflight_continue:
            return
        origin = request.get(b"origin")
        if origin is None or request.get(b"access-control-request-method") is None:
            return  # an OPTIONS request of its own, not a preflight
        allow = self.allowed(origin)
        if allow is None:
            shown = origin.decode("latin-1")
            raise Forbidden(f"origin {shown} is not allowed", headers=((b"Vary", b"Origin"),))
        headers = [(_ALLOW_ORIGIN, allow), *self.preflight]
        if self.config.headers is None:
            requested = request.get(b"access-control-request-headers")
            if requested:
                headers.append((b"Access-Control-Allow-Headers", requested))
        headers.append((b"Vary", self.preflight_vary))
        raise Answer(204, headers=tuple(headers))

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        _vary_on_origin(response)
        origin = request.get(b"origin")
        if origin is None:
            return
        for name in _GRANTS:
            response.remove(name)
        allow = self.allowed(origin)
        if allow is not None:
            response.add(_ALLOW_ORIGIN, allow)
            for name, value in self.grants:
                response.add(name, value)


def _join(names: list[str]) -> bytes:
    return ", ".join(names).encode("ascii")


def _vary_on_origin(response: ResponseHead) -> None:
    """Add "Origin" to the Vary list unless it is there (RFC 9110 §12.5.5)."""
    vary = response.get(b"vary")
    if vary is None:
        response.add(b"Vary", b"Origin")
        return
    tokens = {token.strip(b" \t").lower() for token in vary.split(b",")}
    if b"origin" not in tokens and b"*" not in tokens:
        response.set(b"Vary", vary + b", Origin")
