"""jwt: config validation, RFC examples, consumer keys and JWKS through the running proxy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jwt as pyjwt
import pydantic
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

from quiver.errors import ConfigError
from quiver.plugins.jwt import Jwt
from quiver.plugins.jwt.handler import header_value
from quiver.plugins.jwt.jwks import MAX_SIZE, JwksCache
from quiver.plugins.jwt.keys import JwtCredential, parse_jwks
from quiver.proxy.outbound import OutboundClient
from quiver.proxy.sweeper import Sweeper
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Handler, Upstream, echo

# RFC 7515 Appendix A.1 (also the example of RFC 7519 §3.1): an HS256 JWS and its key
RFC_KEY = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
RFC_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
# RFC 7519 §6.1: the same claims as an unsecured JWT ("alg": "none", empty signature)
RFC_UNSECURED = (
    "eyJhbGciOiJub25lIn0"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
)
A_CENTURY = 100 * 365 * 24 * 3600
T = TypeVar("T")

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
HMAC_SECRET = "a-shared-secret-of-at-least-32-bytes!"
ALL = ["HS256", "RS256", "PS256", "ES256", "EdDSA"]


def pem(private_key: PrivateKeyTypes) -> str:
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(public.decode())


def consumer(name: str, key: str, **credential: Any) -> dict[str, Any]:
    return {"name": name, "credentials": {"jwt": [{"key": key, **credential}]}}


CONSUMERS = [
    consumer("alice", "alice-iss", algorithm="RS256", public_key=pem(RSA_KEY)),
    consumer("erin", "erin-iss", algorithm="ES256", public_key=pem(EC_KEY)),
    consumer("ed", "ed-iss", algorithm="EdDSA", public_key=pem(ED_KEY)),
    consumer("pat", "pat-iss", algorithm="PS256", public_key=pem(RSA_KEY_2)),
    {**consumer("hana", "hana-iss", secret=HMAC_SECRET), "groups": ["staff"]},
    consumer("joe", "joe", secret=RFC_KEY, secret_base64=True),
    {"name": "guest"},
]
SIGNERS: dict[str, tuple[str, Any]] = {
    "alice": ("RS256", RSA_KEY),
    "erin": ("ES256", EC_KEY),
    "ed": ("EdDSA", ED_KEY),
    "pat": ("PS256", RSA_KEY_2),
    "hana": ("HS256", HMAC_SECRET.encode()),
}


def make_token(
    key: Any, algorithm: str, *, kid: str | None = None, exp_in: float | None = 300, **claims: Any
) -> str:
    payload = dict(claims)
    if exp_in is not None:
        payload.setdefault("exp", int(time.time() + exp_in))
    return pyjwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def token_for(consumer: str, **claims: Any) -> str:
    algorithm, key = SIGNERS[consumer]
    return make_token(key, algorithm, iss=f"{consumer}-iss", **claims)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"algorithms": ["RS256"]},
        {"algorithms": ["EdDSA"], "key_claim": "kid", "leeway": "30s"},
        {"algorithms": ["ES256"], "jwks_url": "https://idp.example/jwks", "consumer_claim": "sub"},
        {"algorithms": ["HS256"], "header_names": [], "cookie_names": ["session"]},
        {"algorithms": ["RS256"], "claims_to_headers": {"sub": "X-User-Id"}, "audiences": ["a"]},
        {"algorithms": ["RS256"], "required_claims": [], "issuers": ["https://idp.example"]},
    ],
)
def test_valid_jwt_configs(settings: dict[str, Any]) -> None:
    Jwt.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "algorithms"),
        ({"algorithms": []}, "at least 1"),
        ({"algorithms": ["none"]}, "HS256"),
        ({"algorithms": ["HS256"], "key_claim": "sub"}, "'iss' or 'kid'"),
        ({"algorithms": ["RS256"], "jwks_url": "ftp://idp.example/jwks"}, "http"),
        ({"algorithms": ["RS256"], "jwks_url": "https:///jwks"}, "http"),
        ({"algorithms": ["RS256"], "consumer_claim": "sub"}, "jwks_url"),
        ({"algorithms": ["RS256"], "claims_to_headers": {"sub": "X-Consumer-Username"}}, "carry"),
        ({"algorithms": ["RS256"], "claims_to_headers": {"sub": "X User"}}, "header name"),
        ({"algorithms": ["RS256"], "header_names": []}, "at least one"),
        ({"algorithms": ["RS256"], "jwks_timeout": 0}, "greater than 0"),
        ({"algorithms": ["RS256"], "secret": "x"}, "extra"),
    ],
)
def test_invalid_jwt_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        Jwt.Config.model_validate(settings)
    assert message in str(caught.value)


def test_valid_jwt_credentials(tmp_path: Path) -> None:
    key_file = tmp_path / "ed.pem"
    key_file.write_text(pem(ED_KEY))
    p384 = ec.generate_private_key(ec.SECP384R1())
    for credential in [
        {"key": "k", "secret": "x" * 32},
        {"key": "k", "algorithm": "HS512", "secret": "x" * 64},
        {"key": "k", "secret": RFC_KEY, "secret_base64": True},
        {"key": "k", "algorithm": "RS512", "public_key": pem(RSA_KEY)},
        {"key": "k", "algorithm": "PS384", "public_key": pem(RSA_KEY)},
        {"key": "k", "algorithm": "ES384", "public_key": pem(p384)},
        {"key": "k", "algorithm": "EdDSA", "public_key": str(key_file)},
    ]:
        JwtCredential.model_validate(credential)
    loaded = JwtCredential.model_validate(
        {"key": "k", "algorithm": "EdDSA", "public_key": str(key_file)}
    )
    assert loaded.public_key == pem(ED_KEY)  # the file is read when the config loads


@pytest.mark.parametrize(
    "credential, message",
    [
        ({"key": "k", "secret": "x" * 31}, "at least 32 bytes"),
        ({"key": "k", "algorithm": "HS384", "secret": "x" * 47}, "at least 48 bytes"),
        ({"key": "k", "secret": "x" * 32, "public_key": pem(RSA_KEY)}, "needs 'secret'"),
        ({"key": "k", "algorithm": "RS256", "secret": "x" * 32}, "needs 'public_key'"),
        ({"key": "k", "algorithm": "RS256", "public_key": pem(EC_KEY)}, "RSA public key"),
        ({"key": "k", "algorithm": "ES384", "public_key": pem(EC_KEY)}, "secp384r1"),
        ({"key": "k", "algorithm": "ES256", "public_key": pem(ED_KEY)}, "EC public key"),
        ({"key": "k", "algorithm": "EdDSA", "public_key": pem(RSA_KEY)}, "Ed25519"),
        ({"key": "k", "algorithm": "none", "secret": "x" * 32}, "HS256"),
        ({"key": "k", "secret": "!!!" * 20, "secret_base64": True}, "base64"),
        ({"key": "", "secret": "x" * 32}, "at least 1"),
        ({"key": "k", "algorithm": "RS256", "public_key": "/no/such/key.pem"}, "cannot read"),
        (
            {"key": "k", "algorithm": "RS256", "public_key": "-----BEGIN PUBLIC KEY-----\nx\n"},
            "not a PEM public key",
        ),
    ],
)
def test_invalid_jwt_credentials(credential: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        JwtCredential.model_validate(credential)
    assert message in str(caught.value)


def test_small_rsa_keys_and_private_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(pydantic.ValidationError, match="at least 2048 bits"):
        JwtCredential.model_validate({"key": "k", "algorithm": "RS256", "public_key": pem(small)})
    private = RSA_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(pydantic.ValidationError, match="not a PEM public key"):
        JwtCredential.model_validate({"key": "k", "algorithm": "RS256", "public_key": private})


def test_the_secret_does_not_show_in_the_credential_repr() -> None:
    credential = JwtCredential.model_validate({"key": "k", "secret": HMAC_SECRET})
    assert HMAC_SECRET not in repr(credential)


def test_an_unknown_anonymous_consumer_is_a_config_error() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      jwt: {algorithms: [RS256], anonymous: guset}
consumers:
  - name: guest
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "routes[0].plugins.jwt.anonymous"


# -- units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claim, value",
    [
        ("alice", b"alice"),
        (True, b"true"),
        (42, b"42"),
        (["a", "b", 3], b"a, b, 3"),
        ({"role": "x"}, b'{"role":"x"}'),
        ("evil\r\nX-Injected: 1", b"evilX-Injected: 1"),
        ("caf\u00e9", "caf\u00e9".encode()),
    ],
)
def test_claims_become_header_values(claim: object, value: bytes) -> None:
    assert header_value(claim) == value


def test_a_key_set_keeps_only_public_signing_keys_of_allowed_algorithms() -> None:
    rsa_jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    keys = [
        {**rsa_jwk, "kid": "rsa"},
        {**rsa_jwk, "kid": "rs384-only", "alg": "RS384"},
        {**rsa_jwk, "kid": "for-encryption", "use": "enc"},
        {**RSAAlgorithm.to_jwk(RSA_KEY, as_dict=True), "kid": "private"},
        {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": "ec"},
        {**OKPAlgorithm.to_jwk(ED_KEY.public_key(), as_dict=True), "kid": "ed"},
        {**HMACAlgorithm.to_jwk(b"k" * 32, as_dict=True), "kid": "oct"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
        {"kty": "EC", "kid": "no-curve"},
        "not a key",
        {**rsa_jwk, "kid": 7},
        {**rsa_jwk, "kty": ["RSA"], "kid": "listed-type"},
        {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
        {**rsa_jwk, "kid": "listed-alg", "alg": ["RS256"]},
        {**rsa_jwk, "kid": "listed-use", "use": ["sig"]},
    ]
    skipped: list[tuple[str, str]] = []
    document = json.dumps({"keys": keys}).encode()
    index = parse_jwks(document, frozenset(ALL), lambda key, why: skipped.append((key, why)))
    assert sorted(str(kid) for kid in index) == ["ec", "ed", "rsa"]
    assert [key for key, _ in skipped] == [
        "'oct'",
        "'broken'",
        "'no-curve'",
        "#9",
        "#10",
        "'listed-type'",
        "'no-modulus'",
        "'listed-alg'",
        "'listed-use'",
    ]
    assert skipped[0][1] == "key type 'oct' is not taken from a key set"
    assert skipped[3][1] == "not a JSON object"
    assert skipped[4][1] == "'kid' is not a string"
    assert index["rsa"][0].algorithms == {"RS256", "PS256"}
    assert index["ec"][0].algorithms == {"ES256"}
    assert index["ed"][0].algorithms == {"EdDSA"}
    with pytest.raises(ValueError):
        parse_jwks(b'{"kid": "x"}', frozenset(ALL))


# -- consumer keys through the proxy ----------------------------------------------------


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def proxy(node: Upstream, settings: dict[str, Any] | None = None, **extra: Any) -> RunningProxy:
    plugin = {"algorithms": ALL, **(settings or {})}
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": {"jwt": plugin}}]
    consumers = extra.pop("consumers", CONSUMERS)
    return RunningProxy(make_config({"b": node.url}, routes, consumers=consumers, **extra))


def upstream_headers(response: Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.json()["headers"]}


def assert_invalid(response: Response, detail: str) -> None:
    problem = assert_problem(response, 401)
    challenge = 'Bearer realm="quiver", error="invalid_token"'
    assert response.header("WWW-Authenticate") == challenge
    assert detail in problem["detail"], problem["detail"]


def test_the_rfc_7515_example_token_is_refused_as_expired(node: Upstream) -> None:
    with proxy(node) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(RFC_TOKEN))
    assert_invalid(response, "expired")
    assert RFC_TOKEN.encode() not in response.body
    assert node.requests == []


def test_the_rfc_7515_example_token_verifies_with_a_large_leeway(node: Upstream) -> None:
    settings = {"leeway": A_CENTURY, "claims_to_headers": {"http://example.com/is_root": "X-Root"}}
    with proxy(node, settings) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(RFC_TOKEN))
    assert response.status == 200
    headers = upstream_headers(response)
    assert (headers["x-consumer-username"], headers["x-root"]) == ("joe", "true")
    assert "authorization" not in headers


def test_a_changed_byte_breaks_the_rfc_7515_example_signature(node: Upstream) -> None:
    head, payload, signature = RFC_TOKEN.split(".")
    tampered = f"{head}.{payload}.e{signature[1:]}"  # "dBjf..." becomes "eBjf..."
    with proxy(node, {"leeway": A_CENTURY}) as running, Client(running.port) as client:
        assert_invalid(client.request("GET", "/", headers=bearer(tampered)), "signature")


def test_the_rfc_7519_unsecured_example_is_refused(node: Upstream) -> None:
    with proxy(node, {"leeway": A_CENTURY}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(RFC_UNSECURED))
    assert_invalid(response, "algorithm")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_always_refused(node: Upstream, alg: str) -> None:
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": "hana-iss", "exp": int(time.time()) + 300}).encode())
    for unsecured in (f"{head}.{body}.", f"{head}.{body}.{b64url(b'x')}"):
        with proxy(node) as running, Client(running.port) as client:
            assert_invalid(client.request("GET", "/", headers=bearer(unsecured)), "algorithm")


@pytest.mark.parametrize("consumer", ["alice", "erin", "ed", "pat", "hana"])
def test_a_token_signed_with_a_consumers_key_identifies_it(node: Upstream, consumer: str) -> None:
    with proxy(node) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(token_for(consumer)))
    assert response.status == 200, response.body
    assert upstream_headers(response)["x-consumer-username"] == consumer


def test_an_hmac_token_signed_with_an_rsa_public_key_is_refused(node: Upstream) -> None:
    """Algorithm confusion: the verifier must not use alice's RS256 key as an HS256 secret."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": "alice-iss", "exp": int(time.time()) + 300}).encode())
    signature = hmac.digest(pem(RSA_KEY).encode(), f"{head}.{body}".encode(), hashlib.sha256)
    forged = f"{head}.{body}.{b64url(signature)}"
    with proxy(node, {"algorithms": ["RS256", "HS256"]}) as running, Client(running.port) as c:
        assert_invalid(c.request("GET", "/", headers=bearer(forged)), "no key")
    assert node.requests == []


