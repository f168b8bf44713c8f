"""basic-auth: config validation, then HTTP Basic authentication through the running proxy."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pydantic
import pytest

from quiver.errors import ConfigError
from quiver.plugins.basic_auth import BasicAuth, BasicAuthCredential
from quiver.plugins.passwords import PasswordHash
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Upstream, echo


def scrypt_hash(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """The config's hash form, built here from hashlib alone."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def hash_text(n: int = 2**14, r: int = 8, p: int = 1, *, salt: int = 16, digest: int = 32) -> str:
    """A hash of the right form with any parameters (nothing was hashed: for validation)."""
    parts = (base64.b64encode(os.urandom(size)).decode() for size in (salt, digest))
    return f"scrypt${n}${r}${p}${next(parts)}${next(parts)}"


ALICE_PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "s3cret:with:colons"
BOB_HASH = scrypt_hash(BOB_PASSWORD)
CONSUMERS = [
    {
        "name": "alice",
        "groups": ["admins"],
        "credentials": {"basic-auth": [{"username": "alice", "password": ALICE_PASSWORD}]},
    },
    {
        "name": "bob",
        "custom_id": "b-7",
        "credentials": {"basic-auth": [{"username": "bob", "password_hash": BOB_HASH}]},
    },
    {"name": "guest"},
]


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{}, {"hide_credentials": False}, {"anonymous": "guest"}])
def test_valid_basic_auth_configs(settings: dict[str, Any]) -> None:
    BasicAuth.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings", [{"hide_credentials": "maybe"}, {"realm": "x"}, {"anonymous": ["guest"]}]
)
def test_invalid_basic_auth_configs(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        BasicAuth.Config.model_validate(settings)


@pytest.mark.parametrize(
    "credential",
    [
        {"username": "alice", "password": "pw"},
        {"username": "bob@example.com", "password_hash": BOB_HASH},
        {"username": "carol", "password_hash": hash_text(2**15, 8, 2, salt=32, digest=64)},
        {"username": "dave", "password_hash": BOB_HASH.rstrip("=")},  # unpadded base64
    ],
)
def test_valid_basic_auth_credentials(credential: dict[str, Any]) -> None:
    BasicAuthCredential.model_validate(credential)


@pytest.mark.parametrize(
    "credential, message",
    [
        ({"username": "alice"}, "exactly one"),
        ({"username": "alice", "password": "pw", "password_hash": BOB_HASH}, "exactly one"),
        ({"username": "al:ice", "password": "pw"}, "pattern"),
        ({"username": "", "password": "pw"}, "at least 1"),
        ({"username": "alice", "password": ""}, "at least 1"),
        ({"username": "alice", "password_hash": "sha256:" + "0" * 64}, "scrypt$"),
        ({"username": "alice", "password_hash": hash_text(n=1000)}, "power"),
        ({"username": "alice", "password_hash": hash_text(n=1024)}, "least"),
        ({"username": "alice", "password_hash": hash_text(n=2**20, r=8)}, "64 MiB"),
        ({"username": "alice", "password_hash": hash_text(p=0)}, "at least 1"),
        ({"username": "alice", "password_hash": hash_text(p=17)}, "at most 16"),
        ({"username": "alice", "password_hash": hash_text(salt=8)}, "salt"),
        ({"username": "alice", "password_hash": hash_text(digest=8)}, "salt"),
        ({"username": "alice", "password_hash": BOB_HASH + "x"}, "base64"),
        ({"username": "alice", "password": "pw", "pass": "pw"}, "extra"),
    ],
)
def test_invalid_basic_auth_credentials(credential: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        BasicAuthCredential.model_validate(credential)
    assert message in str(caught.value)


def test_the_password_does_not_show_in_the_credential_repr() -> None:
    credential = BasicAuthCredential.model_validate({"username": "a", "password": "hunter22"})
    assert "hunter22" not in repr(credential)


def test_an_unknown_anonymous_consumer_is_a_config_error() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      basic-auth: {anonymous: gest}
consumers:
  - name: guest
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "routes[0].plugins.basic-auth.anonymous"
    assert "did you mean 'guest'" in issue.message


def test_password_hashes_round_trip_and_check_passwords() -> None:
    hashed = PasswordHash.create(b"pw")
    assert str(hashed).startswith("scrypt$16384$8$1$")
    BasicAuthCredential.model_validate({"username": "a", "password_hash": str(hashed)})
    again = PasswordHash.parse(str(hashed))
    assert again.matches(b"pw") and not again.matches(b"pW")
    assert PasswordHash.parse(BOB_HASH).matches(BOB_PASSWORD.encode())


# -- through the proxy ------------------------------------------------------------------


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def proxy(node: Upstream, plugins: dict[str, Any], **extra: Any) -> RunningProxy:
    routes: list[dict[str, Any]] = [
        {"name": "r", "paths": ["/"], "target": "b", "plugins": plugins},
        {"name": "open", "paths": ["/open"], "target": "b"},
    ]
    return RunningProxy(make_config({"b": node.url}, routes, consumers=CONSUMERS, **extra))


def upstream_headers(response: Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.json()["headers"]}


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts hashlib.scrypt calls from now on (the proxy runs them in threads)."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return lambda: len(calls)


def test_a_plaintext_password_from_the_config_identifies_the_consumer(node: Upstream) -> None:
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/x", headers=basic("alice", ALICE_PASSWORD))
    assert response.status == 200
    headers = upstream_headers(response)
    assert (headers["x-consumer-username"], headers["x-consumer-groups"]) == ("alice", "admins")
    assert "authorization" not in headers


def test_a_hashed_password_from_the_config_works(node: Upstream) -> None:
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=basic("bob", BOB_PASSWORD))
    headers = upstream_headers(response)
    assert (headers["x-consumer-username"], headers["x-consumer-custom-id"]) == ("bob", "b-7")


def test_the_authorization_header_is_forwarded_when_not_hidden(node: Upstream) -> None:
    plugins = {"basic-auth": {"hide_credentials": False}}
    with proxy(node, plugins) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=basic("bob", BOB_PASSWORD))
    assert upstream_headers(response)["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "headers, detail",
    [
        ({}, "no Basic credentials"),
        ({"Authorization": "Bearer abc.def.ghi"}, "no Basic credentials"),
        (basic("alice", "wrong password"), "invalid username or password"),
        (basic("alice", ALICE_PASSWORD + " "), "invalid username or password"),
        (basic("mallory", ALICE_PASSWORD), "invalid username or password"),
        (basic("bob", ALICE_PASSWORD), "invalid username or password"),
    ],
)
def test_missing_or_wrong_credentials_get_401_with_a_basic_challenge(
    node: Upstream, headers: dict[str, str], detail: str
) -> None:
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=headers)
    problem = assert_problem(response, 401)
    assert response.header("WWW-Authenticate") == 'Basic realm="quiver"'
    assert detail in problem["detail"]
    assert b"wrong password" not in response.body and ALICE_PASSWORD.encode() not in response.body
    assert node.requests == []


