"""The OpenAI front through the running proxy, driven by the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.ai.conftest import ALICE_KEY, IMPATIENT_READ, ORGANIZATION, Gateway
from tests.ai.mock_providers import KEYS

USER: Any = [{"role": "user", "content": "tell me about Paris"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key=ALICE_KEY, max_retries=0) as client:
        yield client


def test_a_completion_passes_through_with_the_providers_key(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=USER)
    completion = raw.parse()
    assert (
        completion.choices[0].message.content
        == "Hello from openai gpt-4o-mini: tell me about Paris"
    )
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 8)
    assert float(raw.headers["x-quiver-overhead-ms"]) >= 0
    sent = gateway.last()
    assert sent.full_path == "/openai/v1/chat/completions"
    assert sent.headers.get("authorization") == "Bearer " + KEYS["openai"]
    assert sent.headers.get("openai-organization") == ORGANIZATION  # (the provider's headers)
    assert ALICE_KEY not in str(sent.headers)
    assert json.loads(sent.body) == {"model": "gpt-4o-mini", "messages": USER}


def test_a_stream_without_include_usage_has_no_usage_at_all(gateway: Gateway) -> None:
    body = {"model": "gpt", "messages": USER, "stream": True}
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert len(chunks) >= 3 and all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).startswith(
        "Hello from openai gpt-4o-mini"
    )
    upstream = json.loads(gateway.last().body)
    assert upstream["stream_options"] == {"include_usage": True}  # (counted all the same)


def test_a_stream_with_include_usage_ends_with_the_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12


def test_the_async_client_streams_too(gateway: Gateway) -> None:
    async def run() -> str:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=ALICE_KEY, max_retries=0)
        stream = await client.chat.completions.create(model="gpt", messages=USER, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return text

    assert asyncio.run(run()) == "Hello from openai gpt-4o-mini: tell me about Paris"


def test_embeddings_come_as_floats_or_base64(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="embed", input=["a", "b"], encoding_format="float")
    vectors = [item.embedding for item in floats.data]
    assert len(vectors) == 2 and all(vectors)
    raw = client.embeddings.with_raw_response.create(
        model="embed", input=["a", "b"], encoding_format="base64"
    )
    encoded = [item["embedding"] for item in json.loads(raw.content)["data"]]
    decoded = [
        list(struct.unpack(f"<{len(vector)}f", base64.b64decode(text)))
        for text, vector in zip(encoded, vectors, strict=True)
    ]
    assert decoded == vectors  # (little-endian float32)


def test_models_lists_what_the_route_serves(gateway: Gateway, client: openai.OpenAI) -> None:
    names = [model.id for model in client.models.list()]
    assert names[:2] == ["gpt", "gpt-with-fallback"] and "claude" in names
    with openai.OpenAI(base_url=gateway.proxy.url + "/narrow/v1", api_key=ALICE_KEY) as narrow:
        assert [model.id for model in narrow.models.list()] == ["gpt"]
        assert narrow.models.retrieve("gpt").id == "gpt"
        with pytest.raises(openai.NotFoundError):
            narrow.chat.completions.create(model="claude", messages=USER)


def test_an_unknown_model_is_a_404_in_openais_shape(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    body = {"model": "nope", "messages": USER}
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "model_not_found",
        "model",
    )


def test_a_bad_body_is_a_400_in_openais_shape(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {ALICE_KEY}", "Content-Type": "application/json"}
    response = httpx.post(gateway.base_url + "/chat/completions", content=b"{", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("trigger", ["FAIL_429", "FAIL_500", "FAIL_CONTEXT"])
def test_failures_fall_back_to_the_next_model(client: openai.OpenAI, trigger: str) -> None:
    text = f"{trigger}@gpt-4o"  # (the mock fails for that model only)
    completion = client.chat.completions.create(
        model="gpt-with-fallback", messages=[{"role": "user", "content": text}]
    )
    assert completion.choices[0].message.content == f"Hello from openai gpt-steady: {text}"


@pytest.mark.parametrize("trigger", ["FAIL_429", "FAIL_500", "FAIL_CONTEXT"])
def test_a_stream_falls_back_before_its_first_byte(client: openai.OpenAI, trigger: str) -> None:
    text = f"{trigger}@gpt-4o streamed"
    stream = client.chat.completions.create(
        model="gpt-with-fallback", messages=[{"role": "user", "content": text}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == f"Hello from openai gpt-steady: {text}"


def test_a_provider_timeout_falls_back_or_is_a_504(gateway: Gateway, client: openai.OpenAI) -> None:
    """A provider slower than its ``timeouts.read`` is a timeout: the fallback answers,
    or, without one, the client gets 504 ``provider_timeout``."""
    slow = f"SLOW_FIRST {int(IMPATIENT_READ * 5000)}ms"
    answer = client.chat.completions.create(
        model="gpt-impatient", messages=[{"role": "user", "content": slow}]
    )
    assert answer.choices[0].message.content == f"Hello from openai gpt-steady: {slow}"
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-impatient-alone", messages=[{"role": "user", "content": slow}]
        )
    assert caught.value.status_code == 504
    assert caught.value.code == "provider_timeout"


def test_a_failing_deployment_cools_down_and_the_next_takes_its_calls(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    """``gpt-second`` (weight 0) is only ever tried after ``gpt-first``, unless that one
    is cooling down after a failure."""
    before = len(gateway.mocks.requests)
    failed = client.chat.completions.create(
        model="gpt-pair", messages=[{"role": "user", "content": "FAIL_500@gpt-first now"}]
    )
    assert failed.model == "gpt-second"
    later = client.chat.completions.create(model="gpt-pair", messages=USER)
    assert later.model == "gpt-second"
    sent = [json.loads(r.body)["model"] for r in gateway.mocks.requests[before:]]
    assert sent == ["gpt-first", "gpt-second", "gpt-second"]


def test_latency_routing_prefers_the_quicker_deployment(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    """Untried deployments first, then the lowest average time to the answer's head:
    ``gpt-lat-a`` took half a second once, ``gpt-lat-b`` answers at once."""
    models = []
    for text in ("SLOW_FIRST 500ms", "quick", "quick again", "and again"):
        answer = client.chat.completions.create(
            model="gpt-quickest", messages=[{"role": "user", "content": text}]
        )
        models.append(answer.model)
    assert models == ["gpt-lat-a", "gpt-lat-b", "gpt-lat-b", "gpt-lat-b"]


def test_least_busy_routing_sends_calls_where_fewest_are_in_flight(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    """While ``gpt-busy-a`` (the heavier) holds a slow call, the next goes to
    ``gpt-busy-b``; once it is free again, ties go by weight."""
    slow = "SLOW_FIRST 1000ms holding a"

    def hold() -> Any:
        messages: Any = [{"role": "user", "content": slow}]
        return client.chat.completions.create(model="gpt-least-busy", messages=messages)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(hold)
        while not any(slow.encode() in r.body for r in gateway.mocks.requests):
            assert not held.done(), held.result()
            time.sleep(0.01)  # (polls for the held call to have reached the provider)
        meanwhile = client.chat.completions.create(model="gpt-least-busy", messages=USER)
        assert held.result().model == "gpt-busy-a"
    assert meanwhile.model == "gpt-busy-b"
    after = client.chat.completions.create(model="gpt-least-busy", messages=USER)
    assert after.model == "gpt-busy-a"


@pytest.mark.parametrize("stream", [False, True])
def test_the_overhead_leaves_out_the_providers_time(gateway: Gateway, stream: bool) -> None:
    """A provider that takes 400 ms before its first byte: the call takes longer, the
    time the gateway reports as its own does not."""
    text = "SLOW_FIRST 400ms overhead"
    body = {"model": "gpt", "messages": [{"role": "user", "content": text}], "stream": stream}
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    started = time.monotonic()
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
    assert response.status_code == 200 and time.monotonic() - started >= 0.4
    assert 0 <= float(response.headers["x-quiver-overhead-ms"]) < 400


def test_a_retry_waits_for_the_providers_retry_after(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    before = len(gateway.mocks.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-patient", messages=[{"role": "user", "content": "FAIL_429 patiently"}]
        )
    first, second = gateway.mocks.requests[before:]
    assert second.received - first.received >= 1.0  # (the mock's Retry-After: 1)
    # (the pause is the provider's time, not the gateway's)
    assert float(caught.value.response.headers["x-quiver-overhead-ms"]) < 1000
    assert caught.value.response.headers["retry-after"] == "1"


def test_a_server_error_is_retried_then_answered_with_the_providers_cause(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    before = len(gateway.mocks.requests)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "FAIL_500"}]
        )
    assert caught.value.status_code == 502
    assert "The server had an error" in caught.value.message
    assert len(gateway.mocks.requests) - before == 3  # (retries: 2 by default)


def test_a_provider_rate_limit_is_answered_429_after_its_retries(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "FAIL_429"}]
        )
    assert "Rate limit reached" in caught.value.message


def test_a_missing_or_wrong_key_is_refused(gateway: Gateway) -> None:
    key = "not-a-key-of-anyone"
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError),
    ):
        wrong.chat.completions.create(model="gpt", messages=USER)
    response = httpx.post(gateway.base_url + "/chat/completions", json={"model": "gpt"})
    assert response.status_code == 401


def test_a_request_too_long_for_a_window_falls_back_without_being_sent(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    before = len(gateway.mocks.requests)
    short = client.chat.completions.create(model="gpt-small-window", messages=USER, max_tokens=10)
    assert short.model == "gpt-tiny"
    long = client.chat.completions.create(model="gpt-small-window", messages=USER, max_tokens=500)
    assert long.model == "gpt-steady"
    sent = [json.loads(r.body)["model"] for r in gateway.mocks.requests[before:]]
    assert sent == ["gpt-tiny", "gpt-steady"]