@pytest.mark.parametrize(
    "settings, claims, detail",
    [
        ({}, {"exp_in": -60}, "expired"),
        ({}, {"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({}, {"iat": int(time.time()) + 3600}, "not valid yet"),
        ({}, {"exp_in": None}, "no 'exp' claim"),
        ({"required_claims": ["exp", "sub"]}, {}, "no 'sub' claim"),
        ({"audiences": ["orders"]}, {"aud": "billing"}, "audience"),
        ({"audiences": ["orders"]}, {}, "no 'aud' claim"),
        ({}, {"aud": "orders"}, "audience"),
        ({"issuers": ["other-iss"]}, {}, "issuer"),
        ({}, {"exp": "tomorrow"}, "malformed"),
    ],
)
def test_tokens_with_refused_claims_get_401(
    node: Upstream, settings: dict[str, Any], claims: dict[str, Any], detail: str
) -> None:
    with proxy(node, settings) as running, Client(running.port) as client:
        assert_invalid(
            client.request("GET", "/", headers=bearer(token_for("erin", **claims))), detail
        )
    assert node.requests == []


@pytest.mark.parametrize(
    "settings, claims",
    [
        ({"leeway": 30}, {"exp_in": -10}),
        ({"leeway": "1m"}, {"nbf": int(time.time()) + 20}),
        ({"audiences": ["orders", "billing"]}, {"aud": ["billing", "x"]}),
        ({"issuers": ["erin-iss", "other"]}, {}),
        ({"required_claims": []}, {"exp_in": None}),
    ],
)
def test_tokens_with_accepted_claims_pass(
    node: Upstream, settings: dict[str, Any], claims: dict[str, Any]
) -> None:
    with proxy(node, settings) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(token_for("erin", **claims)))
    assert response.status == 200


@pytest.mark.parametrize(
    "token, detail",
    [
        (make_token(RSA_KEY_2, "RS256", iss="alice-iss"), "signature"),  # someone else's key
        (make_token(RSA_KEY, "RS256", iss="mallory-iss"), "no key"),
        (make_token(RSA_KEY, "RS256"), "no key"),  # no iss at all
        (make_token(RSA_KEY, "RS384", iss="alice-iss"), "algorithm"),  # not allowed
        (make_token(RSA_KEY, "PS256", iss="alice-iss"), "no key"),  # alice's key is RS256 only
        (make_token(EC_KEY, "ES256", iss="alice-iss"), "no key"),
    ],
)
def test_tokens_without_a_matching_key_get_401(node: Upstream, token: str, detail: str) -> None:
    with proxy(node) as running, Client(running.port) as client:
        assert_invalid(client.request("GET", "/", headers=bearer(token)), detail)


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c",
        "..",
        "e30.e30.",
        "W10.e30.e30",
        b64url(b'{"alg": ["RS256"]}') + ".e30.e30",
        b64url(b'{"alg": "RS256", "kid": {"x": 1}}') + ".e30.e30",
        b64url(b'{"alg": "RS256"}') + "." + b64url(b'{"iss": ["alice-iss"]}') + ".e30",
        b64url(b'{"alg": "RS256"}') + "." + b64url(b"[1]") + ".e30",
        b64url(b'{"alg": "HS256"}') + "." + b64url(b'{"iss": "hana-iss"}') + ".!!!",
        "\u00e9\u00e9.\u00e9.\u00e9",
        "x" * 4000,
    ],
)
def test_malformed_tokens_get_401_never_500(node: Upstream, token: str) -> None:
    with proxy(node) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(token))
        problem = assert_problem(response, 401)
        assert token.encode() not in response.body or len(token) < 4
        assert "invalid_token" in (response.header("WWW-Authenticate") or "")
        assert problem["detail"]
        assert client.request("GET", "/", headers=bearer(token_for("hana"))).status == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer"}, {"X-Token": "x"}],
)
def test_requests_without_a_token_get_401_with_a_plain_bearer_challenge(
    node: Upstream, headers: dict[str, str]
) -> None:
    with proxy(node) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=headers)
    problem = assert_problem(response, 401)
    assert response.header("WWW-Authenticate") == 'Bearer realm="quiver"'
    assert "no bearer token" in problem["detail"]


