"""Finding the token in a request (headers, then cookies, then the query string), and
reading its header and claims before verification, to choose the key."""

from __future__ import annotations

import re
from typing import Any

import orjson

from quiver.config.consumers import decode_base64
from quiver.plugins.base import PluginRequest
from quiver.plugins.jwt.config import JwtConfig
from quiver.plugins.query import query_names, take_param


class TokenFinder:
    """Takes the token out of a request (removing it there when ``hide_credentials``)."""

    def __init__(self, config: JwtConfig) -> None:
        #: each header with whether it needs the Bearer scheme (Authorization does)
        self.headers = tuple(
            (header, header == b"authorization")
            for header in (name.lower().encode() for name in config.header_names)
        )
        self.cookies = frozenset(name.encode("latin-1") for name in config.cookie_names)
        self.query_names = query_names(config.query_names)
        self.hide = config.hide_credentials

    def take(self, request: PluginRequest) -> bytes | None:
        for header, scheme_required in self.headers:
            value = request.get(header)
            if value is None:
                continue
            token = _bearer(value, scheme_required=scheme_required)
            if token:
                if self.hide:
                    request.remove_header(header)
                return token
        token = self._from_cookie(request) if self.cookies else None
        if token is None and self.query_names and request.query:
            token = self._from_query(request)
        return token

    def _from_cookie(self, request: PluginRequest) -> bytes | None:
        header = request.get(b"cookie")
        if header is None:
            return None
        pairs = [part.strip() for part in header.split(b";")]
        token = None
        for pair in pairs:
            name, _, value = pair.partition(b"=")
            if name in self.cookies and value:
                token = value.strip(b'"')  # a cookie value may be quoted (RFC 6265 §4.1.1)
                break
        if token is not None and self.hide:
            kept = [pair for pair in pairs if pair.partition(b"=")[0] not in self.cookies]
            if kept:
                request.set_header(b"cookie", b"; ".join(kept))
            else:
                request.remove_header(b"cookie")
        return token

    def _from_query(self, request: PluginRequest) -> bytes | None:
        token, kept = take_param(request.query, self.query_names, hide=self.hide, skip_empty=True)
        if kept is not None:
            request.set_query(kept)
        return token


def _bearer(value: bytes, *, scheme_required: bool) -> bytes | None:
    """The token of ``Bearer <token>`` (RFC 6750 §2.1; the scheme is case-insensitive)."""
    scheme, space, rest = value.strip().partition(b" ")
    if space and scheme.lower() == b"bearer":
        return rest.strip()
    return None if scheme_required or space else value.strip()


_SEGMENT = re.compile(rb"[A-Za-z0-9_-]+\Z")  # base64url without padding (RFC 7515 §2)


def peek(token: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JOSE header and the claims of a compact JWS, NOT verified: only for choosing
    the algorithm and key, which PyJWT then verifies the whole token with.

    (One split and two decodes instead of PyJWT parsing the token for its header and
    again for its claims: its strict parse is slow, and it still runs once, on the
    verified decode.)  Raises ValueError when the token is malformed.
    """
    parts = token.split(b".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header, claims = _json_segment(parts[0]), _json_segment(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("the header and the claims must be JSON objects")
    return header, claims


def _json_segment(segment: bytes) -> Any:
    if not _SEGMENT.match(segment):
        raise ValueError("not base64url")
    try:
        return orjson.loads(decode_base64(segment.decode("ascii")))
    except orjson.JSONDecodeError as exc:
        raise ValueError("not base64url-encoded JSON") from exc
