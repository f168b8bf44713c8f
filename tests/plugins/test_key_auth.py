"""key-auth and acl through the running proxy."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pydantic
import pytest

from quiver.errors import ConfigError
from quiver.plugins.acl import Acl
from quiver.plugins.key_auth import KeyAuth
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-9876543210"
CONSUMERS = [
    {"name": "alice", "groups": ["admins"], "credentials": {"key-auth": [{"key": ALICE_KEY}]}},
    {
        "name": "bob",
        "custom_id": "b-42",
        "groups": ["staff"],
        "credentials": {
            "key-auth": [{"key_hash": "sha256:" + hashlib.sha256(BOB_KEY.encode()).hexdigest()}]
        },
    },
    {"name": "guest"},
]


@pytest.mark.parametrize(
    "settings",
    [{}, {"header_names": ["Authorization"]}, {"query_names": []}, {"anonymous": "guest"}],
)
def test_valid_key_auth_configs(settings: dict[str, Any]) -> None:
    KeyAuth.Config.model_validate(settings)


@pytest.mark.parametrize("settings", [{"header_names": "apikey"}, {"hide": True}])
def test_invalid_key_auth_configs(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        KeyAuth.Config.model_validate(settings)


@pytest.mark.parametrize("settings", [{}, {"allow": "admins"}, {"permit": ["a"]}])
def test_invalid_acl_configs(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        Acl.Config.model_validate(settings)


def test_an_unknown_anonymous_consumer_is_a_config_error() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      key-auth: {anonymous: gust}
consumers:
  - name: guest
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "routes[0].plugins.key-auth.anonymous"
    assert "unknown consumer 'gust'" in issue.message and "did you mean 'guest'" in issue.message


def test_one_key_for_two_consumers_is_a_config_error() -> None:
    digest = hashlib.sha256(b"shared-key-0123").hexdigest()
    text = f"""\
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: shared-key-0123}}, {{key: shared-key-0123}}]}}
  - name: bob
    credentials: {{key-auth: [{{key: other-key-0123}}, {{key_hash: "sha256:{digest}"}}]}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "consumers[1].credentials.key-auth[1]"
    assert issue.line == 5
    assert "identifies consumer 'alice' already" in issue.message


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def proxy(node: Upstream, plugins: dict[str, Any]) -> RunningProxy:
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    return RunningProxy(make_config({"b": node.url}, routes, consumers=CONSUMERS))


def upstream_headers(response: Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.json()["headers"]}


def test_a_valid_key_in_a_header_identifies_the_consumer_and_is_not_forwarded(
    node: Upstream,
) -> None:
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/x", headers={"X-API-Key": ALICE_KEY})
    assert response.status == 200
    headers = upstream_headers(response)
    assert headers["x-consumer-username"] == "alice"
    assert headers["x-consumer-groups"] == "admins"
    assert "x-api-key" not in headers and ALICE_KEY not in response.body.decode()


def test_a_hashed_key_works_and_carries_the_custom_id(node: Upstream) -> None:
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers={"apikey": BOB_KEY})
    headers = upstream_headers(response)
    assert (headers["x-consumer-username"], headers["x-consumer-custom-id"]) == ("bob", "b-42")


def test_a_key_in_the_query_is_accepted_and_removed(node: Upstream) -> None:
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?page=2&apikey={ALICE_KEY}&sort=asc")
    assert response.status == 200
    assert response.json()["path"] == "/items?page=2&sort=asc"


def test_the_other_query_parameters_go_upstream_byte_for_byte(node: Upstream) -> None:
    # names compare percent-decoded ("api%6Bey" is "apikey"); the rest is not re-encoded
    query = f"sig=%FF%00&apikey={ALICE_KEY}&flag&q=a+b%2B&api%6Bey=x&empty="
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?{query}")
    assert response.status == 200
    assert upstream_headers(response)["x-consumer-username"] == "alice"
    assert response.json()["path"] == "/items?sig=%FF%00&flag&q=a+b%2B&empty="


def test_a_percent_encoded_key_in_the_query_is_decoded(node: Upstream) -> None:
    encoded = ALICE_KEY.replace("-", "%2D")
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?apikey={encoded}")
    assert response.status == 200
    assert upstream_headers(response)["x-consumer-username"] == "alice"