def test_a_token_in_a_cookie_is_used_and_removed(node: Upstream) -> None:
    settings = {"header_names": [], "cookie_names": ["session"]}
    cookie = f'theme=dark; session="{token_for("hana")}"; lang=en'
    with proxy(node, settings) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers={"Cookie": cookie})
        only = client.request("GET", "/", headers={"Cookie": f"session={token_for('hana')}"})
    assert response.status == 200
    headers = upstream_headers(response)
    assert headers["cookie"] == "theme=dark; lang=en"
    assert "cookie" not in upstream_headers(only)


def test_a_token_in_the_query_is_used_and_removed(node: Upstream) -> None:
    settings = {"query_names": ["jwt"]}
    with proxy(node, settings) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?page=2&jwt={token_for('ed')}&sort=asc")
    assert response.status == 200
    assert response.json()["path"] == "/items?page=2&sort=asc"


def test_the_other_query_parameters_go_upstream_byte_for_byte(node: Upstream) -> None:
    query = f"sig=%FF%00&jwt=&%6Awt={token_for('ed')}&flag&q=a+b%2B&jwt=x"
    with proxy(node, {"query_names": ["jwt"]}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?{query}")
    assert response.status == 200
    assert response.json()["path"] == "/items?sig=%FF%00&flag&q=a+b%2B"


@pytest.mark.parametrize("token", ["%E2%82%AC", "%FF%FE%00"])
def test_a_query_token_that_is_not_ascii_is_refused_as_malformed(
    node: Upstream, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with proxy(node, {"query_names": ["jwt"]}) as running, Client(running.port) as client:
        response = client.request("GET", f"/items?jwt={token}")
    assert_problem(response, 401)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert node.requests == []


def test_a_custom_header_may_carry_the_token_with_or_without_the_scheme(node: Upstream) -> None:
    settings = {"header_names": ["X-Token", "Authorization"]}
    with proxy(node, settings) as running, Client(running.port) as client:
        for value in (token_for("pat"), f"Bearer {token_for('pat')}"):
            response = client.request("GET", "/", headers={"X-Token": value})
            assert response.status == 200
            assert "x-token" not in upstream_headers(response)


def test_the_token_is_forwarded_when_not_hidden(node: Upstream) -> None:
    token = token_for("hana")
    with proxy(node, {"hide_credentials": False}) as running, Client(running.port) as client:
        response = client.request("GET", "/", headers=bearer(token))
    assert upstream_headers(response)["authorization"] == f"Bearer {token}"


def test_claims_go_upstream_as_headers_and_clients_cannot_forge_them(node: Upstream) -> None:
    settings = {"claims_to_headers": {"sub": "X-User-Id", "roles": "X-Roles", "tenant": "X-Tenant"}}
    token = token_for("hana", sub="user-17", roles=["reader", "writer"])
    forged = {**bearer(token), "X-Tenant": "acme", "X-User-Id": "root"}
    with proxy(node, settings) as running, Client(running.port) as client:
        headers = upstream_headers(client.request("GET", "/", headers=forged))
    assert (headers["x-user-id"], headers["x-roles"]) == ("user-17", "reader, writer")
    assert "x-tenant" not in headers  # the token has no tenant claim: the client's is dropped
    assert headers["x-consumer-username"] == "hana" and headers["x-consumer-groups"] == "staff"


def test_consumer_keys_may_be_selected_by_kid(node: Upstream) -> None:
    consumers = [
        {"name": "kay", "credentials": {"jwt": [{"key": "key-2024", "secret": HMAC_SECRET}]}},
    ]
    token = make_token(HMAC_SECRET.encode(), "HS256", kid="key-2024", iss="anything")
    with (
        proxy(node, {"key_claim": "kid"}, consumers=consumers) as running,
        Client(running.port) as client,
    ):
        response = client.request("GET", "/", headers=bearer(token))
        assert upstream_headers(response)["x-consumer-username"] == "kay"
        no_kid = make_token(HMAC_SECRET.encode(), "HS256", iss="key-2024")
        assert_invalid(client.request("GET", "/", headers=bearer(no_kid)), "no key")


def test_a_consumer_key_can_be_rotated_by_listing_old_and_new(node: Upstream) -> None:
    old, new = "an-old-secret-of-at-least-32-bytes", "a-new-secret-of-at-least-32-bytes!"
    credentials = [{"key": "svc", "secret": old}, {"key": "svc", "secret": new}]
    consumers = [{"name": "svc", "credentials": {"jwt": credentials}}]
    with proxy(node, consumers=consumers) as running, Client(running.port) as client:
        for secret in (old, new):
            token = make_token(secret.encode(), "HS256", iss="svc")
            assert client.request("GET", "/", headers=bearer(token)).status == 200


def test_requests_without_a_token_fall_back_to_the_anonymous_consumer(node: Upstream) -> None:
    with proxy(node, {"anonymous": "guest"}) as running, Client(running.port) as client:
        assert upstream_headers(client.request("GET", "/"))["x-consumer-username"] == "guest"
        assert_invalid(client.request("GET", "/", headers=bearer("a.b.c")), "malformed")


# -- JWKS -------------------------------------------------------------------------------


def jwk(private_key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**data, "kid": kid, **extra}


class KeyServer:
    """Serves a JWK Set that a test can change (rotate keys, fail, chunk the body)."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.status = 200
        self.chunked = False

    def __call__(self, conn: Conn) -> None:
        request = conn.read_request()
        if request is None:
            return
        body = json.dumps({"keys": self.keys}).encode()
        if self.chunked:
            half = len(body) // 2
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:]))
            headers = [("Transfer-Encoding", "chunked")]
            conn.respond(self.status, chunks + b"0\r\n\r\n", headers)
        else:
            conn.respond(self.status, body, [("Content-Type", "application/jwk-set+json")])
        conn.close()


def jwks_proxy(
    node: Upstream, url: str, *, min_refresh: float = 1.0, **settings: Any
) -> RunningProxy:
    settings = {"jwks_url": url, "jwks_min_refresh": min_refresh, **settings}
    return proxy(node, settings)


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jwt_plugin(running: RunningProxy) -> Jwt:
    """The jwt plugin instance serving the proxy's catch-all route."""
    assert running.server is not None
    match = running.server.state.snapshot.router.match(b"GET", b"", b"/", {})
    assert match is not None
    return next(p for p in match.value.chain.plugins if isinstance(p, Jwt))


def jwks_of(running: RunningProxy, clock: FakeClock | None = None) -> JwksCache:
    jwks = jwt_plugin(running).jwks
    assert jwks is not None
    if clock is not None:
        jwks.clock = clock
    return jwks


def on_loop(running: RunningProxy, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the proxy's loop and wait for it."""
    return asyncio.run_coroutine_threadsafe(coroutine, running.loop).result(10)


def test_a_token_verified_by_a_jwks_key_names_its_consumer_by_a_claim(node: Upstream) -> None:
    server = KeyServer(jwk(EC_KEY, "ec-1"), jwk(ED_KEY, "ed-1"))
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url, consumer_claim="sub") as running,
        Client(running.port) as client,
    ):
        named = make_token(EC_KEY, "ES256", kid="ec-1", sub="alice")
        response = client.request("GET", "/", headers=bearer(named))
        assert upstream_headers(response)["x-consumer-username"] == "alice"
        nobody = make_token(ED_KEY, "EdDSA", kid="ed-1", sub="someone-else")
        spoofed = {**bearer(nobody), "X-Consumer-Username": "alice"}
        response = client.request("GET", "/", headers=spoofed)
    assert response.status == 200
    assert "x-consumer-username" not in upstream_headers(response)
    assert len(keys.requests) == 1
    assert keys.requests[0].header("Accept") == "application/jwk-set+json, application/json"


def test_keys_rotate_without_a_restart_and_unknown_kids_cannot_hammer_the_key_server(
    node: Upstream,
) -> None:
    server = KeyServer(jwk(RSA_KEY, "k1"))
    stranger = ec.generate_private_key(ec.SECP256R1())
    clock = FakeClock()
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url, min_refresh=1.0) as running,
        Client(running.port) as client,
    ):
        jwks_of(running, clock)
        old = make_token(RSA_KEY, "RS256", kid="k1")
        assert client.request("GET", "/", headers=bearer(old)).status == 200
        assert len(keys.requests) == 1
        for i in range(20):  # made-up kids right after a fetch: no fetch at all
            forged = make_token(stranger, "ES256", kid=f"forged-{i}")
            assert_invalid(client.request("GET", "/", headers=bearer(forged)), "no key")
        assert len(keys.requests) == 1
        clock.advance(1.1)
        for i in range(20):  # once the interval passed: one fetch for the whole flood
            forged = make_token(stranger, "ES256", kid=f"forged-again-{i}")
            assert client.request("GET", "/", headers=bearer(forged)).status == 401
        assert len(keys.requests) == 2

        server.keys = [jwk(RSA_KEY_2, "k2")]  # the identity provider rotates
        clock.advance(1.1)
        new = make_token(RSA_KEY_2, "RS256", kid="k2")
        assert client.request("GET", "/", headers=bearer(new)).status == 200
        assert len(keys.requests) == 3
        assert_invalid(client.request("GET", "/", headers=bearer(old)), "no key")
        assert len(keys.requests) == 3


