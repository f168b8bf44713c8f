"""The guardrails and the answer cache as the official ``openai`` and ``anthropic``
SDKs see them, on a route served by the ``ai`` target."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.ai.fake_providers import ANTHROPIC_KEY, OPENAI_KEY, fake_provider
from tests.support.proxy import RunningProxy
from tests.support.upstream import Upstream

KEY = "alice-key-0123456789"


def config(provider_url: str) -> str:
    return f"""
listen: 127.0.0.1:0
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{provider_url}/openai/v1", api_key: {OPENAI_KEY}}}
    - {{name: an, type: anthropic, base_url: "{provider_url}/anthropic", api_key: {ANTHROPIC_KEY}}}
  models:
    - {{name: gpt, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
    - {{name: claude, deployments: [{{provider: an, model: claude-3-5-haiku}}]}}
consumers:
  - {{name: alice, credentials: {{key-auth: [{{key: {KEY}}}]}}}}
routes:
  - name: ai
    paths: ["/v1"]
    ai: {{}}
    plugins:
      key-auth: {{}}
      ai-prompt-guard:
        deny: [{{name: secrets, regex: "(?i)password"}}]
        completion_deny: [{{name: internal, keywords: [project falcon]}}]
      ai-cache: {{}}
"""


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[Upstream, RunningProxy]]:
    with Upstream(fake_provider) as provider, RunningProxy(config(provider.url)) as proxy:
        yield provider, proxy


@pytest.fixture
def client(proxy: tuple[Upstream, RunningProxy]) -> Iterator[openai.OpenAI]:
    base_url = proxy[1].url + "/v1"
    with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:
        yield client


def user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def test_a_refused_prompt_is_a_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt", messages=user("the password?"))
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert (body["type"], body["code"]) == ("invalid_request_error", "prompt_refused")
    assert body["rule"] == "secrets"


def test_a_withheld_answer_is_a_content_filter_refusal(client: openai.OpenAI) -> None:
    # (the fake provider echoes the prompt in its answer)
    completion = client.chat.completions.create(model="gpt", messages=user("project falcon"))
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.message.refusal is not None and "'internal'" in choice.message.refusal


def test_a_withheld_anthropic_answer_stops_for_refusal(
    proxy: tuple[Upstream, RunningProxy],
) -> None:
    with anthropic.Anthropic(base_url=proxy[1].url, api_key=KEY, max_retries=0) as client:
        message = client.messages.create(
            model="claude", max_tokens=50, messages=user("about project falcon")
        )
    assert message.stop_reason == "refusal"
    assert message.content[0].type == "text"
    assert "falcon" not in message.content[0].text.lower()


def test_a_cached_answer_is_the_same_completion(
    proxy: tuple[Upstream, RunningProxy], client: openai.OpenAI
) -> None:
    provider, _ = proxy
    before = len(provider.requests)
    create = client.chat.completions.with_raw_response.create
    first = create(model="gpt", messages=user("sdk cache"), temperature=0)
    second = create(model="gpt", messages=user("sdk cache"), temperature=0)
    assert first.headers["x-cache-status"] == "MISS"
    assert second.headers["x-cache-status"] == "HIT"
    assert second.parse().model_dump() == first.parse().model_dump()
    texts = []
    for _ in range(2):  # (the first stream read to its end before the second is asked)
        stream = client.chat.completions.create(
            model="gpt", messages=user("sdk stream"), temperature=0, stream=True
        )
        texts.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    assert texts[0] == texts[1] and texts[0].startswith("Hello from openai")
    assert len(provider.requests) == before + 2


def test_a_cached_anthropic_stream_replays_every_event(
    proxy: tuple[Upstream, RunningProxy],
) -> None:
    provider, running = proxy
    before = len(provider.requests)
    kinds = []
    with anthropic.Anthropic(base_url=running.url, api_key=KEY, max_retries=0) as client:
        for _ in range(2):
            stream = client.messages.create(
                model="claude",
                max_tokens=50,
                messages=user("anthropic stream"),
                stream=True,
                extra_headers={"X-Quiver-Cache": "on"},  # (the opt-in header)
            )
            kinds.append([event.type for event in stream])
    assert kinds[0] == kinds[1]
    assert kinds[0][0] == "message_start" and kinds[0][-1] == "message_stop"
    assert len(provider.requests) == before + 1


def test_a_streamed_answer_is_cut_before_a_denied_word(client: openai.OpenAI) -> None:
    # (the answer echoes the prompt in 8-character pieces: the keyword spans two)
    text = ""
    stream = client.chat.completions.create(
        model="gpt", messages=user("about project falcon"), stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    body: Any = caught.value.body
    assert (body["code"], body["rule"]) == ("completion_refused", "internal")
    assert "falc" not in text.lower()


def test_a_streamed_responses_answer_ends_with_an_error_event(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt", input="about project falcon", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "falc" not in text.lower()
    last: Any = events[-1]
    assert (last.type, last.code) == ("error", "completion_refused")
    assert "'internal'" in last.message
    clean = list(client.responses.create(model="gpt", input="about the weather", stream=True))
    assert clean[-1].type == "response.completed"


def test_a_streamed_anthropic_answer_ends_with_an_error_event(
    proxy: tuple[Upstream, RunningProxy],
) -> None:
    text = ""
    with anthropic.Anthropic(base_url=proxy[1].url, api_key=KEY, max_retries=0) as client:
        stream = client.messages.create(
            model="claude", max_tokens=50, messages=user("about project falcon"), stream=True
        )
        with pytest.raises(anthropic.APIStatusError) as caught:
            for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["rule"] == "internal"
    assert "falc" not in text.lower()
