"""The parsed head of a client request and the rules that make it safe to forward.

The parser (llhttp) already refuses most malformed framing: Content-Length with
Transfer-Encoding, duplicate Content-Length, bad chunk sizes, obs-fold, bare CR or
LF, NUL and other controls in header values.  What it lets through and a proxy
must still refuse is checked here (RFC 9112 §3.2, §6.1, §6.3).
"""

from __future__ import annotations

from quiver.errors import BadRequest
from quiver.proxy.routing import normalize_path

# Headers the proxy consumes and rebuilds itself; never copied upstream as they are.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Request headers with a meaning to the proxy; all others are forwarded untouched.
SPECIAL_REQUEST_HEADERS = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-request-id",
}
IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_MAX_REQUEST_ID = 200


class RequestHead:
    """What the proxy keeps of one request head while it travels."""

    __slots__ = (
        "chunked",
        "connection_tokens",
        "content_length",
        "expect_continue",
        "fields",
        "headers",
        "host",
        "host_header",
        "keep_alive",
        "method",
        "path",
        "query",
        "request_id",
        "size",
        "upgrade",
        "version",
        "xff",
    )

    def __init__(self) -> None:
        self.method = b""
        self.path = b""
        self.query = b""
        self.version = b"1.1"
        # forwarded as they came (name, value); special headers are kept apart
        self.headers: list[tuple[bytes, bytes]] = []
        # lowercase name -> value of every field, for routing conditions
        self.fields: dict[bytes, bytes] = {}
        self.host = b""  # lowercase, without port; for routing
        self.host_header: bytes | None = None  # as sent, for X-Forwarded-Host / preserve_host
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.connection_tokens: tuple[bytes, ...] = ()
        self.xff: bytes | None = None
        self.request_id: bytes | None = None
        self.size = 0

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def replayable(self) -> bool:
        """May be sent again on a new connection: idempotent and nothing to re-stream."""
        if self.has_body:
            return False
        return self.method in IDEMPOTENT_METHODS or b"idempotency-key" in self.fields

    def add_special(self, lname: bytes, value: bytes) -> None:
        """Record a header the proxy interprets; raises BadRequest when it is unsafe."""
        if lname == b"host":
            if self.host_header is not None:
                raise BadRequest("more than one Host header")
            self.host_header = value
        elif lname == b"transfer-encoding":
            if self.chunked:
                raise BadRequest("more than one Transfer-Encoding header")
            # Only the plain "chunked" coding is forwarded: anything else (gzip, chunked,
            # "chunked, identity", odd spacing) is a smuggling vector or unsupported.
            if value.strip(b" \t").lower() != b"chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {value.decode('latin-1')!r}")
            self.chunked = True
        elif lname == b"content-length":
            self.content_length = int(value)  # llhttp validated digits and uniqueness
        elif lname == b"connection":
            self.connection_tokens += tuple(
                token.strip(b" \t").lower() for token in value.split(b",") if token.strip()
            )
        elif lname == b"expect":
            if value.strip(b" \t").lower() != b"100-continue":
                raise BadRequest("only 'Expect: 100-continue' is understood")
            self.expect_continue = True
        elif lname == b"upgrade":
            self.upgrade = value
        elif lname == b"x-forwarded-for":
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif lname == b"x-request-id":
            if 0 < len(value) <= _MAX_REQUEST_ID and value.isascii() and b" " not in value:
                self.request_id = value
        else:  # x-forwarded-proto / -host are rebuilt by the proxy, never trusted
            pass

    def finish(self, url: bytes, method: bytes, version: str) -> None:
        """Check the whole head once every field is known (RFC 9112 §3.2, §6.1)."""
        self.method = method
        if version not in ("1.1", "1.0"):
            raise BadRequest(f"unsupported HTTP version {version}")
        self.version = version.encode()
        if self.chunked and version == "1.0":
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        if method == b"CONNECT":
            raise BadRequest("CONNECT tunnels are not supported")
        if b"#" in url:
            raise BadRequest("request target carries a fragment")
        if url[:1] != b"/":
            url = self._absolute_form(url)
        elif self.host_header is None and version == "1.1":
            raise BadRequest("HTTP/1.1 request without a Host header")
        elif self.host_header is not None:
            self.host = _host_for_routing(self.host_header)
        raw_path, _, query = url.partition(b"?")
        path = normalize_path(raw_path)
        if path is None:
            raise BadRequest("malformed request path")
        # Routed and forwarded in normal form, so the target sees the path that was routed.
        self.path = path
        self.query = query

    def _absolute_form(self, url: bytes) -> bytes:
        lowered = url[:8].lower()
        if lowered.startswith(b"http://"):
            rest = url[7:]
        elif lowered.startswith(b"https://"):
            rest = url[8:]
        else:
            raise BadRequest("request target must be a path or an absolute http(s) URL")
        authority, slash, remainder = rest.partition(b"/")
        if not authority or b"@" in authority:
            raise BadRequest("absolute request target without a valid host")
        # RFC 9112 §3.2.2: the target's authority replaces the Host header.
        self.host_header = authority
        self.host = _host_for_routing(authority)
        return slash + remainder if slash else b"/"


def _host_for_routing(value: bytes) -> bytes:
    host = value.strip(b" \t").lower()
    if host.startswith(b"["):
        end = host.find(b"]")
        if end < 0:
            raise BadRequest("malformed Host header")
        return host[: end + 1]
    name, _, port = host.partition(b":")
    if port and not port.isdigit():
        raise BadRequest("malformed Host header")
    if not name or b" " in name or b"/" in name:
        raise BadRequest("malformed Host header")
    return name