def test_overlapping_requests_share_the_first_fetch(node: Upstream) -> None:
    server = KeyServer(jwk(ED_KEY, "ed-1"))
    statuses: list[int] = []

    def call(port: int) -> None:
        with Client(port) as client:
            token = make_token(ED_KEY, "EdDSA", kid="ed-1")
            statuses.append(client.request("GET", "/", headers=bearer(token)).status)

    with Upstream(server) as keys, jwks_proxy(node, keys.url) as running:
        threads = [threading.Thread(target=call, args=(running.port,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert statuses == [200] * 8
    assert len(keys.requests) == 1


def test_a_chunked_key_set_is_read(node: Upstream) -> None:
    server = KeyServer(jwk(RSA_KEY, "k1"), jwk(EC_KEY, "k2"))
    server.chunked = True
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url) as running,
        Client(running.port) as client,
    ):
        token = make_token(EC_KEY, "ES256", kid="k2")
        assert client.request("GET", "/", headers=bearer(token)).status == 200


def test_a_failing_key_server_gets_401_and_is_retried_after_the_interval(
    node: Upstream,
) -> None:
    server = KeyServer(jwk(ED_KEY, "ed-1"))
    server.status = 500
    token = make_token(ED_KEY, "EdDSA", kid="ed-1")
    clock = FakeClock()
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url, min_refresh=0.5) as running,
        Client(running.port) as client,
    ):
        jwks_of(running, clock)
        for _ in range(3):
            assert_invalid(client.request("GET", "/", headers=bearer(token)), "no key")
        assert len(keys.requests) == 1
        server.status = 200
        clock.advance(0.6)
        assert client.request("GET", "/", headers=bearer(token)).status == 200
        assert len(keys.requests) == 2


