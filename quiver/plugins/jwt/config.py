"""The ``jwt`` plugin's settings."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from quiver.config.base import Duration
from quiver.plugins.base import PluginConfig
from quiver.plugins.jwt.keys import JwtAlgorithm

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # a field name (RFC 9110 §5.1)


def _field_name(text: str) -> str:
    if not _TOKEN.match(text):
        raise ValueError(f"{text!r} is not a valid header name")
    if text.lower().startswith("x-consumer-"):
        raise ValueError(f"{text!r}: X-Consumer-* headers carry the identified consumer")
    return text


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or not text.isascii():
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


HeaderName = Annotated[str, AfterValidator(_field_name)]


class JwtConfig(PluginConfig):
    algorithms: list[JwtAlgorithm] = Field(
        min_length=1,
        description="Algorithms a token may be signed with (`none` never is). A consumer "
        "key also fixes its own algorithm.",
    )
    header_names: list[HeaderName] = Field(
        default_factory=lambda: ["Authorization"],
        description="Headers that may carry the token, tried in order (default: "
        "Authorization, where the Bearer scheme is required; elsewhere it is optional).",
    )
    cookie_names: list[str] = Field(
        default_factory=list, description="Cookies that may carry the token, when no header does."
    )
    query_names: list[str] = Field(
        default_factory=list,
        description="Query parameters that may carry the token, when no header or cookie "
        "does (URLs end up in logs: prefer headers); the other parameters go upstream as sent.",
    )
    key_claim: Literal["iss", "kid"] = Field(
        "iss",
        description="What selects a consumer's jwt credential: the token's `iss` claim or "
        "its `kid` header.",
    )
    jwks_url: Annotated[str, AfterValidator(_http_url)] | None = Field(
        None,
        description="A JSON Web Key Set (http:// or https://) whose public keys verify tokens "
        "by their `kid`, besides the consumers' keys.",
    )
    jwks_min_refresh: Duration = Field(
        30.0,
        description="Seconds at least between two fetches of the key set; a token with an "
        "unknown `kid` fetches it again only after this.",
    )
    jwks_cache_ttl: Duration = Field(
        300.0,
        description="Seconds the key set is used before it is fetched again (keys removed "
        "from it stop working then).",
    )
    jwks_timeout: Duration = Field(
        5.0, gt=0, description="Seconds a key set fetch may take, connecting included."
    )
    token_cache_size: int = Field(
        4096,
        ge=0,
        description="Verified tokens remembered by a keyed hash, so that a repeated token "
        "skips its signature check (its `exp` and `nbf` are still checked); 0 turns this off.",
    )
    leeway: Duration = Field(
        0.0, description="Seconds of clock skew allowed when checking `exp`, `nbf` and `iat`."
    )
    issuers: list[str] = Field(
        default_factory=list,
        description="Accepted `iss` values; when set, a token must carry one of them.",
    )
    audiences: list[str] = Field(
        default_factory=list,
        description="Accepted `aud` values; when set, a token's `aud` must name one of them "
        "(when unset, a token with an `aud` is refused).",
    )
    required_claims: list[str] = Field(
        default_factory=lambda: ["exp"],
        description="Claims every token must carry (default: `exp`, so that no token is "
        "valid forever).",
    )
    claims_to_headers: dict[str, HeaderName] = Field(
        default_factory=dict,
        description="Claims sent upstream as headers, e.g. `{sub: X-User-Id}`; a header of "
        "that name from the client is always removed.",
    )
    consumer_claim: str | None = Field(
        None,
        description="For tokens verified by a `jwks_url` key: a claim (e.g. `sub`) naming "
        "the consumer. Without it, or when it names no consumer, none is identified.",
    )
    hide_credentials: bool = Field(
        True, description="Remove the token from the request before it goes upstream."
    )
    anonymous: str | None = Field(
        None,
        description="Consumer to use for requests without a token (else 401); a request "
        "another authentication plugin identified keeps its consumer.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> JwtConfig:
        if self.consumer_claim is not None and self.jwks_url is None:
            raise ValueError("'consumer_claim' applies to keys from 'jwks_url': set it too")
        if not (self.header_names or self.cookie_names or self.query_names):
            raise ValueError("give at least one of header_names, cookie_names, query_names")
        return self
