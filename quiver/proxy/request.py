"""The parsed head of a client request and the rules that make it safe to forward.

The parser (llhttp, strict mode) already refuses most malformed framing:
Content-Length with Transfer-Encoding, duplicate or non-numeric Content-Length,
bad chunk-size lines, obs-fold, bare CR or LF, NUL and other controls in header
values, unknown HTTP versions.  What it lets through and a proxy must still refuse
is checked here (RFC 9112 §3.2, §6.1, §6.3).
"""

from __future__ import annotations

import re
from typing import Any

from quiver.errors import BadRequest, HeaderFieldsTooLarge
from quiver.http.fields import CONNECTION_OPTIONS, PLAN_FIELD
from quiver.http.fields import CONSUMER_FIELDS as CONSUMER_FIELDS
from quiver.http.fields import CONSUMER_PREFIX as CONSUMER_PREFIX
from quiver.http.fields import SPECIAL_REQUEST_HEADERS as SPECIAL_REQUEST_HEADERS
from quiver.http.tracecontext import TRACEPARENT, TRACESTATE

IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_MAX_REQUEST_ID = 200
_SCAN_BELOW = 9  # header lookups scan up to this many fields instead of indexing them
# uri-host [ ":" port ] (RFC 3986 §3.2.2): an IP literal, or reg-name characters
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?[ \t]*\Z")
_TRACE_FIELDS = (TRACEPARENT, TRACESTATE)
_REMEMBERED_NAMES = 4096  # field names a worker remembers the kind of (see FieldNames)

# What the proxy does with a request field, by name (see FieldNames).
FORWARD = 0  # copied upstream as received
HOST = 1
SPECIAL = 2  # interpreted (and dropped or rebuilt): see SPECIAL_REQUEST_HEADERS
CONSUMER = 3  # X-Consumer-* and X-Quiver-Plan: dropped
UNDERSCORE = 4  # a name with "_": dropped unless limits.underscores_in_headers
LOOKALIKE = 5  # with "_" read as "-", a special or X-Consumer-* name: always dropped


class FieldNames:
    """The kind of each request field name, learned once per name as received.

    Names repeat from request to request: one dict lookup of the name as the client
    spelled it replaces lowercasing and classifying it every time.  A worker keeps
    one; it forgets everything when it has seen too many names (as a client making
    up names would make it).

    ``traced``: the trace context fields are the proxy's to read and rebuild (the
    ``tracing`` setting is on); else they are copied upstream like any other.
    """

    __slots__ = ("kinds", "traced")

    def __init__(self, *, traced: bool = False) -> None:
        self.kinds: dict[bytes, int] = {}
        self.traced = traced

    def kind(self, name: bytes) -> int:
        """The kind of field ``name`` (as spelled), remembered or learned now."""
        kind = self.kinds.get(name)
        return kind if kind is not None else self.classify(name)

    def classify(self, name: bytes) -> int:
        lname = name.lower()
        kind = SPECIAL if self.traced and lname in _TRACE_FIELDS else field_kind(lname)
        kinds = self.kinds
        if len(kinds) >= _REMEMBERED_NAMES:
            kinds.clear()
        kinds[name] = kind
        return kind


def field_kind(lname: bytes) -> int:
    """What the proxy does with a request field of lowercase name ``lname``."""
    if lname.startswith(CONSUMER_PREFIX) or lname == PLAN_FIELD:
        return CONSUMER
    if lname in SPECIAL_REQUEST_HEADERS:
        return HOST if lname == b"host" else SPECIAL
    if 95 not in lname:  # b"_"
        return FORWARD
    # Some servers read "_" as "-" (CGI and WSGI name both HTTP_TRANSFER_ENCODING):
    # never let such a name pass for a field the proxy controls.
    dashed = lname.replace(b"_", b"-")
    if (
        dashed.startswith(CONSUMER_PREFIX)
        or dashed in SPECIAL_REQUEST_HEADERS
        or dashed == PLAN_FIELD
    ):
        return LOOKALIKE
    return UNDERSCORE