def test_an_unreachable_key_server_gets_401(node: Upstream) -> None:
    token = make_token(ED_KEY, "EdDSA", kid="ed-1")
    with Upstream(echo) as closed:
        url = closed.url
    with jwks_proxy(node, url) as running, Client(running.port) as client:
        assert_invalid(client.request("GET", "/", headers=bearer(token)), "no key")


def test_symmetric_keys_and_algorithm_mismatches_in_a_key_set_are_refused(
    node: Upstream,
) -> None:
    secret = b"s" * 32
    oct_key = {**HMACAlgorithm.to_jwk(secret, as_dict=True), "kid": "oct"}
    server = KeyServer(oct_key, jwk(RSA_KEY, "rs384", alg="RS384"))
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url) as running,
        Client(running.port) as client,
    ):
        hs = make_token(secret, "HS256", kid="oct")
        assert_invalid(client.request("GET", "/", headers=bearer(hs)), "no key")
        rs256 = make_token(RSA_KEY, "RS256", kid="rs384")
        assert_invalid(client.request("GET", "/", headers=bearer(rs256)), "no key")


def test_an_expired_key_set_is_refreshed_in_the_background(node: Upstream) -> None:
    server = KeyServer(jwk(RSA_KEY, "k1"))
    old = make_token(RSA_KEY, "RS256", kid="k1")
    clock = FakeClock()
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url, min_refresh=0, jwks_cache_ttl=300) as running,
        Client(running.port) as client,
    ):
        jwks = jwks_of(running, clock)
        assert client.request("GET", "/", headers=bearer(old)).status == 200
        server.keys = [jwk(RSA_KEY_2, "k2")]  # k1 is withdrawn
        clock.advance(299)
        assert client.request("GET", "/", headers=bearer(old)).status == 200
        assert len(keys.requests) == 1
        clock.advance(1)
        # still known: answered at once while the set is fetched again
        assert client.request("GET", "/", headers=bearer(old)).status == 200
        on_loop(running, jwks.settle())
        assert len(keys.requests) == 2
        assert_invalid(client.request("GET", "/", headers=bearer(old)), "no key")