@pytest.mark.parametrize(
    "value",
    [
        "Basic",
        "Basic ",
        "Basic !!!not base64!!!",
        "Basic YWxpY2U",  # base64 without its padding
        "Basic " + base64.b64encode(b"no colon here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\x00\x01").decode(),
        "Basic =",
        "Basic " + base64.b64encode(b":").decode(),
        "basic " + base64.b64encode(b"alice:").decode(),
    ],
)
def test_malformed_basic_credentials_get_401_never_500(node: Upstream, value: str) -> None:
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers={"Authorization": value})
        assert_problem(response, 401)
        assert response.header("WWW-Authenticate") == 'Basic realm="quiver"'
        ok = client.request("GET", "/", headers=basic("bob", BOB_PASSWORD))
        assert ok.status == 200  # the connection and the proxy carry on


def test_the_scheme_name_is_case_insensitive(node: Upstream) -> None:
    token = base64.b64encode(f"bob:{BOB_PASSWORD}".encode()).decode()
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers={"Authorization": f"bAsIc  {token}"})
    assert response.status == 200


def test_a_verified_password_is_remembered_and_a_wrong_one_never_is(
    node: Upstream, scrypt_calls: Callable[[], int]
) -> None:
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        at_start = scrypt_calls()  # the plaintext password of alice was hashed at load
        assert at_start == 1
        for _ in range(3):
            assert client.request("GET", "/", headers=basic("bob", BOB_PASSWORD)).status == 200
        assert scrypt_calls() - at_start == 1
        for _ in range(2):
            assert client.request("GET", "/", headers=basic("bob", "guess")).status == 401
        assert scrypt_calls() - at_start == 3
        # an unknown username costs a scrypt run too, so timing does not reveal usernames
        assert client.request("GET", "/", headers=basic("nobody", "guess")).status == 401
        assert scrypt_calls() - at_start == 4


