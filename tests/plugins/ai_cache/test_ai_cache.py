"""ai-cache: config validation, then answers kept and replayed through the proxy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pydantic
import pytest
import yaml

from quiver.plugins.ai_cache import AICache
from quiver.plugins.ai_cache.answers import complete
from tests.plugins.ai_guard.support import chat, guarded, post
from tests.support.proxy import Client

REDIS_URL = os.environ.get("QUIVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"ttl": "10m", "memory_size": "1MiB", "per_consumer": True},
        {"backend": "redis", "redis": {"url": "redis://127.0.0.1:6379/0"}},
        {"status_header": "", "opt_in_header": "X-Cache-Me", "ignored_fields": []},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    AICache.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"backend": "redis"}, "backend 'redis' needs redis"),
        ({"redis": {"url": "redis://x"}}, "set backend: redis"),
        ({"backend": "redis", "redis": {"url": "redis+cluster://x:1"}}, "not a Cluster"),
        ({"ttl": 0}, "greater than 0"),
        ({"opt_in_header": "X Cache"}, "not a valid header name"),
        ({"status_header": "a:b"}, "not a valid header name"),
        ({"backend": "disk"}, "'memory' or 'redis'"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        AICache.Config.model_validate(settings)


def test_the_documented_example_is_a_valid_config() -> None:
    example = re.search(r"e\.g\. `([^`]+)`", " ".join((AICache.__doc__ or "").split()))
    assert example is not None
    AICache.Config.model_validate(yaml.safe_load(example[1]))


# -- through the proxy -----------------------------------------------------------------

COMPLETIONS = "/v1/chat/completions"


def test_a_deterministic_answer_is_served_again_without_the_model() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        body = chat(("user", "hello"), temperature=0)
        first = post(client, COMPLETIONS, body)
        assert first.status == 200 and first.header("X-Cache-Status") == "MISS"
        second = post(client, COMPLETIONS, body)
        assert second.header("X-Cache-Status") == "HIT"
        assert second.body == first.body
        assert second.header("Content-Type") == "application/json"
        assert second.header("Age") is not None
        assert len(node.requests) == 1
        # spacing, key order and `user` do not matter
        same = b'{"temperature": 0, "messages": [{"content": "hello", "role": "user"}],'
        same += b' "model": "m", "user": "someone"}'
        headers = {"Content-Type": "application/json"}
        third = client.request("POST", COMPLETIONS, headers, same)
        assert third.header("X-Cache-Status") == "HIT"
        assert len(node.requests) == 1


def test_the_key_holds_the_front_the_model_and_the_settings() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        body = chat(("user", "hello"), temperature=0)
        post(client, COMPLETIONS, body)
        for path, other in [
            (COMPLETIONS, {**body, "model": "other"}),
            (COMPLETIONS, {**body, "max_tokens": 5}),
            (COMPLETIONS, chat(("user", "hello!"), temperature=0)),
            ("/v1/messages", body),
        ]:
            assert post(client, path, other).header("X-Cache-Status") == "MISS"
        assert len(node.requests) == 5


def test_requests_that_are_not_deterministic_bypass_the_cache() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        for body in (chat(("user", "hi")), chat(("user", "hi"), temperature=0.7)):
            for _ in range(2):
                response = post(client, COMPLETIONS, body)
                assert response.header("X-Cache-Status") == "BYPASS"
        assert client.request("GET", "/v1/models").header("X-Cache-Status") == "BYPASS"
        assert len(node.requests) == 5


def test_the_opt_in_header() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        body = chat(("user", "hi"), temperature=1)
        assert post(client, COMPLETIONS, body, **{"X-Quiver-Cache": "on"}).status == 200
        hit = post(client, COMPLETIONS, body, **{"X-Quiver-Cache": "on"})
        assert hit.header("X-Cache-Status") == "HIT"
        assert node.requests[0].header("X-Quiver-Cache") is None  # not sent on
        zero = chat(("user", "hi"), temperature=0)
        post(client, COMPLETIONS, zero)
        off = post(client, COMPLETIONS, zero, **{"X-Quiver-Cache": "off"})
        assert off.header("X-Cache-Status") == "BYPASS"
        assert len(node.requests) == 3


def test_a_streamed_answer_is_replayed_as_the_same_events() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        body = chat(("user", "stream me"), temperature=0, stream=True)
        first = post(client, COMPLETIONS, body)
        assert first.header("Content-Type") == "text/event-stream"
        second = post(client, COMPLETIONS, body)
        assert second.header("X-Cache-Status") == "HIT"
        assert second.header("Content-Type") == "text/event-stream"
        assert second.body == first.body
        assert second.body.endswith(b"data: [DONE]\n\n")
        # a non-streamed request of the same prompt is another answer
        plain = post(client, COMPLETIONS, {**body, "stream": False})
        assert plain.header("X-Cache-Status") == "MISS"
        assert len(node.requests) == 2


def test_failed_and_cut_answers_are_not_stored() -> None:
    with guarded({"ai-cache": {}}) as (node, client):
        # the fake provider answers a JSON error object when asked
        failing = chat(("user", "x"), temperature=0)
        for _ in range(2):
            response = post(client, COMPLETIONS, failing, **{"X-Answer-Error": "1"})
            assert response.header("X-Cache-Status") == "MISS"
        cut = chat(("user", "x"), temperature=0, stream=True)
        for _ in range(2):
            post(client, COMPLETIONS, cut, **{"X-Stream-Unfinished": "1"})
        assert len(node.requests) == 4


def test_answers_larger_than_max_entry_size_are_not_stored() -> None:
    with guarded({"ai-cache": {"max_entry_size": 100}}) as (node, client):
        body = chat(("user", "hello"), temperature=0)
        post(client, COMPLETIONS, body)
        assert post(client, COMPLETIONS, body).header("X-Cache-Status") == "MISS"
        assert len(node.requests) == 2


def test_per_consumer_answers() -> None:
    consumers = [
        {"name": name, "credentials": {"key-auth": [{"key": f"{name}-key-123"}]}}
        for name in ("alice", "bob")
    ]
    plugins = {"key-auth": {}, "ai-cache": {"per_consumer": True}}
    with guarded(plugins, consumers=consumers) as (node, client):
        body = chat(("user", "hello"), temperature=0)
        post(client, COMPLETIONS, body, apikey="alice-key-123")
        again = post(client, COMPLETIONS, body, apikey="alice-key-123")
        assert again.header("X-Cache-Status") == "HIT"
        bob = post(client, COMPLETIONS, body, apikey="bob-key-123")
        assert bob.header("X-Cache-Status") == "MISS"
        assert len(node.requests) == 2


def test_guardrails_run_before_the_cache() -> None:
    plugins = {
        "ai-cache": {},
        "ai-prompt-guard": {"deny": [{"name": "secrets", "regex": "password"}]},
        "ai-pii": {},
    }
    with guarded(plugins) as (node, client):
        refused = chat(("user", "the password"), temperature=0)
        assert post(client, COMPLETIONS, refused).status == 400
        assert post(client, COMPLETIONS, refused).status == 400
        masked = chat(("user", "mail a@b.io"), temperature=0)
        first = post(client, COMPLETIONS, masked)
        assert b"[EMAIL]" in first.body
        second = post(client, COMPLETIONS, masked)
        assert second.header("X-Cache-Status") == "HIT" and second.body == first.body
        assert len(node.requests) == 1


# -- redis -----------------------------------------------------------------------------


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def prefix() -> Iterator[str]:
    if not _reachable(REDIS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI=true: required)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set QUIVER_TEST_REDIS_URL)")
    name = f"quiver-test:{uuid.uuid4().hex[:8]}:"
    yield name
    asyncio.run(_delete(name))


async def _delete(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
    finally:
        await client.aclose()


def _hit_after_write(client: Client, body: dict[str, Any]) -> bool:
    """The write to Redis happens after the answer: ask until it is there."""
    for _ in range(100):
        if post(client, COMPLETIONS, body).header("X-Cache-Status") == "HIT":
            return True
    return False


def test_answers_in_redis_are_shared_by_proxies(prefix: str) -> None:
    settings = {"ai-cache": {"backend": "redis", "redis": {"url": REDIS_URL, "prefix": prefix}}}
    body = chat(("user", "shared"), temperature=0, stream=True)
    with guarded(settings) as (_, client):
        first = post(client, COMPLETIONS, body)
        assert first.header("X-Cache-Status") == "MISS"
        assert _hit_after_write(client, body)
    with guarded(settings) as (node, client):  # another proxy, another provider
        replay = post(client, COMPLETIONS, body)
        assert replay.header("X-Cache-Status") == "HIT"
        assert replay.body == first.body
        assert node.requests == []


def test_redis_down_bypasses_the_cache() -> None:
    settings = {
        "ai-cache": {"backend": "redis", "redis": {"url": "redis://127.0.0.1:9/0", "timeout": 0.2}}
    }
    with guarded(settings) as (node, client):
        body = chat(("user", "x"), temperature=0)
        for _ in range(2):
            response = post(client, COMPLETIONS, body)
            assert response.status == 200
            assert response.header("X-Cache-Status") == "BYPASS"
        assert len(node.requests) == 2
        assert json.loads(response.body)["object"] == "chat.completion"


def test_the_status_header_can_be_turned_off() -> None:
    with guarded({"ai-cache": {"status_header": ""}}) as (node, client):
        body = chat(("user", "quiet"), temperature=0)
        first, second = post(client, COMPLETIONS, body), post(client, COMPLETIONS, body)
        assert first.header("X-Cache-Status") is None and second.header("X-Cache-Status") is None
        assert second.body == first.body and second.header("Age") is not None
        assert len(node.requests) == 1


@pytest.mark.parametrize(
    "kind, body, expected",
    [
        (b"application/json", b'{"id": "x"}', True),
        (b"application/json", b'{"id": "x", "error": null}', True),
        (b"application/json", b'{"error": {"message": "down"}}', False),
        (b"application/json", b'{"type": "error", "error": {"type": "overloaded_error"}}', False),
        (b"application/json", b"[1]", False),
        (b"application/json", b"{cut", False),
        (b"text/event-stream", b"data: {}\n\ndata: [DONE]\n\n", True),
        (b"text/event-stream", b"data: {}\r\n\r\ndata: [DONE]\r\n\r\n", True),
        (b"text/event-stream", b"data: {}\n\n", False),
        (b"text/event-stream", b"event: error\ndata: {}\n\ndata: [DONE]\n\n", False),
        (b"text/event-stream", b"event: message_stop\ndata: {}\n\n", True),
        (
            b"text/event-stream",
            b'event: response.completed\ndata: {"response": "' + b"x" * 5000 + b'"}\n\n',
            True,
        ),
        (b"text/event-stream", b"event: response.failed\ndata: {}\n\n", False),
        (b"text/event-stream", b'data: {"delta": "a"}\n\nevent: done\ndata: {}\n\n', True),
    ],
)
def test_which_answers_are_whole(kind: bytes, body: bytes, expected: bool) -> None:
    assert complete(kind, body) is expected
