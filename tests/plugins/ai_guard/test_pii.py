"""ai-pii: config validation, then masking and refusing through the proxy."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest
import yaml

from quiver.plugins.ai_guard import Pii
from tests.plugins.ai_guard.support import chat, guarded, post, received
from tests.support.problems import assert_problem


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"entities": ["email"], "masks": {"email": "<email>"}},
        {"action": "refuse", "completions": False},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    Pii.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"entities": []}, "at least 1 item"),
        ({"entities": ["ssn"]}, "'api_key', 'email', 'iban', 'card' or 'phone'"),
        ({"entities": ["email", "email"]}, "an entity is listed twice"),
        ({"action": "block"}, "'mask' or 'refuse'"),
        ({"masks": {"name": "[NAME]"}}, "'api_key', 'email'"),
        ({"mask": {}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        Pii.Config.model_validate(settings)


def test_the_documented_example_is_a_valid_config() -> None:
    example = re.search(r"e\.g\. `([^`]+)`", " ".join((Pii.__doc__ or "").split()))
    assert example is not None
    Pii.Config.model_validate(yaml.safe_load(example[1]))


PROMPT = "I am jane@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwx"
MASKED = "I am [EMAIL], card [CARD], key [API_KEY]"


def test_openai_chat_prompts_are_masked_before_they_go_upstream() -> None:
    body = chat(
        ("system", "reply to jane@example.com"),
        ("user", [{"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": {}}]),
        temperature=0,
    )
    with guarded({"ai-pii": {}}) as (node, client):
        response = post(client, "/v1/chat/completions", body)
        assert response.status == 200
        sent = received(node)
        assert sent["messages"][0]["content"] == "reply to [EMAIL]"
        assert sent["messages"][1]["content"][0]["text"] == MASKED
        assert sent["messages"][1]["content"][1] == {"type": "image_url", "image_url": {}}
        assert sent["temperature"] == 0  # the rest of the body is kept
        assert node.requests[-1].header("Content-Length") == str(len(node.requests[-1].body))
        # the echo of the masked prompt comes back as it is
        assert response.json()["choices"][0]["message"]["content"] == "echo: " + MASKED


def test_anthropic_and_responses_prompts_are_masked() -> None:
    anthropic = {
        "model": "m",
        "system": [{"type": "text", "text": "call +33 6 12 34 56 78"}],
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "content": PROMPT}]},
        ],
    }
    responses = {"model": "m", "instructions": "IBAN DE89 3704 0044 0532 0130 00", "input": PROMPT}
    with guarded({"ai-pii": {}}) as (node, client):
        assert post(client, "/v1/messages", anthropic).status == 200
        sent = received(node)
        assert sent["system"][0]["text"] == "call [PHONE]"
        assert sent["messages"][0]["content"][0]["content"] == MASKED
        assert post(client, "/v1/responses", responses).status == 200
        assert received(node)["instructions"] == "IBAN [IBAN]"
        assert received(node)["input"] == MASKED


def test_a_prompt_without_personal_data_keeps_its_bytes() -> None:
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "order 1234567890"}]}'
    with guarded({"ai-pii": {}}) as (node, client):
        headers = {"Content-Type": "application/json"}
        assert client.request("POST", "/v1/chat/completions", headers, raw).status == 200
        assert node.requests[-1].body == raw


def test_custom_masks_and_kinds() -> None:
    settings = {"entities": ["email"], "masks": {"email": "<redacted>"}}
    with guarded({"ai-pii": settings}) as (node, client):
        post(client, "/v1/chat/completions", chat(("user", PROMPT)))
        text = received(node)["messages"][0]["content"]
        assert text.startswith("I am <redacted>, card 4111 1111 1111 1111")


def test_refuse_names_the_kinds_never_the_values() -> None:
    with guarded({"ai-pii": {"action": "refuse"}}) as (node, client):
        response = post(client, "/v1/chat/completions", chat(("user", PROMPT)))
        problem = assert_problem(response, 400)
        assert problem["type"] == "urn:quiver:problem:pii-refused"
        assert problem["entities"] == ["api_key", "email", "card"]
        assert b"jane" not in response.body and b"4111" not in response.body
        assert node.requests == []
        assert post(client, "/v1/chat/completions", chat(("user", "hello"))).status == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_non_streamed_answers_are_masked_in_their_texts_only(path: str) -> None:
    leak = "Reach Bob at bob@corp.example or +44 20 7946 0958."
    with guarded({"ai-pii": {}}) as (_, client):
        response = post(client, path, chat(("user", "who?")), **{"X-Answer": leak})
        assert response.status == 200
        assert b"bob@corp" not in response.body and b"7946" not in response.body
        assert "Reach Bob at [EMAIL] or [PHONE]." in response.body.decode()
        answer = response.json()
        assert answer.get("id") in ("chatcmpl-1", "msg_1", "resp_1")  # the rest is kept


def test_streamed_answers_and_answers_when_turned_off_pass_unmasked() -> None:
    leak = "mail bob@corp.example"
    with guarded({"ai-pii": {}}) as (_, client):
        body = chat(("user", "who?"), stream=True)
        response = post(client, "/v1/chat/completions", body, **{"X-Answer": leak})
        assert b"bob@corp.example" in response.body
    with guarded({"ai-pii": {"completions": False}}) as (_, client):
        response = post(client, "/v1/chat/completions", chat(("user", "?")), **{"X-Answer": leak})
        assert b"bob@corp.example" in response.body
        assert response.header("Content-Length") is not None  # the node's framing is kept


def test_pii_and_prompt_guard_together() -> None:
    plugins = {
        "ai-pii": {},
        "ai-prompt-guard": {"deny": [{"name": "cards", "regex": r"\d{4} \d{4}"}]},
    }
    with guarded(plugins) as (_, client):  # the guard runs first: it sees the card
        response = post(client, "/v1/chat/completions", chat(("user", PROMPT)))
        assert assert_problem(response, 400)["rule"] == "cards"
