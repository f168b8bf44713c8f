"""oauth2-introspection: bearer tokens checked at an RFC 7662 endpoint, through the proxy.

The authorization server is a real HTTP server on loopback that answers from a
table of tokens and records every introspection request it gets.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt as pyjwt
import pydantic
import pytest
import trustme

from quiver.errors import ConfigError
from quiver.plugins.introspection import VerdictCache
from quiver.plugins.oauth2_introspection import OAuth2Introspection
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Request, Upstream, echo

pytestmark = pytest.mark.timeout(60)

READER = "reader-token-0123456789"
WRITER = "writer-token-abcdefghij"
STRANGER = "stranger-token-zyxwvut"
REVOKED = "revoked-token-55555555"
CONSUMERS = [{"name": "alice", "groups": ["admins"]}, {"name": "guest"}]


def claims(**extra: Any) -> dict[str, Any]:
    return {"active": True, "exp": time.time() + 3600, **extra}


class AuthServer:
    """An introspection endpoint answering from ``tokens`` (unknown tokens are inactive).

    ``raw`` replaces the answer with bytes sent as they are; ``delay`` holds each
    answer back that many seconds.
    """

    def __init__(self, tokens: dict[str, dict[str, Any]], *, tls: ssl.SSLContext | None = None):
        self.tokens = tokens
        self.delay = 0.0
        self.raw: bytes | None = None
        self.upstream = Upstream(self._answer, tls=tls)

    @property
    def url(self) -> str:
        return self.upstream.url + "/oauth2/introspect"

    @property
    def calls(self) -> list[Request]:
        return self.upstream.requests

    def form(self, index: int = 0) -> dict[str, str]:
        return dict(parse_qsl(self.calls[index].body.decode()))

    def _answer(self, conn: Conn) -> None:
        request = conn.read_request()
        if request is None:
            return
        time.sleep(self.delay)
        if self.raw is not None:
            conn.send(self.raw)
            conn.close()
            return
        token = dict(parse_qsl(request.body.decode())).get("token", "")
        answer = self.tokens.get(token, {"active": False})
        conn.respond(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])
        conn.close()

    def __enter__(self) -> AuthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.upstream.close()


@pytest.fixture
def auth() -> Iterator[AuthServer]:
    tokens = {
        READER: claims(scope="read", username="alice", sub="u-1", aud=["api", "web"]),
        WRITER: claims(scope="read write", username="alice"),
        STRANGER: claims(scope="read write", username="mallory"),
    }
    with AuthServer(tokens) as server:
        yield server


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def settings(auth: AuthServer, **extra: Any) -> dict[str, Any]:
    return {
        "introspection_url": auth.url,
        "client_id": "gateway",
        "client_secret": "s3cret",
        **extra,
    }


def proxy(node: Upstream, plugins: dict[str, Any]) -> RunningProxy:
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    return RunningProxy(make_config({"b": node.url}, routes, consumers=CONSUMERS))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upstream_headers(response: Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.json()["headers"]}


class FakeClock:
    """A wall clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def with_clock(running: RunningProxy) -> FakeClock:
    """Give the proxy's oauth2-introspection plugin a clock the test moves."""
    assert running.server is not None
    match = running.server.state.snapshot.router.match(b"GET", b"", b"/", {})
    assert match is not None
    plugin = next(p for p in match.value.chain.plugins if isinstance(p, OAuth2Introspection))
    clock = FakeClock()
    plugin.introspector.cache.clock = clock
    return clock


# -- config -----------------------------------------------------------------------------

URL = "https://auth.example/oauth2/introspect"


@pytest.mark.parametrize(
    "config",
    [
        {"introspection_url": URL, "client_id": "gw", "client_secret": "x"},
        {"introspection_url": "http://10.0.0.1:8080/i", "client_auth": "none"},
        {"introspection_url": "http://[::1]:8080/i?realm=a", "client_auth": "none"},
        {"introspection_url": URL, "client_auth": "none", "ca_file": "/etc/ca.pem"},
        {
            "introspection_url": URL,
            "client_auth": "none",
            "token_type_hint": "access_token",
            "scopes": ["read", "orders:write"],
            "timeout": "250ms",
            "cache_ttl_max": "5m",
            "negative_cache_ttl": 0,
            "cache_size": 1,
            "consumer_claim": "sub",
            "claims_to_headers": {"sub": "X-User-ID", "scope": "X-Scopes"},
            "hide_credentials": False,
        },
    ],
)
def test_valid_configs(config: dict[str, Any]) -> None:
    OAuth2Introspection.Config.model_validate(config)