class RequestHead:
    """What the proxy keeps of one request head while it travels.

    Fields most requests leave alone are class-level defaults: a request only pays
    for the fields it sets (no __slots__ on purpose; see bench/hotpath.py).
    """

    method = b""
    raw_path = b""  # as received; routed and forwarded once normalized
    query = b""
    version = b"1.1"
    _fields: dict[bytes, bytes] | None = None
    host_header: bytes | None = None  # as sent (or the absolute target's authority)
    content_length: int | None = None
    chunked = False
    keep_alive = True
    expect_continue = False
    upgrade: bytes | None = None
    connection_tokens: tuple[bytes, ...] = ()
    xff: bytes | None = None
    request_id: bytes | None = None
    traceparent: bytes | None = None  # read only when tracing is on (else forwarded)
    tracestate: bytes | None = None

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []  # every field as received
        self.forward: list[tuple[bytes, bytes]] = []  # the fields copied upstream unchanged

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """A header's value by lowercase name (repeated fields joined by ", ")."""
        fields = self._fields
        if fields is None:
            headers = self.headers
            if len(headers) <= _SCAN_BELOW:  # a few fields: a scan beats building a dict
                found = None
                size = len(name)
                for field, value in headers:
                    if len(field) == size and field.lower() == name:
                        found = value if found is None else found + b", " + value
                return default if found is None else found
            fields = self._fields = {}
            for field, value in headers:
                key = field.lower()
                fields[key] = value if key not in fields else fields[key] + b", " + value
        return fields.get(name, default)

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def replayable(self) -> bool:
        """May be sent again on a new connection: idempotent and nothing to re-stream."""
        if self.has_body:
            return False
        return self.method in IDEMPOTENT_METHODS or self.get(b"idempotency-key") is not None

    def finish(
        self,
        url: bytes,
        parser: Any,
        max_headers: int,
        max_size: int,
        names: FieldNames,
        underscores: bool,
    ) -> None:
        """Check the whole head once every field is known (RFC 9112 §3.2, §6.1).

        ``max_size`` is the header block limit, or 0 when the head is known to fit;
        ``underscores``: names with "_" are kept (limits.underscores_in_headers).
        """
        self.method = method = parser.get_method()
        headers = self.headers
        if len(headers) > max_headers:
            raise HeaderFieldsTooLarge(f"more than {max_headers} header fields")
        forward = self.forward
        kinds = names.kinds
        special = False  # any field besides Host that the proxy interprets
        dropped = False  # fields no one past this point may see
        # (``forward`` holds the very field tuples of ``headers``: see remove_field)
        for field in headers:
            name = field[0]
            kind = kinds.get(name)
            if kind is None:
                kind = names.classify(name)
            if not kind:  # FORWARD
                forward.append(field)
            elif kind == HOST:
                if self.host_header is not None:
                    raise BadRequest("more than one Host header")
                self.host_header = field[1]
            elif kind == SPECIAL:
                self._special(name.lower(), field[1])
                special = True
            elif kind == UNDERSCORE and underscores:
                forward.append(field)
            else:
                dropped = True
        if max_size and sum(len(n) + len(v) + 4 for n, v in headers) > max_size:
            raise HeaderFieldsTooLarge(f"header fields exceed {max_size} bytes")
        # llhttp only keeps alive HTTP/1.1, or HTTP/1.0 that asked to: in the usual case
        # the version is known without asking for it (which costs a string format).
        self.keep_alive = keep_alive = parser.should_keep_alive()
        if dropped:
            self.headers = [f for f in headers if _kept(names.kind(f[0]), underscores)]
        if special:
            tokens = self.connection_tokens
            if self.upgrade is not None and b"upgrade" not in tokens:
                self.upgrade = None  # RFC 9110 §7.8: only meaningful when Connection lists it
            if b"keep-alive" in tokens:
                keep_alive = False  # could be HTTP/1.0: look at the version
            if tokens and not CONNECTION_OPTIONS.issuperset(tokens):
                # The fields the client's Connection names are hop-by-hop (RFC 9110
                # §7.6.1): dropped as received, so that what the gateway adds later
                # (identity fields, a plugin's) always goes on.
                self.forward = [f for f in forward if f[0].lower() not in tokens]
                # gone for the gateway's own decisions too (retries read Idempotency-Key,
                # plugins read credentials), and for what it rebuilds from them
                self.headers = [f for f in self.headers if f[0].lower() not in tokens]
                if b"x-forwarded-for" in tokens:
                    self.xff = None
                if b"x-request-id" in tokens:
                    self.request_id = None
        if not keep_alive:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                raise BadRequest(f"unsupported HTTP version {version}")
            if version == "1.0":
                self.version = b"1.0"
                if self.chunked:
                    raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        if method == b"CONNECT":
            raise BadRequest("CONNECT tunnels are not supported")
        if url[0] != 47:  # b"/"
            url = self._absolute_form(url)
        elif self.host_header is None and self.version == b"1.1":
            raise BadRequest("HTTP/1.1 request without a Host header")
        # (`int in bytes` is a memchr; `bytes in bytes` costs more in CPython 3.11)
        if 35 in url:  # b"#"
            raise BadRequest("request target carries a fragment")
        if 63 in url:  # b"?"
            question = url.index(b"?")
            self.raw_path = url[:question]
            self.query = url[question + 1 :]
        else:
            self.raw_path = url

    def _special(self, lname: bytes, value: bytes) -> None:
        if lname == b"content-length":
            self.content_length = int(value)  # llhttp checked digits and uniqueness
        elif lname == b"transfer-encoding":
            if self.chunked:
                raise BadRequest("more than one Transfer-Encoding header")
            # Only the plain "chunked" coding is accepted: anything else ("gzip, chunked",
            # "chunked, identity", odd spacing) is unsupported or a smuggling attempt.
            if value.strip(b" \t").lower() != b"chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {value.decode('latin-1')!r}")
            self.chunked = True
        elif lname == b"connection":
            tokens = tuple(t.strip(b" \t").lower() for t in value.split(b",") if t.strip())
            self.connection_tokens += tokens
        elif lname == b"expect":
            if value.strip(b" \t").lower() != b"100-continue":
                raise BadRequest("only 'Expect: 100-continue' is understood")
            self.expect_continue = True
        elif lname == b"upgrade":
            self.upgrade = value
        elif lname == b"x-forwarded-for":
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif (
            lname == b"x-request-id"
            and 0 < len(value) <= _MAX_REQUEST_ID
            and value.isascii()
            and b" " not in value
        ):
            self.request_id = value  # a client's id is kept when it is a sane token
        elif lname == b"traceparent":  # (special only when tracing is on: FieldNames)
            # repeated, it is no longer one valid value: the trace restarts
            self.traceparent = value if self.traceparent is None else b""
        elif lname == b"tracestate":  # repeated: one list (W3C Trace Context §3.3.1.1)
            state = self.tracestate
            self.tracestate = value if state is None else state + b"," + value
        # keep-alive, te, trailer, proxy-connection and x-forwarded-proto/-host are dropped:
        # hop-by-hop, or rebuilt by the proxy and never trusted from clients

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
        return slash + remainder if slash else b"/"


def _kept(kind: int, underscores: bool) -> bool:
    """Whether plugins still see a field of ``kind`` (the proxy's own are kept)."""
    return kind < CONSUMER or (kind == UNDERSCORE and underscores)


def host_for_routing(value: bytes) -> bytes:
    """The host name of a Host header (RFC 9110 §7.2), lowercase, without the port."""
    match = _HOST.match(value)
    if match is None:
        raise BadRequest("malformed Host header")
    return match.group(1).lower()
