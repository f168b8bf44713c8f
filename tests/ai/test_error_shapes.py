"""The gateway's own refusals on an AI route (key-auth's 401, an ACL's 403, a rate
limit's 429, a guardrail's 400, a body too large) come back in the shape of the front
the client called, so the official SDKs raise their usual errors; other routes of
the same gateway, a prompt API's included, keep problem documents."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from quiver.ai.errors import error_type, from_http_error, render
from quiver.errors import (
    ContentTooLarge,
    Forbidden,
    GatewayTimeout,
    HTTPError,
    TooManyRequests,
    Unauthorized,
)
from tests.ai.mock_providers import KEYS, MockProviders
from tests.support.proxy import RunningProxy

ALICE = "alice-key-0123456789"  # in the group `ai`
BOB = "bob-key-0123456789"  # in no group
WRONG = "not-a-key-of-this-gateway"
USER = [{"role": "user", "content": "hello there"}]


def config(mocks: MockProviders) -> str:
    openai_url, anthropic_url = mocks.base_url("openai"), mocks.base_url("anthropic")
    return f"""
listen: 127.0.0.1:0
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{openai_url}", api_key: {KEYS["openai"]}}}
    - {{name: an, type: anthropic, base_url: "{anthropic_url}", api_key: {KEYS["anthropic"]}}}
  models:
    - {{name: gpt, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
    - {{name: claude, deployments: [{{provider: an, model: claude-3-5-haiku}}]}}
consumers:
  - {{name: alice, groups: [ai], credentials: {{key-auth: [{{key: {ALICE}}}]}}}}
  - {{name: bob, credentials: {{key-auth: [{{key: {BOB}}}]}}}}
targets:
  - {{name: plain, url: "{mocks.origin}"}}
routes:
  - name: ai
    paths: ["/v1"]
    ai: {{}}
    plugins:
      key-auth: {{}}
      request-size-limit: {{max_size: 4096}}
      ai-prompt-guard: {{deny: [{{name: secrets, regex: "(?i)password"}}]}}
  - name: limited
    paths: ["/limited/v1"]
    ai: {{}}
    plugins:
      key-auth: {{}}
      rate-limit: {{limit: 1, window: 1h}}
  - name: members
    paths: ["/members/v1"]
    ai: {{}}
    plugins:
      key-auth: {{}}
      acl: {{allow: [ai]}}
  - name: hasty
    paths: ["/hasty/v1"]
    ai: {{}}
    retries: {{attempts: 1, per_try_timeout: 0.2s}}
  - name: summarize
    paths: ["/summarize"]
    ai: {{prompt: {{model: gpt, template: "Summarise: {{{{text}}}}"}}}}
    plugins:
      key-auth: {{}}
  - name: plain
    paths: ["/plain"]
    target: plain
    plugins:
      key-auth: {{}}
"""


@pytest.fixture(scope="module")
def proxy(mock_providers: MockProviders) -> Iterator[RunningProxy]:
    with RunningProxy(config(mock_providers)) as running:
        yield running


def openai_client(proxy: RunningProxy, key: str, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + prefix, api_key=key, max_retries=0)


def anthropic_client(proxy: RunningProxy, key: str, prefix: str = "") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url + prefix, api_key=key, max_retries=0)


def ask_claude(client: anthropic.Anthropic, text: str = "hello there") -> Any:
    content = [{"role": "user", "content": text}]
    return client.messages.create(model="claude", max_tokens=50, messages=content)  # type: ignore[arg-type]


def assert_names_the_request(error: openai.APIStatusError | anthropic.APIStatusError) -> None:
    """Both SDKs' request_id is the exchange's id, in X-Request-ID and request-id."""
    headers = error.response.headers
    assert error.request_id and error.request_id == headers["x-request-id"]
    assert headers["request-id"] == headers["x-request-id"]
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"


# -- through the SDKs -------------------------------------------------------------------


def test_a_wrong_key_is_openais_authentication_error(proxy: RunningProxy) -> None:
    with openai_client(proxy, WRONG) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt", messages=USER)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):  # (refused before any stream)
            client.chat.completions.create(model="gpt", messages=USER, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    error = caught.value
    assert error.status_code == 401
    body: Any = error.body  # (the SDK keeps the `error` member)
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "invalid_api_key"
    assert body["param"] is None
    assert body["message"]
    assert_names_the_request(error)


def test_a_wrong_key_is_anthropics_authentication_error(proxy: RunningProxy) -> None:
    with anthropic_client(proxy, WRONG) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            ask_claude(client)
        with pytest.raises(anthropic.AuthenticationError):
            client.messages.count_tokens(model="claude", messages=USER)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == 401
    body: Any = error.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error" and body["error"]["message"]
    assert body["request_id"] == error.request_id
    assert_names_the_request(error)


def test_a_rate_limit_is_openais_rate_limit_error(proxy: RunningProxy) -> None:
    with openai_client(proxy, ALICE, "/limited/v1") as client:
        with contextlib.suppress(openai.RateLimitError):  # (the one call of the hour)
            client.chat.completions.create(model="gpt", messages=USER)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt", messages=USER)  # type: ignore[arg-type]
    error = caught.value
    body: Any = error.body
    assert (body["type"], body["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    headers = error.response.headers
    assert int(headers["retry-after"]) > 0
    assert "ratelimit" in headers and "ratelimit-policy" in headers
    assert_names_the_request(error)


def test_a_rate_limit_is_anthropics_rate_limit_error(proxy: RunningProxy) -> None:
    with anthropic_client(proxy, ALICE, "/limited") as client:
        with contextlib.suppress(anthropic.RateLimitError):
            ask_claude(client)
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask_claude(client)
    error = caught.value
    body: Any = error.body
    assert body["error"]["type"] == "rate_limit_error"
    assert int(error.response.headers["retry-after"]) > 0
    assert_names_the_request(error)


def test_a_guardrail_refusal_is_a_bad_request_error_with_its_cause(proxy: RunningProxy) -> None:
    with openai_client(proxy, ALICE) as client, pytest.raises(openai.BadRequestError) as refused:
        messages = [{"role": "user", "content": "what is the password?"}]
        client.chat.completions.create(model="gpt", messages=messages)  # type: ignore[arg-type]
    body: Any = refused.value.body
    assert (body["type"], body["code"], body["rule"]) == (
        "invalid_request_error",
        "prompt_refused",
        "secrets",
    )
    with (
        anthropic_client(proxy, ALICE) as claude,
        pytest.raises(anthropic.BadRequestError) as caught,
    ):
        ask_claude(claude, "what is the password?")
    document: Any = caught.value.body
    assert document["error"]["type"] == "invalid_request_error"
    assert document["error"]["rule"] == "secrets"
    assert_names_the_request(caught.value)


def test_an_acl_refusal_is_a_permission_error(proxy: RunningProxy) -> None:
    with (
        openai_client(proxy, BOB, "/members/v1") as client,
        pytest.raises(openai.PermissionDeniedError) as caught,
    ):
        client.chat.completions.create(model="gpt", messages=USER)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert (body["type"], body["code"]) == ("invalid_request_error", "forbidden")
    with (
        anthropic_client(proxy, BOB, "/members") as claude,
        pytest.raises(anthropic.PermissionDeniedError) as denied,
    ):
        ask_claude(claude)
    document: Any = denied.value.body
    assert document["error"]["type"] == "permission_error"
    with openai_client(proxy, ALICE, "/members/v1") as member:  # (the route does answer)
        assert member.chat.completions.create(model="gpt", messages=USER).choices  # type: ignore[arg-type]


def test_a_body_too_large_is_request_too_large(proxy: RunningProxy) -> None:
    with (
        anthropic_client(proxy, ALICE) as claude,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        ask_claude(claude, "word " * 2000)
    assert caught.value.status_code == 413
    document: Any = caught.value.body
    assert document["error"]["type"] == "request_too_large"


def test_the_routes_read_timeout_is_a_server_error(proxy: RunningProxy) -> None:
    with (
        openai_client(proxy, ALICE, "/hasty/v1") as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        slow = [{"role": "user", "content": "SLOW_FIRST 1000ms"}]
        client.chat.completions.create(model="gpt", messages=slow)  # type: ignore[arg-type]
    assert caught.value.status_code == 504
    body: Any = caught.value.body
    assert (body["type"], body["code"]) == ("server_error", "upstream_timeout")
    with (
        anthropic_client(proxy, ALICE, "/hasty") as claude,
        pytest.raises(anthropic.InternalServerError) as timed_out,
    ):
        ask_claude(claude, "SLOW_FIRST 1000ms")
    document: Any = timed_out.value.body
    assert document["error"]["type"] == "timeout_error"


# -- the other routes of the gateway ----------------------------------------------------


def test_a_route_to_a_node_keeps_problem_documents(proxy: RunningProxy) -> None:
    response = httpx.get(proxy.url + "/plain/v1/models", headers={"Authorization": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:quiver:problem:unauthorized"
    assert "request-id" not in response.headers


def test_a_prompt_api_keeps_problem_documents(proxy: RunningProxy) -> None:
    response = httpx.post(proxy.url + "/summarize", json={"text": "a"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_path_without_a_front_is_answered_in_openais_shape(proxy: RunningProxy) -> None:
    response = httpx.get(proxy.url + "/v1/nothing/here")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    response = httpx.post(proxy.url + "/v1/messages/batches", json={})
    assert response.json()["error"]["type"] == "authentication_error"


# -- the mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "openai_type", "anthropic_type"),
    [
        (Unauthorized("no key"), "invalid_request_error", "authentication_error"),
        (Forbidden("not yours"), "invalid_request_error", "permission_error"),
        (ContentTooLarge("too big"), "invalid_request_error", "request_too_large"),
        (TooManyRequests("spent"), "rate_limit_error", "rate_limit_error"),
        (GatewayTimeout("slow"), "server_error", "timeout_error"),
        (HTTPError("fault"), "server_error", "api_error"),
    ],
)
def test_each_status_has_each_apis_error_type(
    error: HTTPError, openai_type: str, anthropic_type: str
) -> None:
    shaped = from_http_error(error)
    assert (error_type(shaped, "openai"), error_type(shaped, "anthropic")) == (
        openai_type,
        anthropic_type,
    )


def test_the_header_fields_and_members_of_a_refusal_are_kept() -> None:
    fields = ((b"Retry-After", b"7"), (b"RateLimit", b'"default";r=0;t=7'))
    refusal = TooManyRequests("slow down", headers=fields, extensions={"limit": 5})
    status, headers, body = render(from_http_error(refusal), "openai", b"rid-1")
    assert status == 429
    assert headers[1:] == [(b"request-id", b"rid-1"), *fields]
    assert body == (
        b'{"error":{"message":"slow down","type":"rate_limit_error","param":null,'
        b'"code":"rate_limit_exceeded","limit":5}}'
    )
