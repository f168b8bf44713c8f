"""``oauth2-introspection``: let bearer tokens in after asking the authorization server.

The token comes from ``Authorization: Bearer`` (RFC 6750 §2.1) and is checked at an
OAuth 2.0 token introspection endpoint (RFC 7662); refusals carry the challenges of
RFC 6750 §3.  Caching and sharing of answers live in :mod:`quiver.plugins.introspection`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from quiver.config.base import Duration
from quiver.errors import Forbidden, Unauthorized
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.consumers import ConsumerRuntime
from quiver.plugins.introspection import Introspector
from quiver.plugins.introspection_client import IntrospectionClient

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 token
_FRAMING_FIELDS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"}
)
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_AUTHORIZATION = b"authorization"

# RFC 6750 §3.1: no error code when the request carried no token at all
_CHALLENGE = ((b"WWW-Authenticate", b'Bearer realm="quiver"'),)
_INVALID_TOKEN = ((b"WWW-Authenticate", b'Bearer realm="quiver", error="invalid_token"'),)


class OAuth2IntrospectionConfig(PluginConfig):
    introspection_url: str = Field(
        description="The authorization server's token introspection endpoint (http or https)."
    )
    client_auth: Literal["basic", "none"] = Field(
        "basic",
        description="How the gateway authenticates to the endpoint: `basic` sends "
        "`client_id` and `client_secret` with HTTP Basic; `none` sends no credentials.",
    )
    client_id: str | None = Field(
        None, description="The gateway's client id at the authorization server."
    )
    client_secret: SecretStr | None = Field(
        None, description="The gateway's client secret; write `${VAR}` to keep it out of the file."
    )
    token_type_hint: str | None = Field(
        None, description="Sent as `token_type_hint` (e.g. `access_token`) when set."
    )
    scopes: list[str] = Field(
        default_factory=list,
        description="Scopes the token must all have in its `scope` claim (else 403).",
    )
    timeout: Duration = Field(
        5.0,
        gt=0,
        description="Longest wait for the endpoint, connection included (else 504).",
    )
    cache_ttl_max: Duration = Field(
        60.0,
        description="Longest time an active token's answer is reused, even when its `exp` "
        "is later; this bounds how long a revoked token still gets in. 0 asks every time.",
    )
    negative_cache_ttl: Duration = Field(
        5.0, description="How long an inactive token's answer is reused. 0 asks every time."
    )
    cache_size: int = Field(
        10_000, ge=1, description="Most token answers kept; the least recently used go first."
    )
    consumer_claim: str | None = Field(
        None,
        description="Claim (e.g. `username` or `sub`) naming the consumer the request comes "
        "from. A token whose claim names no known consumer still gets in, without a consumer "
        "(so `acl` refuses it).",
    )
    claims_to_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Claims sent upstream, as claim name to header name; strings go as they "
        "are, other values as JSON. A client's own fields of these names are always removed.",
    )
    hide_credentials: bool = Field(
        True, description="Remove the Authorization header before the request goes upstream."
    )
    anonymous: str | None = Field(
        None,
        description="Consumer to use for requests without a bearer token (else 401); "
        "a token that is not active is refused all the same, and a request another "
        "authentication plugin identified keeps its consumer.",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of the CAs that may sign an https endpoint's certificate "
        "(default: the system store).",
    )

    @field_validator("introspection_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.fragment or not url.isascii():
            raise ValueError("must be a plain URL: no user info, no fragment, ASCII only")
        try:
            parts.hostname.encode("idna")
        except UnicodeError as exc:
            raise ValueError(f"{parts.hostname!r} is not a host name") from exc
        if parts.port == 0:  # (reading the port also refuses one out of range)
            raise ValueError("port 0 cannot be connected to")
        return url

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not a scope (no spaces, quotes or backslashes)")
        return scopes

    @field_validator("claims_to_headers")
    @classmethod
    def _header_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for header in mapping.values():
            if not _HEADER_NAME.fullmatch(header):
                raise ValueError(f"{header!r} is not a header name")
            if header.lower() in _FRAMING_FIELDS or header.lower() == "authorization":
                raise ValueError(f"{header!r} cannot carry a claim")
        return mapping

    @model_validator(mode="after")
    def _client_credentials(self) -> OAuth2IntrospectionConfig:
        has_credentials = self.client_id is not None or self.client_secret is not None
        if self.client_auth == "basic" and (self.client_id is None or self.client_secret is None):
            raise ValueError("client_auth 'basic' needs client_id and client_secret")
        if self.client_auth == "none" and has_credentials:
            raise ValueError("client_auth 'none' sends no client_id or client_secret")
        if self.ca_file is not None and not self.introspection_url.startswith("https:"):
            raise ValueError("ca_file applies only to an https introspection_url")
        return self


class _Grant(NamedTuple):
    """What an introspection answer means for a request, worked out once per answer."""

    active: bool
    missing_scopes: tuple[str, ...]
    consumer: ConsumerRuntime | None
    headers: tuple[tuple[bytes, bytes], ...]
    credential: bytes | None = None  # "oauth2:<client_id>|<sub>", for limits per credential


class OAuth2Introspection(Plugin[OAuth2IntrospectionConfig]):
    """Requests must carry an `Authorization: Bearer` token that the authorization
    server's introspection endpoint (RFC 7662) says is active and that has every
    required scope: 401 with a `WWW-Authenticate: Bearer` challenge when the token is
    missing or not active, 403 with `error="insufficient_scope"` when a scope is
    missing. Answers are cached by a hash of the token until its `exp` (at most
    `cache_ttl_max`), and concurrent requests with the same token share one call.
    When the endpoint is unreachable or answers garbage the request gets 502, when
    it is too slow 504; their detail names no address, while a warning in the log
    names the endpoint and the cause (once, until the cause changes)."""

    name = "oauth2-introspection"
    priority = 1400
    identifies_consumers = True
    Config = OAuth2IntrospectionConfig

    def __init__(self, config: OAuth2IntrospectionConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.anonymous = context.consumers.anonymous(self.name, config.anonymous)
        secret = config.client_secret.get_secret_value() if config.client_secret else None
        client = IntrospectionClient(
            config.introspection_url,
            client_id=config.client_id,
            client_secret=secret,
            token_type_hint=config.token_type_hint,
            timeout=config.timeout,
            outbound=context.outbound,
            ca_file=config.ca_file,
        )
        self.introspector = Introspector(
            client,
            judge=self._judge,
            ttl_max=config.cache_ttl_max,
            negative_ttl=config.negative_cache_ttl,
            max_entries=config.cache_size,
        )
        self.claim_headers = tuple(
            (claim, header.encode()) for claim, header in config.claims_to_headers.items()
        )
        self.hide = config.hide_credentials  # (plain attributes: read every request)
        self.insufficient_scope = (
            (
                b"WWW-Authenticate",
                b'Bearer realm="quiver", error="insufficient_scope", scope="%s"'
                % " ".join(config.scopes).encode(),
            ),
        )

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        for _, header in self.claim_headers:  # a client cannot send claims of its own
            request.remove_header(header)
        authorization = request.get(_AUTHORIZATION) or b""
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":  # (RFC 9110 §11.1: schemes are case-insensitive)
            if self.anonymous is not None:
                if request.consumer is None:  # (a plugin that ran earlier may have)
                    request.set_consumer(self.anonymous)
                return None
            raise Unauthorized("no bearer token in the request", headers=_CHALLENGE)
        token = token.strip(b" ")
        if not _B64TOKEN.fullmatch(token):  # not worth asking the endpoint about
            raise Unauthorized("malformed bearer token", headers=_INVALID_TOKEN)
        if self.hide:
            request.remove_header(_AUTHORIZATION)
        key = self.introspector.key(token)
        grant = self.introspector.cached(key)
        if grant is None:
            return self._admit_when_known(request, key, token)
        self._admit(request, grant)
        return None

    async def _admit_when_known(self, request: PluginRequest, key: bytes, token: bytes) -> None:
        self._admit(request, await self.introspector.introspect(key, token))

    def _admit(self, request: PluginRequest, grant: _Grant) -> None:
        if not grant.active:
            raise Unauthorized("the bearer token is not active", headers=_INVALID_TOKEN)
        if grant.missing_scopes:
            missing = " ".join(grant.missing_scopes)
            raise Forbidden(
                f"the bearer token lacks scope {missing}", headers=self.insufficient_scope
            )
        if grant.consumer is not None:
            request.set_consumer(grant.consumer, grant.credential)
        for name, value in grant.headers:
            request.set_header(name, value)

    def _judge(self, claims: Mapping[str, Any]) -> _Grant:
        if not claims["active"]:
            return _Grant(False, (), None, ())
        # RFC 7662 §2.2: "scope" is a space-separated list; scopes are case-sensitive
        granted = set(claims.get("scope", "").split())
        missing = tuple(scope for scope in self.config.scopes if scope not in granted)
        consumer = None
        if self.config.consumer_claim is not None:
            name = claims.get(self.config.consumer_claim)
            if isinstance(name, str):
                consumer = self.context.consumers.by_name.get(name)
        headers = []
        for claim, header in self.claim_headers:
            value = _header_value(claims.get(claim))
            if value is not None:
                headers.append((header, value))
        client, subject = claims.get("client_id"), claims.get("sub")
        credential = b"oauth2:%s|%s" % (str(client or "").encode(), str(subject or "").encode())
        return _Grant(True, missing, consumer, tuple(headers), credential)


def _header_value(value: object) -> bytes | None:
    """A claim as a field value: strings as they are, other values as JSON; a claim
    that is absent or would break the header block is not sent."""
    if value is None:
        return None
    if not isinstance(value, str):
        return orjson.dumps(value)
    text = value.strip(" \t")
    if _UNSAFE_VALUE.search(text):
        return None
    return text.encode()