@pytest.mark.parametrize(
    "config",
    [
        {"client_auth": "none"},
        {"introspection_url": "ftp://auth.example/i", "client_auth": "none"},
        {"introspection_url": "https:///i", "client_auth": "none"},
        {"introspection_url": "https://u:p@auth.example/i", "client_auth": "none"},
        {"introspection_url": "https://auth..example/i", "client_auth": "none"},
        {"introspection_url": "https://auth.example:99999/i", "client_auth": "none"},
        {"introspection_url": URL},
        {"introspection_url": URL, "client_id": "gw"},
        {"introspection_url": URL, "client_auth": "none", "client_secret": "x"},
        {"introspection_url": URL, "client_auth": "mtls"},
        {"introspection_url": "http://a/i", "client_auth": "none", "ca_file": "/ca.pem"},
        {"introspection_url": URL, "client_auth": "none", "scopes": "read"},
        {"introspection_url": URL, "client_auth": "none", "scopes": ["read write"]},
        {"introspection_url": URL, "client_auth": "none", "timeout": 0},
        {"introspection_url": URL, "client_auth": "none", "cache_ttl_max": "forever"},
        {"introspection_url": URL, "client_auth": "none", "cache_size": 0},
        {"introspection_url": URL, "client_auth": "none", "claims_to_headers": {"s": "X Sub"}},
        {"introspection_url": URL, "client_auth": "none", "claims_to_headers": {"s": "Host"}},
        {"introspection_url": URL, "client_auth": "none", "realm": "api"},
    ],
)
def test_invalid_configs(config: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        OAuth2Introspection.Config.model_validate(config)


def test_an_unknown_anonymous_consumer_is_a_config_error() -> None:
    text = f"""\
targets: [{{name: b, url: "http://127.0.0.1:9"}}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      oauth2-introspection: {{introspection_url: "{URL}", client_auth: none, anonymous: gust}}
consumers:
  - name: guest
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "routes[0].plugins.oauth2-introspection.anonymous"


def test_the_cache_is_bounded_and_keeps_no_token_in_clear() -> None:
    now = [0.0]
    cache: VerdictCache[str] = VerdictCache(2, clock=lambda: now[0])
    keys = [cache.key(token.encode()) for token in (READER, WRITER, STRANGER)]
    for key, value in zip(keys, ("r", "w", "s"), strict=True):
        cache.put(key, value, ttl=10)
    assert len(cache) == 2 and cache.get(keys[0]) is None  # the oldest went first
    assert cache.get(keys[2]) == "s"
    assert all(READER.encode() not in key and len(key) == 32 for key in keys)
    now[0] = 10.0
    assert cache.get(keys[2]) is None  # expired


# -- through the proxy --------------------------------------------------------------------


def test_an_active_token_gets_in_and_the_endpoint_is_asked_as_rfc_7662_says(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(auth, token_type_hint="access_token")
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/orders", headers=bearer(READER))
    assert response.status == 200
    [call] = auth.calls
    assert (call.method, call.path) == ("POST", "/oauth2/introspect")
    assert call.header("Content-Type") == "application/x-www-form-urlencoded"
    assert auth.form() == {"token": READER, "token_type_hint": "access_token"}
    expected = base64.b64encode(b"gateway:s3cret").decode()
    assert call.header("Authorization") == f"Basic {expected}"


def test_a_secret_from_the_environment_is_sent_form_encoded(
    auth: AuthServer, node: Upstream
) -> None:
    text = f"""\
listen: "127.0.0.1:0"
targets: [{{name: b, url: "{node.url}"}}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      oauth2-introspection:
        introspection_url: "{auth.url}"
        client_id: "gate way"
        client_secret: "${{INTROSPECTION_SECRET}}"
"""
    config = load_config_text(text, env={"INTROSPECTION_SECRET": "p@ss:word&1"})
    with RunningProxy(config) as running, Client(running.port) as client:
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
    # RFC 6749 §2.3.1: id and secret are form-encoded, then joined and base64-encoded
    expected = base64.b64encode(b"gate+way:p%40ss%3Aword%261").decode()
    assert auth.calls[0].header("Authorization") == f"Basic {expected}"


def test_client_auth_none_sends_no_credentials(auth: AuthServer, node: Upstream) -> None:
    plugin = {"introspection_url": auth.url, "client_auth": "none"}
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
    assert auth.calls[0].header("Authorization") is None
    assert auth.form() == {"token": READER}


def test_the_token_is_hidden_from_upstream_and_claims_are_forwarded(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(
        auth,
        consumer_claim="username",
        claims_to_headers={"sub": "X-User-ID", "aud": "X-Audience", "missing": "X-Missing"},
    )
    spoofed = {**bearer(READER), "X-User-ID": "root", "X-Missing": "forged"}
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=spoofed)
    headers = upstream_headers(response)
    assert "authorization" not in headers and READER not in response.body.decode()
    assert headers["x-user-id"] == "u-1"
    assert json.loads(headers["x-audience"]) == ["api", "web"]
    assert "x-missing" not in headers
    assert (headers["x-consumer-username"], headers["x-consumer-groups"]) == ("alice", "admins")


def test_with_hide_credentials_off_the_token_goes_upstream(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(auth, hide_credentials=False)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(READER))
    assert upstream_headers(response)["authorization"] == f"Bearer {READER}"


def test_a_claim_naming_no_known_consumer_gets_in_without_a_consumer(
    auth: AuthServer, node: Upstream
) -> None:
    plugins: dict[str, Any] = {"oauth2-introspection": settings(auth, consumer_claim="username")}
    forged = {**bearer(STRANGER), "X-Consumer-Username": "alice"}
    with proxy(node, plugins) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=forged)
    assert response.status == 200
    assert "x-consumer-username" not in upstream_headers(response)
    plugins["acl"] = {"allow": ["admins"]}
    with proxy(node, plugins) as running, Client(running.port) as client:
        assert client.request("GET", "/", headers=bearer(STRANGER)).status == 401
        assert client.request("GET", "/", headers=bearer(READER)).status == 200


def test_an_inactive_token_gets_401_invalid_token_and_is_remembered_briefly(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(auth, negative_cache_ttl=0.6)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        clock = with_clock(running)
        for _ in range(3):
            response = client.request("GET", "/", headers=bearer(REVOKED))
            assert_problem(response, 401)
            challenge = 'Bearer realm="quiver", error="invalid_token"'
            assert response.header("WWW-Authenticate") == challenge
            assert REVOKED not in response.body.decode()
        assert len(auth.calls) == 1
        clock.advance(0.7)
        assert client.request("GET", "/", headers=bearer(REVOKED)).status == 401
    assert len(auth.calls) == 2
    assert node.requests == []


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic Z3Vlc3Q6Z3Vlc3Q=", "Bearer", "Bearer two words", "Bearer bad\\token"],
)
def test_a_missing_or_malformed_token_is_refused_without_asking(
    auth: AuthServer, node: Upstream, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=headers)
    assert_problem(response, 401)
    if authorization is None or authorization.startswith("Basic"):
        assert response.header("WWW-Authenticate") == 'Bearer realm="quiver"'
    else:
        assert 'error="invalid_token"' in (response.header("WWW-Authenticate") or "")
    assert auth.calls == []


def test_requests_without_a_token_fall_back_to_the_anonymous_consumer(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(auth, anonymous="guest")
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/")
        assert upstream_headers(response)["x-consumer-username"] == "guest"
        assert client.request("GET", "/", headers=bearer(REVOKED)).status == 401


def test_the_anonymous_consumer_does_not_replace_one_identified_before(
    auth: AuthServer, node: Upstream
) -> None:
    # jwt runs first (priority 1450 > 1400) and identifies carol by a token in X-Token
    secret = "a-shared-secret-of-at-least-32-bytes!"
    carol = {"name": "carol", "credentials": {"jwt": [{"key": "c", "secret": secret}]}}
    plugins = {
        "jwt": {"algorithms": ["HS256"], "header_names": ["X-Token"], "anonymous": "guest"},
        "oauth2-introspection": settings(auth, anonymous="guest", consumer_claim="username"),
    }
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    token = pyjwt.encode({"iss": "c", "exp": int(time.time()) + 300}, secret, algorithm="HS256")
    config = make_config({"b": node.url}, routes, consumers=[*CONSUMERS, carol])
    with RunningProxy(config) as running, Client(running.port) as client:
        by_jwt = client.request("GET", "/", headers={"X-Token": token})
        by_bearer = client.request("GET", "/", headers=bearer(READER))
        neither = client.request("GET", "/")
    assert upstream_headers(by_jwt)["x-consumer-username"] == "carol"
    assert upstream_headers(by_bearer)["x-consumer-username"] == "alice"
    assert upstream_headers(neither)["x-consumer-username"] == "guest"
    assert len(auth.calls) == 1


def test_an_answer_is_reused_until_the_token_expires(auth: AuthServer, node: Upstream) -> None:
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        clock = with_clock(running)
        auth.tokens[READER] = claims(exp=clock.now + 30)
        for _ in range(3):
            assert client.request("GET", "/", headers=bearer(READER)).status == 200
        assert len(auth.calls) == 1
        auth.tokens[READER] = {"active": False}
        clock.advance(29)
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
        clock.advance(1)
        assert client.request("GET", "/", headers=bearer(READER)).status == 401
    assert len(auth.calls) == 2


def test_cache_ttl_max_caps_how_long_an_answer_is_reused(auth: AuthServer, node: Upstream) -> None:
    plugin = settings(auth, cache_ttl_max="500ms")
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        clock = with_clock(running)
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
        assert len(auth.calls) == 1
        clock.advance(0.5)
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
    assert len(auth.calls) == 2


def test_an_active_answer_with_a_past_exp_is_refused(auth: AuthServer, node: Upstream) -> None:
    auth.tokens[READER] = claims(exp=time.time() - 5)
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(READER))
    assert response.status == 401
    assert 'error="invalid_token"' in (response.header("WWW-Authenticate") or "")


def test_a_token_without_every_required_scope_gets_403_insufficient_scope(
    auth: AuthServer, node: Upstream
) -> None:
    plugin = settings(auth, scopes=["read", "write"])
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        refused = client.request("GET", "/", headers=bearer(READER))
        problem = assert_problem(refused, 403)
        assert refused.header("WWW-Authenticate") == (
            'Bearer realm="quiver", error="insufficient_scope", scope="read write"'
        )
        assert "write" in problem["detail"] and READER not in refused.body.decode()
        assert client.request("GET", "/", headers=bearer(WRITER)).status == 200
    assert len(node.requests) == 1


def test_concurrent_requests_with_one_uncached_token_share_one_introspection(
    auth: AuthServer, node: Upstream
) -> None:
    auth.delay = 0.3
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running:
        clients = [Client(running.port) for _ in range(12)]
        start = threading.Barrier(len(clients))

        def call(client: Client) -> int:
            start.wait()
            with client:
                return client.request("GET", "/", headers=bearer(READER)).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(call, clients))
    assert statuses == [200] * len(clients)
    assert len(auth.calls) == 1


def test_an_unreachable_endpoint_gives_502(
    node: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{reserved.getsockname()[1]}/introspect"
        plugin = {"introspection_url": url, "client_auth": "none"}
        with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as c:
            response = c.request("GET", "/", headers=bearer(READER))
    problem = assert_problem(response, 502)
    assert problem["detail"] == "the token introspection endpoint could not be asked"
    assert_endpoint_only_logged(problem, caplog, url.split("/")[2], "refused")
    assert READER not in response.body.decode() and READER not in caplog.text
    assert node.requests == []


def _http(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def warnings_about(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The plugin's warnings (the endpoint's failures, with its address)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "quiver.plugins.oauth2-introspection"
        and record.levelno == logging.WARNING
    ]


def assert_endpoint_only_logged(
    problem: dict[str, Any], caplog: pytest.LogCaptureFixture, endpoint: str, reason: str
) -> None:
    """Clients read no address and no hint about the gateway's own credentials; the
    log has the endpoint and what went wrong."""
    assert "127.0.0.1" not in problem["detail"] and endpoint.split(":")[-1] not in problem["detail"]
    assert "client_id" not in problem["detail"]
    [warning] = warnings_about(caplog)
    assert f"token introspection at {endpoint} " in warning and reason in warning


@pytest.mark.parametrize(
    "raw, reason",
    [
        (_http(500, b'{"error": "server_error"}'), "answered 500"),
        (_http(401, b'{"error": "invalid_client"}'), "answered 401 (check client_id"),
        (_http(200, b"<html>not json</html>", "text/html"), "did not answer JSON"),
        (_http(200, b'{"scope": "read"}'), "without 'active'"),
        (_http(200, b'{"active": "true"}'), "without 'active'"),
        (_http(200, b'{"active": true, "exp": "tomorrow"}'), "non-numeric 'exp'"),
        (_http(200, b"[true]"), "without 'active'"),
        (_http(200, b'{"active": tr'), "did not answer JSON"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{}", "failed: "),  # closed early
        (b"SSH-2.0-OpenSSH_9.6\r\n", "failed: "),
        (b"", "failed: "),
    ],
    ids=[
        "500",
        "401",
        "html",
        "no-active",
        "string-active",
        "bad-exp",
        "array",
        "cut-json",
        "short-body",
        "not-http",
        "empty",
    ],
)
def test_an_endpoint_answering_garbage_gives_502_and_nothing_is_cached(
    auth: AuthServer, node: Upstream, raw: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    auth.raw = raw
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(READER))
        problem = assert_problem(response, 502)
        assert_endpoint_only_logged(problem, caplog, auth.upstream.url.split("/")[2], reason)
        assert READER not in response.body.decode() and READER not in caplog.text
        auth.raw = None
        assert client.request("GET", "/", headers=bearer(READER)).status == 200
    assert len(auth.calls) == 2


def test_a_slow_endpoint_gives_504_within_the_timeout(
    auth: AuthServer, node: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    auth.delay = 3.0
    plugin = settings(auth, timeout="300ms")
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        started = time.monotonic()
        response = client.request("GET", "/", headers=bearer(READER))
        elapsed = time.monotonic() - started
    problem = assert_problem(response, 504)
    assert 0.3 - 0.002 <= elapsed < 1.5  # (uvloop timers may fire a hair early)
    assert problem["detail"] == "the token introspection endpoint did not answer in time"
    endpoint = auth.upstream.url.split("/")[2]
    assert_endpoint_only_logged(problem, caplog, endpoint, "took longer than 0.3s")
    assert READER not in response.body.decode() and READER not in caplog.text


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_an_https_endpoint_is_verified_against_ca_file(
    ca: trustme.CA, node: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with AuthServer({READER: claims()}, tls=_tls_server(ca)) as auth:
        assert auth.url.startswith("https://")
        trusted = {"introspection_url": auth.url, "client_auth": "none", "ca_file": str(ca_file)}
        untrusted = {"introspection_url": auth.url, "client_auth": "none"}
        with proxy(node, {"oauth2-introspection": trusted}) as running, Client(running.port) as c:
            assert c.request("GET", "/", headers=bearer(READER)).status == 200
        with proxy(node, {"oauth2-introspection": untrusted}) as running, Client(running.port) as c:
            response = c.request("GET", "/", headers=bearer(READER))
    problem = assert_problem(response, 502)
    assert_endpoint_only_logged(problem, caplog, auth.url.split("/")[2], "TLS")


def test_the_client_leaving_does_not_cancel_an_introspection_others_wait_for(
    auth: AuthServer, node: Upstream
) -> None:
    auth.delay = 0.3
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running:
        leaving = Client(running.port)
        leaving.send(
            f"GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {READER}\r\n\r\n".encode()
        )
        deadline = time.monotonic() + 5
        while not auth.calls and time.monotonic() < deadline:  # the question is out
            time.sleep(0.005)
        leaving.close()
        with Client(running.port) as staying:
            assert staying.request("GET", "/", headers=bearer(READER)).status == 200
    assert len(auth.calls) == 1


def test_a_failing_endpoint_is_logged_once_per_cause(
    auth: AuthServer, node: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = settings(auth)
    endpoint = auth.upstream.url.split("/")[2]
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:

        def ask(raw: bytes | None, token: str = READER) -> int:
            auth.raw = raw
            return client.request("GET", "/", headers=bearer(token)).status

        assert [ask(_http(503, b"")) for _ in range(3)] == [502] * 3
        assert ask(_http(401, b"")) == 502  # another cause
        assert ask(_http(401, b""), WRITER) == 502
        assert ask(None) == 200  # answers again
        assert ask(_http(401, b""), WRITER) == 502  # failing again is news
    assert warnings_about(caplog) == [
        f"token introspection at {endpoint} answered 503",
        f"token introspection at {endpoint} answered 401 (check client_id and client_secret)",
        f"token introspection at {endpoint} answered 401 (check client_id and client_secret)",
    ]


def test_failures_are_not_logged_with_the_token(
    auth: AuthServer, node: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth.raw = _http(503, b"")
    plugin = settings(auth)
    with proxy(node, {"oauth2-introspection": plugin}) as running, Client(running.port) as client:
        assert client.request("GET", "/", headers=bearer(READER)).status == 502
    assert READER not in caplog.text