@pytest.mark.parametrize("key", ["%E2%82%AC", "%FF%FE%00", "caf%C3%A9-key-0123"])
def test_a_query_key_that_is_not_ascii_is_an_unknown_key(
    node: Upstream, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?apikey={key}")
    assert_problem(response, 401)
    assert response.header("WWW-Authenticate") == 'Key realm="quiver"'
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert node.requests == []


def test_hide_credentials_removes_every_configured_key_location(node: Upstream) -> None:
    # the key used is in one header; other keys sit in the other header and the query
    sent = {"apikey": ALICE_KEY, "X-API-Key": BOB_KEY}
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?apikey={BOB_KEY}&page=2", headers=sent)
    assert response.status == 200
    assert upstream_headers(response)["x-consumer-username"] == "alice"
    assert response.json()["path"] == "/items?page=2"
    assert "apikey" not in upstream_headers(response)
    assert ALICE_KEY not in response.body.decode() and BOB_KEY not in response.body.decode()


def test_keys_stay_hidden_when_the_client_names_hop_by_hop_fields(node: Upstream) -> None:
    # Connection: x-trace makes the proxy drop that field and rebuild what it forwards
    sent = {"apikey": ALICE_KEY, "X-API-Key": BOB_KEY, "Connection": "x-trace", "X-Trace": "1"}
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/items", headers=sent)
    assert response.status == 200
    headers = upstream_headers(response)
    assert headers["x-consumer-username"] == "alice"
    assert "apikey" not in headers and "x-api-key" not in headers and "x-trace" not in headers
    assert ALICE_KEY not in response.body.decode() and BOB_KEY not in response.body.decode()


def test_each_request_on_a_connection_is_identified_by_its_own_key(node: Upstream) -> None:
    # a connection's last valid key is remembered: other keys on it are looked up anew
    sent = [ALICE_KEY, ALICE_KEY, BOB_KEY, "not-a-real-key", ALICE_KEY[:-1], ALICE_KEY]
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        responses = [client.request("GET", "/", headers={"apikey": key}) for key in sent]
    names = [
        upstream_headers(r)["x-consumer-username"] if r.status == 200 else r.status
        for r in responses
    ]
    assert names == ["alice", "alice", "bob", 401, 401, "alice"]


def test_a_key_removed_by_a_reload_is_refused_on_an_open_connection(node: Upstream) -> None:
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": {"key-auth": {}}}]
    without_alice = make_config({"b": node.url}, routes, consumers=CONSUMERS[1:])
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        assert client.request("GET", "/", headers={"apikey": ALICE_KEY}).status == 200
        assert running.server is not None
        running.call(running.server.swap, without_alice)
        assert client.request("GET", "/", headers={"apikey": ALICE_KEY}).status == 401


@pytest.mark.parametrize("headers", [{}, {"apikey": "not-a-real-key"}])
def test_missing_or_unknown_keys_get_401_with_a_challenge(
    node: Upstream, headers: dict[str, str]
) -> None:
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=headers)
        assert response.status == 401
        assert response.header("WWW-Authenticate") == 'Key realm="quiver"'
        assert response.header("Content-Type") == "application/problem+json"
        assert "not-a-real-key" not in response.body.decode()
        assert client.request("GET", "/", headers={"apikey": ALICE_KEY}).status == 200
    assert len(node.requests) == 1


def test_a_client_cannot_claim_a_consumer_identity(node: Upstream) -> None:
    spoofed = {"apikey": BOB_KEY, "X-Consumer-Username": "alice", "X-Consumer-Groups": "admins"}
    with proxy(node, {"key-auth": {}}) as running, Client(running.port) as client:
        headers = upstream_headers(client.request("GET", "/", headers=spoofed))
    assert (headers["x-consumer-username"], headers["x-consumer-groups"]) == ("bob", "staff")


def test_requests_without_a_key_fall_back_to_the_anonymous_consumer(node: Upstream) -> None:
    plugins = {"key-auth": {"anonymous": "guest"}}
    with proxy(node, plugins) as running, Client(running.port) as client:
        assert upstream_headers(client.request("GET", "/"))["x-consumer-username"] == "guest"
        bad = client.request("GET", "/", headers={"apikey": "wrong-key-123"})
        assert bad.status == 401  # a wrong key is not anonymous


def test_the_anonymous_consumer_does_not_replace_one_identified_before(node: Upstream) -> None:
    # jwt runs first (priority 1450 > 1250) and identifies carol by a token in X-Token
    secret = "a-shared-secret-of-at-least-32-bytes!"
    carol = {"name": "carol", "credentials": {"jwt": [{"key": "c", "secret": secret}]}}
    plugins = {
        "jwt": {"algorithms": ["HS256"], "header_names": ["X-Token"], "anonymous": "guest"},
        "key-auth": {"anonymous": "guest"},
    }
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    token = pyjwt.encode({"iss": "c", "exp": int(time.time()) + 300}, secret, algorithm="HS256")
    config = make_config({"b": node.url}, routes, consumers=[*CONSUMERS, carol])
    with RunningProxy(config) as running, Client(running.port) as client:
        by_token = client.request("GET", "/", headers={"X-Token": token})
        by_key = client.request("GET", "/", headers={"apikey": ALICE_KEY})
        neither = client.request("GET", "/")
    assert upstream_headers(by_token)["x-consumer-username"] == "carol"
    assert upstream_headers(by_key)["x-consumer-username"] == "alice"
    assert upstream_headers(neither)["x-consumer-username"] == "guest"


@pytest.mark.parametrize(
    "acl, key, status",
    [
        ({"allow": ["admins"]}, ALICE_KEY, 200),
        ({"allow": ["admins"]}, BOB_KEY, 403),
        ({"deny": ["staff"]}, BOB_KEY, 403),
        ({"deny": ["staff"]}, ALICE_KEY, 200),
        ({"allow": ["admins", "staff"], "deny": ["staff"]}, BOB_KEY, 403),
    ],
)
def test_acl_lets_groups_in_or_keeps_them_out(
    node: Upstream, acl: dict[str, Any], key: str, status: int
) -> None:
    with proxy(node, {"key-auth": {}, "acl": acl}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers={"apikey": key})
    assert response.status == status
    if status == 403:
        assert response.json()["type"] == "urn:quiver:problem:forbidden"


def test_acl_without_an_identified_consumer_is_401(node: Upstream) -> None:
    with proxy(node, {"acl": {"allow": ["admins"]}}) as running, Client(running.port) as client:
        assert client.request("GET", "/").status == 401
