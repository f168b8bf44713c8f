"""The node's response head rewritten for the client: a table of heads and requests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from quiver.errors import BadGateway
from quiver.proxy.flow import DECODED, FILTERED, NO_BODY, RELAY, WRAP_CHUNKS
from quiver.proxy.redirects import Redirects
from quiver.proxy.response_head import rewrite_head


@dataclass
class Facts:
    method: bytes = b"GET"
    version: bytes = b"1.1"
    upgrade: bytes | None = None
    rid: bytes = b"rid1"
    raw_path: bytes = b"/"
    upstream_path: bytes = b"/"
    response_fields: bytes = b""


def head(*lines: str, status: str = "HTTP/1.1 200 OK") -> bytes:
    return ("\r\n".join([status, *lines]) + "\r\n\r\n").encode()


CASES = [
    # name, raw head, request, keep-alive in, filtered,
    # then: mode, keep-alive out, closes, has, lacks
    (
        "length",
        head("Content-Length: 2"),
        Facts(),
        True,
        False,
        RELAY,
        True,
        False,
        ["HTTP/1.1 200 OK", "Content-Length: 2", "X-Request-ID: rid1", "Via: 1.1 quiver"],
        ["Connection"],
    ),
    (
        "node speaks 1.0",
        head("Content-Length: 2", status="HTTP/1.0 200 OK"),
        Facts(),
        True,
        False,
        RELAY,
        True,
        False,
        ["HTTP/1.1 200 OK"],
        ["HTTP/1.0"],
    ),
    (
        "node's 1.0 to a 1.0 client",
        head("Content-Length: 2", status="HTTP/1.0 200 OK"),
        Facts(version=b"1.0"),
        True,
        False,
        RELAY,
        True,
        False,
        ["HTTP/1.1 200 OK", "Connection: keep-alive"],
        [],
    ),
    (
        "chunked to 1.1",
        head("Transfer-Encoding: chunked"),
        Facts(),
        True,
        False,
        RELAY,
        True,
        False,
        ["Transfer-Encoding: chunked"],
        [],
    ),
    (
        "chunked to 1.0 is decoded",
        head("Transfer-Encoding: chunked"),
        Facts(version=b"1.0"),
        True,
        False,
        DECODED,
        False,
        False,
        ["Connection: close"],
        ["Transfer-Encoding"],
    ),
    (
        "close-delimited to 1.1",
        head("Content-Type: text/plain"),
        Facts(),
        True,
        False,
        WRAP_CHUNKS,
        True,
        True,
        ["Transfer-Encoding: chunked"],
        [],
    ),
    (
        "close-delimited to 1.0",
        head("Content-Type: text/plain"),
        Facts(version=b"1.0"),
        True,
        False,
        RELAY,
        False,
        True,
        ["Connection: close"],
        ["Transfer-Encoding"],
    ),
    (
        "filtered",
        head("Content-Length: 5"),
        Facts(),
        True,
        True,
        FILTERED,
        True,
        False,
        ["Transfer-Encoding: chunked"],
        ["Content-Length"],
    ),
    (
        "HEAD has no body",
        head("Content-Length: 5"),
        Facts(method=b"HEAD"),
        True,
        False,
        NO_BODY,
        True,
        False,
        ["Content-Length: 5"],
        [],
    ),
    (
        "204",
        head(status="HTTP/1.1 204 No Content"),
        Facts(),
        True,
        False,
        NO_BODY,
        True,
        False,
        ["204 No Content"],
        [],
    ),
    (
        "hop-by-hop dropped",
        head(
            "Content-Length: 0",
            "Connection: close, X-Secret",
            "Keep-Alive: timeout=5",
            "X-Secret: 1",
            "Upgrade: h2c",
        ),
        Facts(),
        True,
        False,
        RELAY,
        True,
        False,
        ["Content-Length: 0"],
        ["X-Secret", "Keep-Alive", "Upgrade", "Connection"],
    ),
    (
        "draining closes",
        head("Content-Length: 0"),
        Facts(),
        False,
        False,
        RELAY,
        False,
        False,
        ["Connection: close"],
        [],
    ),
    (
        "node's request id kept",
        head("Content-Length: 0", "X-Request-ID: theirs"),
        Facts(),
        True,
        False,
        RELAY,
        True,
        False,
        ["X-Request-ID: theirs"],
        ["rid1"],
    ),
    (
        "upgrade accepted",
        head(
            "Connection: Upgrade", "Upgrade: websocket", status="HTTP/1.1 101 Switching Protocols"
        ),
        Facts(upgrade=b"websocket"),
        True,
        False,
        NO_BODY,
        True,
        False,
        ["Connection: Upgrade", "Upgrade: websocket"],
        [],
    ),
    (
        "upgrade refused closes",
        head("Content-Length: 0"),
        Facts(upgrade=b"websocket"),
        True,
        False,
        RELAY,
        False,
        False,
        ["Connection: close"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("raw", "request_facts", "keep_alive", "filtered", "mode", "keeps", "closes", "has", "lacks"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_response_heads_are_rewritten_for_the_client(
    raw: bytes,
    request_facts: Facts,
    keep_alive: bool,
    filtered: bool,
    mode: int,
    keeps: bool,
    closes: bool,
    has: list[str],
    lacks: list[str],
) -> None:
    status = int(raw.split(b" ", 2)[1])
    out, got_mode, got_keep, got_closes = rewrite_head(
        raw, status, request_facts, keep_alive, filtered, None
    )
    text = out.decode()
    assert text.endswith("\r\n\r\n")
    assert (got_mode, got_keep, got_closes) == (mode, keeps, closes)
    for part in has:
        assert part in text, (part, text)
    for part in lacks:
        assert part not in text, (part, text)


@pytest.mark.parametrize(
    ("raw", "facts"),
    [
        (head("Transfer-Encoding: gzip"), Facts()),
        (head(status="HTTP/1.1 101 Switching Protocols"), Facts()),
    ],
    ids=["unknown transfer coding", "unrequested upgrade"],
)
def test_responses_the_proxy_cannot_relay_are_bad_gateway(raw: bytes, facts: Facts) -> None:
    status = int(raw.split(b" ", 2)[1])
    with pytest.raises(BadGateway):
        rewrite_head(raw, status, facts, True, False, None)


def test_location_fields_go_through_the_route_redirects() -> None:
    raw = head(
        "Content-Length: 0", "Location: http://10.0.0.5:9001/login", status="HTTP/1.1 302 Found"
    )
    redirects = Redirects([b"http://10.0.0.5:9001"])
    facts = Facts(raw_path=b"/api/x", upstream_path=b"/x")
    out = rewrite_head(raw, 302, facts, True, False, redirects)[0]
    assert b"\r\nLocation: /api/login\r\n" in out


def test_fields_plugins_add_come_after_the_request_id() -> None:
    added = b'RateLimit: "minute";r=1;t=5\r\n'
    rewritten, *_ = rewrite_head(
        head("Content-Length: 0"), 200, Facts(response_fields=added), True, False, None
    )
    assert rewritten == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-ID: rid1\r\n"
        + added
        + b"Via: 1.1 quiver\r\n\r\n"
    )