def test_a_key_set_is_fetched_over_https_with_verified_certificates(
    node: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    token = make_token(EC_KEY, "ES256", kid="ec-1")
    with Upstream(KeyServer(jwk(EC_KEY, "ec-1")), tls=context) as keys:
        assert keys.url.startswith("https://")
        with jwks_proxy(node, keys.url) as running, Client(running.port) as client:
            assert_invalid(client.request("GET", "/", headers=bearer(token)), "no key")
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # now the proxy trusts the CA
        with jwks_proxy(node, keys.url) as running, Client(running.port) as client:
            assert client.request("GET", "/", headers=bearer(token)).status == 200


def test_one_odd_key_in_the_set_is_skipped_and_logged_once(
    node: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="quiver.plugins.jwt")
    odd = {**jwk(RSA_KEY_2, "odd"), "kty": ["RSA"]}
    server = KeyServer(odd, {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"}, jwk(EC_KEY, "ec-1"))
    clock = FakeClock()
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url, min_refresh=1.0) as running,
        Client(running.port) as client,
    ):
        jwks_of(running, clock)
        token = make_token(EC_KEY, "ES256", kid="ec-1")
        assert client.request("GET", "/", headers=bearer(token)).status == 200
        odd_token = make_token(RSA_KEY_2, "RS256", kid="odd")
        assert_invalid(client.request("GET", "/", headers=bearer(odd_token)), "no key")
        server.keys.append(jwk(ED_KEY, "ed-1"))  # a new document, the same odd keys
        clock.advance(1.1)
        ed_token = make_token(ED_KEY, "EdDSA", kid="ed-1")
        assert client.request("GET", "/", headers=bearer(ed_token)).status == 200
        assert len(keys.requests) == 2
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert skipped[0].endswith("key 'odd' skipped: 'kty' and 'use' must be strings")
    assert "key 'no-modulus' skipped" in skipped[1]


def run_jwks(
    url: str, main: Callable[[JwksCache], Coroutine[Any, Any, T]], *, timeout: float = 5
) -> T:
    """Run ``main`` with a JwksCache fetching ``url`` through a real outbound client."""

    async def with_cache() -> T:
        loop = asyncio.get_running_loop()
        sweeper = Sweeper(loop, interval=0.05)
        sweeper.start()
        client = OutboundClient(loop, sweeper)
        cache = JwksCache(
            url,
            algorithms=frozenset(ALL),
            min_refresh=0,
            ttl=300,
            timeout=timeout,
            outbound=client,
            clock=FakeClock(),
        )
        try:
            return await main(cache)
        finally:
            client.close()
            sweeper.stop()

    return asyncio.run(with_cache())


def serve_once(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Handler:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(status, body, headers)
            conn.close()

    return handler


def silent_for_a_while(conn: Conn) -> None:
    conn.read_request()
    conn.read_request()  # until the client gives up and closes


@pytest.mark.parametrize(
    "handler, reason",
    [
        (serve_once(404, b"gone"), "HTTP status 404"),
        (serve_once(302, b"", [("Location", "http://elsewhere/")]), "HTTP status 302"),
        (serve_once(200, b"x" * (MAX_SIZE + 1)), f"more than {MAX_SIZE} bytes"),
        (serve_once(200, b"short", [("Content-Length", "100")]), "closed mid-response"),
        (serve_once(200, b"[1, 2]"), "not a JWK Set"),
        (serve_once(200, b"{not json"), "unexpected character"),
        (silent_for_a_while, "did not answer within 0.3s"),
    ],
)
def test_a_key_set_that_cannot_be_used_keeps_the_keys_and_says_why(
    handler: Handler, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="quiver.plugins.jwt")

    async def main(cache: JwksCache) -> None:
        cache.keys = {"kept": ()}
        await cache.refresh()
        assert cache.keys == {"kept": ()}

    with Upstream(handler) as server:
        run_jwks(server.url, main, timeout=0.3)
    [record] = caplog.records
    assert record.getMessage().startswith(f"JWKS {server.url} not fetched (")
    assert reason in record.getMessage()


# -- verified tokens --------------------------------------------------------------------


class CountingDecoder:
    """Wraps a plugin's PyJWT decoder, counting the tokens it verifies."""

    def __init__(self, plugin: Jwt) -> None:
        self.calls = 0
        self.inner = plugin.decoder.decode
        plugin.decoder.decode = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_a_repeated_token_is_verified_once(node: Upstream) -> None:
    settings = {"claims_to_headers": {"sub": "X-User"}}
    with proxy(node, settings) as running, Client(running.port) as client:
        decoder = CountingDecoder(jwt_plugin(running))
        token = token_for("alice", sub="u-1")
        for _ in range(3):
            response = client.request("GET", "/", headers=bearer(token))
            assert response.status == 200
            headers = upstream_headers(response)
            assert headers["x-consumer-username"] == "alice" and headers["x-user"] == "u-1"
        assert decoder.calls == 1


def test_without_a_token_cache_every_request_is_verified(node: Upstream) -> None:
    with proxy(node, {"token_cache_size": 0}) as running, Client(running.port) as client:
        decoder = CountingDecoder(jwt_plugin(running))
        token = token_for("erin")
        for _ in range(3):
            assert client.request("GET", "/", headers=bearer(token)).status == 200
        assert decoder.calls == 3


def test_a_remembered_token_is_refused_once_it_expires(node: Upstream) -> None:
    with proxy(node, {"leeway": 10}) as running, Client(running.port) as client:
        plugin = jwt_plugin(running)
        decoder = CountingDecoder(plugin)
        clock = FakeClock(time.time())
        plugin.clock = clock
        token = token_for("alice", exp_in=60)
        assert client.request("GET", "/", headers=bearer(token)).status == 200
        clock.advance(60 + 9)  # within the leeway
        assert client.request("GET", "/", headers=bearer(token)).status == 200
        clock.advance(2)
        assert_invalid(client.request("GET", "/", headers=bearer(token)), "expired")
        assert decoder.calls == 1
        assert plugin.verified is not None and len(plugin.verified) == 0


def test_a_remembered_token_is_refused_before_its_nbf(node: Upstream) -> None:
    with proxy(node) as running, Client(running.port) as client:
        plugin = jwt_plugin(running)
        clock = FakeClock(time.time())
        plugin.clock = clock
        token = token_for("ed", nbf=int(time.time()) - 5)
        assert client.request("GET", "/", headers=bearer(token)).status == 200
        clock.advance(-60)  # the wall clock stepped back
        assert_invalid(client.request("GET", "/", headers=bearer(token)), "not valid yet")


def test_a_remembered_token_whose_key_left_the_set_is_refused_after_rotation(
    node: Upstream,
) -> None:
    server = KeyServer(jwk(RSA_KEY, "k1"), jwk(EC_KEY, "k2"))
    with (
        Upstream(server) as keys,
        jwks_proxy(node, keys.url) as running,
        Client(running.port) as client,
    ):
        plugin = jwt_plugin(running)
        old = make_token(RSA_KEY, "RS256", kid="k1")
        kept = make_token(EC_KEY, "ES256", kid="k2")
        for token in (old, kept):
            assert client.request("GET", "/", headers=bearer(token)).status == 200
        assert plugin.verified is not None and len(plugin.verified) == 2
        on_loop(running, jwks_of(running).refresh())  # the same set: nothing forgotten
        assert len(plugin.verified) == 2
        server.keys = [jwk(EC_KEY, "k2")]  # k1 is withdrawn
        on_loop(running, jwks_of(running).refresh())
        assert len(plugin.verified) == 0
        assert_invalid(client.request("GET", "/", headers=bearer(old)), "no key")
        assert client.request("GET", "/", headers=bearer(kept)).status == 200


def test_the_token_cache_keeps_to_its_size(node: Upstream) -> None:
    with proxy(node, {"token_cache_size": 2}) as running, Client(running.port) as client:
        plugin = jwt_plugin(running)
        decoder = CountingDecoder(plugin)
        tokens = [token_for("hana", sub=f"user-{i}") for i in range(3)]
        for token in tokens:
            assert client.request("GET", "/", headers=bearer(token)).status == 200
        assert plugin.verified is not None and len(plugin.verified) == 2
        assert client.request("GET", "/", headers=bearer(tokens[2])).status == 200
        assert decoder.calls == 3  # the newest is still remembered
        assert client.request("GET", "/", headers=bearer(tokens[0])).status == 200
        assert decoder.calls == 4  # the oldest was forgotten
        assert len(plugin.verified) == 2