def test_overlapping_first_requests_share_one_scrypt_run(
    node: Upstream, scrypt_calls: Callable[[], int]
) -> None:
    statuses: list[int] = []

    def call(port: int) -> None:
        with Client(port) as client:
            statuses.append(client.request("GET", "/", headers=basic("bob", BOB_PASSWORD)).status)

    with proxy(node, {"basic-auth": {}}) as running:
        at_start = scrypt_calls()
        threads = [threading.Thread(target=call, args=(running.port,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert statuses == [200] * 6
    assert scrypt_calls() - at_start == 1


def test_other_requests_are_served_while_a_password_is_checked(
    node: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = hashlib.scrypt

    def slow(*args: Any, **kwargs: Any) -> bytes:
        time.sleep(1.5)
        return real(*args, **kwargs)

    with proxy(node, {"basic-auth": {}}) as running:
        monkeypatch.setattr(hashlib, "scrypt", slow)
        statuses: list[int] = []

        def check() -> None:
            with Client(running.port) as client:
                response = client.request("GET", "/", headers=basic("bob", BOB_PASSWORD))
                statuses.append(response.status)

        checking = threading.Thread(target=check)
        checking.start()
        time.sleep(0.2)
        started = time.monotonic()
        with Client(running.port) as client:
            assert client.request("GET", "/open").status == 200
        elapsed = time.monotonic() - started
        checking.join(10)
    assert elapsed < 1.0, "the event loop waited for scrypt"
    assert statuses == [200]


def test_requests_without_credentials_fall_back_to_the_anonymous_consumer(
    node: Upstream,
) -> None:
    plugins = {"basic-auth": {"anonymous": "guest"}}
    with proxy(node, plugins) as running, Client(running.port) as client:
        assert upstream_headers(client.request("GET", "/"))["x-consumer-username"] == "guest"
        wrong = client.request("GET", "/", headers=basic("alice", "nope"))
        assert wrong.status == 401  # wrong credentials are not anonymous


def test_a_client_cannot_claim_a_consumer_identity(node: Upstream) -> None:
    spoofed = {**basic("bob", BOB_PASSWORD), "X-Consumer-Username": "alice"}
    with proxy(node, {"basic-auth": {}}) as running, Client(running.port) as client:
        headers = upstream_headers(client.request("GET", "/", headers=spoofed))
    assert headers["x-consumer-username"] == "bob"


def test_a_username_on_two_consumers_is_told_apart_by_the_password(node: Upstream) -> None:
    consumers = [
        {"name": "one", "credentials": {"basic-auth": [{"username": "ops", "password": "p-one"}]}},
        {"name": "two", "credentials": {"basic-auth": [{"username": "ops", "password": "p-two"}]}},
    ]
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": {"basic-auth": {}}}]
    config = make_config({"b": node.url}, routes, consumers=consumers)
    with RunningProxy(config) as running, Client(running.port) as client:
        for password, name in (("p-one", "one"), ("p-two", "two")):
            response = client.request("GET", "/", headers=basic("ops", password))
            assert upstream_headers(response)["x-consumer-username"] == name


def test_the_module_prints_a_hash_for_a_password() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quiver.plugins.basic_auth"],
        input=b"hunter22\n",
        capture_output=True,
        timeout=30,
        start_new_session=True,  # no terminal: the password is read from stdin
        check=True,
    )
    printed = done.stdout.decode().split()[-1]
    BasicAuthCredential.model_validate({"username": "a", "password_hash": printed})
    assert PasswordHash.parse(printed).matches(b"hunter22")
