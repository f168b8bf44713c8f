"""Ambiguous or malformed request framing is refused before anything reaches a target.

Every vector gets a 400 problem document, the client connection is closed after
it (nothing read after an unparsable request can be trusted), and the target
never sees the request.  RFC 9112 §6.1, §6.3, §5.2, §3.2 and §7.1; the vectors
follow the classic CL.TE / TE.CL / TE.TE smuggling families.
"""

from __future__ import annotations

import json

import pytest

from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Upstream

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"


def post(*fields: bytes, body: bytes = b"", version: bytes = b"1.1") -> bytes:
    head = b"POST /upload HTTP/" + version + b"\r\nHost: example.test\r\n"
    return head + b"".join(field + b"\r\n" for field in fields) + b"\r\n" + body


def get(target: bytes = b"/", *fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    head = b"GET " + target + b" " + version + b"\r\nHost: example.test\r\n"
    return head + b"".join(field + b"\r\n" for field in fields) + b"\r\n"


def chunked(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked", body=body)


VECTORS: dict[str, bytes] = {
    # CL.TE and TE.CL: both framings present
    "content-length-then-transfer-encoding": post(
        b"Content-Length: 6", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED
    ),
    "transfer-encoding-then-content-length": post(
        b"Transfer-Encoding: chunked", b"Content-Length: 3", body=b"8\r\nSMUGGLED\r\n0\r\n\r\n"
    ),
    # Content-Length that two parsers could read differently
    "duplicate-content-length-same-value": post(
        b"Content-Length: 5", b"Content-Length: 5", body=b"hello"
    ),
    "duplicate-content-length-differing-values": post(
        b"Content-Length: 5", b"Content-Length: 0", body=b"hello"
    ),
    "content-length-list": post(b"Content-Length: 5, 5", body=b"hello"),
    "content-length-plus-sign": post(b"Content-Length: +5", body=b"hello"),
    "content-length-minus-sign": post(b"Content-Length: -5", body=b"hello"),
    "content-length-hex": post(b"Content-Length: 0x5", body=b"hello"),
    "content-length-trailing-letter": post(b"Content-Length: 5a", body=b"hello"),
    "content-length-inner-space": post(b"Content-Length: 5 5", body=b"hello"),
    "content-length-empty": post(b"Content-Length: ", body=b"hello"),
    "content-length-overflow": post(b"Content-Length: 99999999999999999999999", body=b"hello"),
    # Transfer-Encoding other than a plain "chunked"
    "transfer-encoding-gzip": post(b"Transfer-Encoding: gzip", body=b"0\r\n\r\n"),
    "transfer-encoding-gzip-then-chunked": post(
        b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-chunked-then-gzip": post(
        b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-chunked-then-identity": post(
        b"Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-identity": post(
        b"Transfer-Encoding: identity", b"Content-Length: 5", body=b"hello"
    ),
    "transfer-encoding-xchunked": post(b"Transfer-Encoding: xchunked", body=b"0\r\n\r\n"),
    "transfer-encoding-chunked-false": post(b"Transfer-Encoding: chunked-false", body=b"0\r\n\r\n"),
    "transfer-encoding-quoted": post(b'Transfer-Encoding: "chunked"', body=b"0\r\n\r\n"),
    "transfer-encoding-space-before-colon": post(
        b"Transfer-Encoding : chunked", body=b"0\r\n\r\n" + SMUGGLED
    ),
    "transfer-encoding-tab-before-colon": post(
        b"Transfer-Encoding\t: chunked", body=b"0\r\n\r\n" + SMUGGLED
    ),
    "transfer-encoding-in-two-lines": post(
        b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-gzip-line-then-chunked-line": post(
        b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-chunked-line-then-gzip-line": post(
        b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-vertical-tab-before-value": post(
        b"Transfer-Encoding:\x0bchunked", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-vertical-tab-after-value": post(
        b"Transfer-Encoding: chunked\x0b", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-form-feed": post(b"Transfer-Encoding:\x0cchunked", body=b"0\r\n\r\n"),
    "transfer-encoding-non-breaking-space": post(
        b"Transfer-Encoding:\xa0chunked", body=b"0\r\n\r\n"
    ),
    "transfer-encoding-in-http-1.0": post(
        b"Transfer-Encoding: chunked", body=b"0\r\n\r\n", version=b"1.0"
    ),
    # obs-fold: a field line starting with whitespace continues the previous one
    "obs-fold-continuation-with-space": get(b"/", b"X-Folded: first", b" second"),
    "obs-fold-continuation-with-tab": get(b"/", b"X-Folded: first", b"\tsecond"),
    "obs-fold-transfer-encoding-value": post(b"Transfer-Encoding:", b" chunked", body=b"0\r\n\r\n"),
    "obs-fold-hides-transfer-encoding": post(
        b"X-Padding: a", b" Transfer-Encoding: chunked", body=b"0\r\n\r\n"
    ),
    "first-field-line-starts-with-space": (
        b"GET / HTTP/1.1\r\n Host: example.test\r\nHost: example.test\r\n\r\n"
    ),
    # chunk-size lines
    "chunk-size-not-hex": chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-with-trailing-space": chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
    "chunk-size-with-leading-space": chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-negative": chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-hex-prefix": chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    "chunk-data-without-crlf": chunked(b"5\r\nhelloXX0\r\n\r\n"),
    "chunk-data-longer-than-size": chunked(b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-ended-by-bare-lf": chunked(b"5\nhello\r\n0\r\n\r\n"),
    "chunk-data-ended-by-bare-lf": chunked(b"5\r\nhello\n0\r\n\r\n"),
    "last-chunk-ended-by-bare-lf": chunked(b"5\r\nhello\r\n0\n\n"),
    # line endings inside the head
    "bare-cr-inside-field-value": get(b"/", b"X-Value: one\rtwo"),
    "bare-cr-ends-field-line": b"GET / HTTP/1.1\r\nHost: example.test\rX-Other: 1\r\n\r\n",
    "bare-lf-ends-field-line": b"GET / HTTP/1.1\r\nHost: example.test\nX-Other: 1\r\n\r\n",
    "bare-lf-ends-head": b"GET / HTTP/1.1\r\nHost: example.test\r\n\n",
    "request-line-ended-by-bare-lf": b"GET / HTTP/1.1\nHost: example.test\r\n\r\n",
    "request-line-ended-by-bare-cr": b"GET / HTTP/1.1\rHost: example.test\r\n\r\n",
    # control characters
    "nul-in-field-value": get(b"/", b"X-Value: one\x00two"),
    "soh-in-field-value": get(b"/", b"X-Value: one\x01two"),
    "escape-in-field-value": get(b"/", b"X-Value: one\x1btwo"),
    "delete-in-field-value": get(b"/", b"X-Value: one\x7ftwo"),
    "nul-in-field-name": get(b"/", b"X-Va\x00lue: one"),
    "nul-in-request-target": get(b"/items\x00/secret"),
    "soh-in-request-target": get(b"/items\x01"),
    "tab-in-request-target": get(b"/items\tx"),
    "delete-in-request-target": get(b"/items\x7f"),
    # HTTP versions
    "http-1.2": get(b"/", version=b"HTTP/1.2"),
    "http-2.0": get(b"/", version=b"HTTP/2.0"),
    "http-3.0": get(b"/", version=b"HTTP/3.0"),
    "http-0.9-request-line": b"GET /\r\n\r\n",
    "http-version-lowercase": get(b"/", version=b"http/1.1"),
    "http-version-without-minor": get(b"/", version=b"HTTP/1"),
    # Host
    "two-host-headers": b"GET / HTTP/1.1\r\nHost: example.test\r\nHost: other.test\r\n\r\n",
    "http-1.1-without-host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    # targets the proxy does not serve
    "connect-method": (
        b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n" + SMUGGLED
    ),
    "fragment-in-target": get(b"/items#fragment"),
    "asterisk-form-for-get": get(b"*"),
}


def assert_refused_and_closed(client: Client) -> dict[str, object]:
    response = client.read_response()
    problem = assert_problem(response, 400)
    assert response.header("Connection") == "close"
    assert client.wait_closed(timeout=5) == b"", "nothing may follow the 400"
    return problem


def assert_target_then_serves(
    proxy: RunningProxy, upstream: Upstream, *, before: list[str]
) -> None:
    """The target saw only ``before``; then a good request still goes through."""
    assert [r.path for r in upstream.requests] == before
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/after")
        assert response.status == 200
    assert [r.path for r in upstream.requests] == [*before, "/after"]


@pytest.mark.parametrize("raw", VECTORS.values(), ids=VECTORS.keys())
def test_ambiguous_request_is_refused_and_never_reaches_the_target(
    raw: bytes, proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    with Client(proxy.port, timeout=5) as client:
        client.send(raw)
        assert_refused_and_closed(client)
    assert echo_upstream.accepted == 0, "the proxy opened a connection to the target"
    assert_target_then_serves(proxy, echo_upstream, before=[])


# Requests llhttp accepts and the proxy's own checks refuse: the detail says why.
REFUSAL_REASONS = {
    "two-host-headers": "Host",
    "http-1.1-without-host": "Host",
    "transfer-encoding-gzip-then-chunked": "Transfer-Encoding",
    "transfer-encoding-in-http-1.0": "HTTP/1.0",
    "connect-method": "CONNECT",
    "fragment-in-target": "fragment",
    "asterisk-form-for-get": "target",
}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(VECTORS[name], reason) for name, reason in REFUSAL_REASONS.items()],
    ids=REFUSAL_REASONS.keys(),
)
def test_refusal_detail_names_what_is_wrong(raw: bytes, reason: str, proxy: RunningProxy) -> None:
    with Client(proxy.port, timeout=5) as client:
        client.send(raw)
        problem = assert_refused_and_closed(client)
    detail = str(problem["detail"])
    assert reason in detail, detail
    assert "callback" not in detail, detail


BODY_VECTORS = {
    name: raw for name, raw in VECTORS.items() if name.startswith(("chunk-", "last-chunk-"))
}


@pytest.mark.parametrize("raw", BODY_VECTORS.values(), ids=BODY_VECTORS.keys())
def test_bad_chunked_body_on_a_warm_pool_never_completes_a_request_upstream(
    raw: bytes, proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    # With a pooled connection the head may be on its way before the body is
    # parsed; what must never happen is a whole request reaching the target.
    with Client(proxy.port, timeout=5) as warm:
        assert warm.request("GET", "/warm").status == 200
    with Client(proxy.port, timeout=5) as client:
        client.send(raw)
        assert_refused_and_closed(client)
    assert_target_then_serves(proxy, echo_upstream, before=["/warm"])


MALFORMED_FOLLOW_UPS = {
    "content-length-and-transfer-encoding": post(
        b"Content-Length: 6", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED
    ),
    "obs-fold": get(b"/second", b"X-Folded: a", b" b"),
    "http-2.0": get(b"/second", version=b"HTTP/2.0"),
    "bad-chunk-size": chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
    "garbage-line": b"NOT A REQUEST\r\n\r\n",
}


@pytest.mark.parametrize(
    "follow_up", MALFORMED_FOLLOW_UPS.values(), ids=MALFORMED_FOLLOW_UPS.keys()
)
def test_malformed_request_pipelined_after_a_good_one_is_answered_in_turn(
    follow_up: bytes, proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    with Client(proxy.port, timeout=5) as client:
        client.send(get(b"/first") + follow_up + get(b"/never"))
        first = client.read_response()
        assert first.status == 200
        assert json.loads(first.body)["path"] == "/first"
        assert first.header("Connection") != "close"
        assert_refused_and_closed(client)
    assert_target_then_serves(proxy, echo_upstream, before=["/first"])


def test_chunked_body_with_extensions_reaches_the_target_intact(
    proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    body = b'5;name=value\r\nhello\r\n6;a=b;quoted="x y"\r\n world\r\n0;last\r\n\r\n'
    with Client(proxy.port, timeout=5) as client:
        client.send(chunked(body))
        response = client.read_response()
        assert response.status == 200
        echoed = json.loads(response.body)
        assert echoed["body"] == "hello world"
        assert echoed["body_length"] == 11
        # the connection stays usable after a chunked request
        assert client.request("GET", "/next").status == 200
    (received, _) = echo_upstream.requests
    assert received.body == b"hello world"
    assert received.header("Transfer-Encoding") == "chunked"
    assert received.header("Content-Length") is None


def test_chunked_body_with_trailer_fields_reaches_the_target_intact(
    proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    body = b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"
    with Client(proxy.port, timeout=5) as client:
        client.send(chunked(body))
        response = client.read_response()
        assert response.status == 200
        assert json.loads(response.body)["body"] == "hello"
    assert echo_upstream.requests[0].body == b"hello"


@pytest.mark.parametrize(
    "field",
    [
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: Chunked",
        b"Transfer-Encoding: CHUNKED",
        b"Transfer-Encoding: cHuNkEd",
        b"transfer-encoding: chunked",
        b"TRANSFER-ENCODING: chunked",
        b"Transfer-Encoding:chunked",
        b"Transfer-Encoding: \t chunked",
    ],
)
def test_chunked_transfer_encoding_is_accepted_in_any_letter_case(
    field: bytes, proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    with Client(proxy.port, timeout=5) as client:
        client.send(post(field, body=b"4\r\nabcd\r\n0\r\n\r\n"))
        response = client.read_response()
        assert response.status == 200
        assert json.loads(response.body)["body"] == "abcd"
        assert client.request("GET", "/next").status == 200
    assert [r.body for r in echo_upstream.requests] == [b"abcd", b""]
