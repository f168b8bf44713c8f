"""Fronts reaching providers of another wire format through the converters, and the
budgets reserved before a call and settled after, through the running proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.ai.conftest import ALICE_KEY, BOB_KEY, CAROL_KEY, DAVE_KEY, ERIN_KEY, Gateway
from tests.ai.mock_providers import KEYS

USER: Any = [{"role": "user", "content": "tell me about Paris"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key=ALICE_KEY, max_retries=0) as client:
        yield client


def test_a_chat_completion_from_an_anthropic_model(gateway: Gateway, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="claude", messages=USER, max_tokens=50)
    assert completion.object == "chat.completion"
    assert completion.model == "claude"
    assert completion.choices[0].message.content == (
        "Hello from anthropic claude-3-5-haiku: tell me about Paris"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    sent = gateway.last()
    assert sent.full_path == "/anthropic/v1/messages"
    assert sent.headers.get("x-api-key") == KEYS["anthropic"]
    assert json.loads(sent.body)["max_tokens"] == 50


def test_a_chat_stream_from_an_anthropic_model(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from anthropic claude-3-5-haiku: tell me about Paris"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_a_chat_stream_from_an_anthropic_model_without_usage(gateway: Gateway) -> None:
    body = {"model": "claude", "messages": USER, "stream": True}
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_a_token_budget_is_never_exceeded(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {BOB_KEY}"}
    body = {"model": "gpt", "messages": USER, "max_tokens": 10}
    statuses = []
    for _ in range(6):
        response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
        statuses.append(response.status_code)
    # each call reserves its prompt's upper bound plus 10 and settles to the 12 it used
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert "budget" in response.json()["error"]["message"]


def test_a_teams_consumers_share_its_budget(gateway: Gateway) -> None:
    """carol and dave (team ops) draw on one budget of 100 tokens, as bob alone does."""
    body = {"model": "gpt", "messages": USER, "max_tokens": 10}
    statuses = []
    for key in (CAROL_KEY, DAVE_KEY) * 3:
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "budget_exceeded")
    assert "team ops" in error["message"]


def test_a_requests_per_minute_limit_refuses_the_next_one(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {ERIN_KEY}"}
    body = {"model": "gpt", "messages": USER}
    url = gateway.base_url + "/chat/completions"
    statuses = [httpx.post(url, json=body, headers=headers).status_code for _ in range(2)]
    refused = httpx.post(url, json=body, headers=headers)
    assert statuses == [200, 200] and refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 60


def test_an_anthropic_client_reaches_an_openai_model(gateway: Gateway) -> None:
    with anthropic.Anthropic(base_url=gateway.proxy.url, api_key=ALICE_KEY, max_retries=0) as c:
        message = c.messages.create(model="gpt", max_tokens=50, messages=USER)
        assert message.type == "message" and message.model == "gpt"
        assert message.content[0].text == "Hello from openai gpt-4o-mini: tell me about Paris"  # type: ignore[union-attr]
        assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 8)
        with c.messages.stream(model="gpt", max_tokens=50, messages=USER) as stream:
            kinds = [item.type for item in stream]
            final = stream.get_final_message()
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        assert final.content[0].text.startswith("Hello from openai")  # type: ignore[union-attr]
        assert final.stop_reason == "end_turn"
        counted = c.messages.count_tokens(model="gpt", messages=USER)
        assert counted.input_tokens > 0  # (Quiver's own upper bound: no provider counts)


def test_responses_continue_a_conversation_on_the_same_deployment(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    first = client.responses.create(model="claude", input="tell me about Paris")
    assert first.id.startswith("resp_") and first.output_text.startswith("Hello from anthropic")
    assert first.model == "claude"
    second = client.responses.create(
        model="claude", input="and Lyon?", previous_response_id=first.id
    )
    sent = json.loads(gateway.last().body)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert second.id.split("_")[1] == first.id.split("_")[1]  # (the same deployment)
    assert client.responses.retrieve(second.id).output_text == second.output_text
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_a_follow_up_reaches_the_deployment_that_answered(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    """``gpt-duo`` shares its calls evenly between two deployments; every follow-up of
    a conversation still goes to the one its response id names."""
    first = client.responses.create(model="gpt-duo", input="tell me about Paris")
    holder = json.loads(gateway.last().body)["model"]
    for turn in range(12):
        follow = client.responses.create(
            model="gpt-duo", input=f"and turn {turn}?", previous_response_id=first.id
        )
        assert json.loads(gateway.last().body)["model"] == holder
        assert follow.id.split("_")[1] == first.id.split("_")[1]


def test_a_responses_stream_has_the_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt", input="tell me about Paris", stream=True))
    kinds = [item.type for item in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert [item.sequence_number for item in events] == list(range(len(events)))
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text == "Hello from openai gpt-4o-mini: tell me about Paris"
    assert client.responses.retrieve(completed.id).id == completed.id
