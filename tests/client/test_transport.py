"""The wire: framing, keep-alive, TLS, redirects, broken connections.

Run on both transports (tests/client/conftest.py): what a caller sees must not
depend on which one carried the request."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
from pathlib import Path

import httpx
import pytest
import trustme

from quiver.client import (
    NO_RETRY,
    APIKeyAuth,
    AsyncClient,
    Client,
    NetworkError,
    QuiverClientError,
    ReadTimeout,
    RetryPolicy,
    Timeouts,
    TooManyRedirects,
)
from quiver.client.http11 import AsyncLeanTransport, SyncLeanTransport
from tests.client.scripted import Events, Waits, json_answer, scripted
from tests.support.upstream import Conn, Request, Upstream, echo, json_response, silent

pytestmark = pytest.mark.timeout(20)


def test_requests_share_one_kept_alive_connection() -> None:
    with Upstream(echo) as server, Client(server.url) as api:
        paths = [api.get(f"/{n}").json()["path"] for n in range(3)]
    assert paths == ["/0", "/1", "/2"]
    assert server.accepted == 1


def test_a_chunked_body_is_joined() -> None:
    def chunked(conn: Conn) -> None:
        while conn.read_request() is not None:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            conn.send(head + b"Transfer-Encoding: chunked\r\n\r\n")
            conn.send(b"5\r\n[1, 2\r\n")
            conn.send(b"4\r\n, 3]\r\n0\r\n\r\n")

    with Upstream(chunked) as server, Client(server.url) as api:
        assert api.get("/").json() == [1, 2, 3]
        assert api.get("/").json() == [1, 2, 3]
    assert server.accepted == 1


def test_an_interim_response_is_skipped_for_the_answer() -> None:
    def hinted(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            conn.respond(200, b"[7]", [("Content-Type", "application/json")])

    with Upstream(hinted) as server, Client(server.url) as api:
        assert [api.get("/").json() for _ in range(2)] == [[7], [7]]
    assert server.accepted == 1


def test_a_body_without_length_ends_with_the_connection() -> None:
    def until_close(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 100_000)
            conn.close()

    with Upstream(until_close) as server, Client(server.url) as api:
        assert api.get("/").content == b"x" * 100_000
        assert api.get("/").content == b"x" * 100_000
    assert server.accepted == 2


def test_a_gzipped_body_is_decoded() -> None:
    body = gzip.compress(b'{"zipped": true}')

    def zipped(request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert "gzip" in (request.header("accept-encoding") or "")
        return 200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], body

    with scripted(zipped) as server, Client(server.url) as api:
        assert api.get("/").json() == {"zipped": True}


def test_a_redirect_is_followed_and_the_final_url_kept() -> None:
    def moved(request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if request.path == "/old":
            return 301, [("Location", "/new")], b""
        return json_answer({"at": request.path})

    with scripted(moved) as server, Client(server.url) as api:
        response = api.get("/old")
    assert response.json() == {"at": "/new"}
    assert response.url.endswith("/new")


def test_a_redirect_loop_raises_the_clients_own_error() -> None:
    def looping(request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return 302, [("Location", request.path)], b""

    async def fetch(url: str) -> None:
        async with AsyncClient(url) as api:
            await api.get("/loop")

    with scripted(looping) as server:
        with Client(server.url) as api, pytest.raises(TooManyRedirects) as raised:
            api.get("/loop")
        assert isinstance(raised.value, QuiverClientError)
        assert raised.value.url.endswith("/loop")
        with pytest.raises(TooManyRedirects):
            asyncio.run(fetch(server.url))


def test_head_and_a_post_body_go_out_as_given() -> None:
    def answer(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "HEAD":  # the length of the body a GET would get
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
            else:
                json_response(conn, request)

    with Upstream(answer) as server, Client(server.url) as api:
        head = api.request("HEAD", "/h")
        sent = api.post("/p", json={"a": 1}).json()
    assert (head.content, head.headers["content-length"]) == (b"", "10")
    assert (sent["method"], sent["body"]) == ("POST", '{"a":1}')
    assert [r.method for r in server.requests] == ["HEAD", "POST"]


def test_a_connection_broken_mid_body_is_a_network_error_and_a_get_is_retried() -> None:
    def truncated(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        if len(conn.server.requests) <= 2:  # the first try of each client below
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            conn.close()
            return
        conn.respond(200, b"[]", [("Content-Type", "application/json")])

    waits, events = Waits(), Events()
    with Upstream(truncated) as server:
        with Client(server.url, retry=NO_RETRY, breaker=None) as api:
            with pytest.raises(NetworkError) as caught:
                api.get("/")
            assert caught.value.retryable
        with Client(server.url, sleep=waits.sleep, on_event=events, breaker=None) as api:
            assert api.get("/").json() == []
    assert len(events.named("retry")) == 1


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    closed = threading.Event()

    def once(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(200, b"[]", [("Content-Type", "application/json")])
            conn.close()
            closed.set()

    with Upstream(once) as server, Client(server.url, retry=NO_RETRY) as api:
        api.get("/")
        assert closed.wait(5)
        closed.clear()
        api.get("/")  # on a new connection: no retry needed, none allowed
    assert server.accepted == 2


def test_tls_is_verified_against_the_given_authority(tmp_path: Path) -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    with Upstream(echo, tls=context) as server:
        with Client(server.url, verify=ssl.create_default_context(cafile=ca)) as api:
            assert api.get("/secure").json()["path"] == "/secure"
        with Client(server.url, retry=NO_RETRY) as api, pytest.raises(Exception) as caught:
            api.get("/secure")  # the system's authorities do not know this one
    assert "CERTIFICATE_VERIFY_FAILED" in repr(caught.value.__cause__ or caught.value)


def test_the_async_client_times_out_a_silent_server_and_reuses_connections() -> None:
    waits = Waits()

    async def main(slow: str, fast: str) -> list[str]:
        async with AsyncClient(
            slow,
            timeouts=Timeouts(read=0.2),
            sleep=waits.async_sleep,
            clock=waits.clock,
            breaker=None,
        ) as api:
            with pytest.raises(ReadTimeout):
                await api.get("/slow")
        async with AsyncClient(fast, retry=RetryPolicy(0)) as api:
            pages = await asyncio.gather(*(api.get(f"/{n}") for n in range(4)))
            return [page.json()["path"] for page in pages]

    with Upstream(silent) as slow, Upstream(echo) as fast:
        assert asyncio.run(main(slow.url, fast.url)) == ["/0", "/1", "/2", "/3"]
        assert len(slow.requests) == 4  # three retries
        assert fast.accepted <= 4


def test_a_proxy_in_the_environment_keeps_httpx_s_transport(
    monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    def kind(client: AsyncClient | Client) -> type:
        return type(client._http._transport)

    lean = transport == "http11"
    assert (kind(Client()) is SyncLeanTransport) is lean
    assert (kind(AsyncClient()) is AsyncLeanTransport) is lean
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert kind(Client()) is httpx.HTTPTransport
    assert kind(AsyncClient()) is httpx.AsyncHTTPTransport


def _heads(server: Upstream) -> list[tuple[str, list[tuple[str, str]]]]:
    port = server.url.rsplit(":", 1)[1]
    return [(r.path, [(k, v.replace(port, "PORT")) for k, v in r.headers]) for r in server.requests]


def test_a_plain_get_goes_out_as_httpx_sends_it() -> None:
    """On the lean transport a GET skips httpx's request objects: the bytes are the same."""
    params: list[dict[str, object]] = [
        {"page": 2},
        {"q": "a b+c/d?é&", "flag": True, "none": None, "many": [1, "x y"]},
        {"since": "2024-01-01T00:00:00Z", "key": "s3cret"},
        {"empty": []},
    ]

    def sent(transport: str) -> list[tuple[str, list[tuple[str, str]]]]:
        with (
            Upstream(echo) as server,
            Client(
                server.url + "/base/?fixed=1",
                headers={"X-Team": "blue"},
                auth=APIKeyAuth("k%y", "api_key", "query"),
                transport=transport,  # type: ignore[arg-type]
            ) as api,
        ):
            for query in params:
                response = api.get("items/ä", params=query, headers={"Accept": "text/csv"})
                assert "k%y" not in response.url and "api_key" not in response.url
            api.get("/abs?x=1 2")
            api.get(server.url + "/other")
            return _heads(server)

    assert sent("http11") == sent("httpx")


def test_a_cookie_set_is_sent_back() -> None:
    def baker(request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if request.path == "/login":
            return json_answer({}, headers=[("Set-Cookie", "session=abc; Path=/")])
        return json_answer({"cookie": request.header("cookie")})

    with scripted(baker) as server, Client(server.url) as api:
        assert api.get("/before").json() == {"cookie": None}
        api.get("/login")
        assert api.get("/after").json() == {"cookie": "session=abc"}
