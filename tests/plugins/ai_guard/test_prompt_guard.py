"""ai-prompt-guard: config validation, then prompts and answers through the proxy."""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
import pytest
import yaml

from quiver.plugins.ai_guard import PromptGuard
from tests.plugins.ai_guard.support import chat, guarded, post
from tests.support.problems import assert_problem

# -- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"deny": [{"regex": "(?i)password"}]},
        {"deny": [{"name": "rivals", "keywords": ["acme corp", "globex"]}]},
        {"allow": [{"keywords": ["weather"]}], "roles": ["user", "system"]},
        {"completion_deny": [{"regex": "falcon", "case_sensitive": True}]},
        {"deny": [{"regex": "a"}], "whole_conversation": False},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    PromptGuard.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "give at least one rule"),
        ({"deny": [{"name": "x"}]}, "exactly one of 'regex' or 'keywords'"),
        ({"deny": [{"regex": "a", "keywords": ["b"]}]}, "exactly one of 'regex' or 'keywords'"),
        ({"deny": [{"regex": "(unclosed"}]}, "does not compile"),
        ({"deny": [{"keywords": [" "]}]}, "a keyword cannot be empty"),
        ({"deny": [{"name": "a", "regex": "x"}, {"name": "a", "regex": "y"}]}, "two rules"),
        ({"deny": [{"regex": "x"}], "roles": []}, "at least 1 item"),
        ({"deny": [{"regex": "x"}], "roles": ["robot"]}, "'system', 'user', 'assistant'"),
        ({"deny": [{"regex": "x"}], "roles": ["user", "user"]}, "a role is listed twice"),
        ({"deny": [{"regex": "x", "flags": "i"}]}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        PromptGuard.Config.model_validate(settings)


def test_the_documented_example_is_a_valid_config() -> None:
    example = re.search(r"e\.g\. `([^`]+)`", " ".join((PromptGuard.__doc__ or "").split()))
    assert example is not None
    PromptGuard.Config.model_validate(yaml.safe_load(example[1]))


# -- prompts through the proxy ---------------------------------------------------------

GUARD = {
    "deny": [
        {"name": "secrets", "regex": r"(?i)\bpass(word|phrase)\b"},
        {"name": "rivals", "keywords": ["acme corp", "globex"]},
    ]
}


@pytest.mark.parametrize(
    "path, body, rule",
    [
        ("/v1/chat/completions", chat(("user", "what is the admin Password?")), "secrets"),
        (
            "/v1/chat/completions",
            chat(("user", [{"type": "text", "text": "compare with ACME  Corp"}])),
            "rivals",
        ),
        ("/v1/responses", {"model": "m", "input": "tell me about globex"}, "rivals"),
        (
            "/v1/responses",
            {"model": "m", "input": [{"role": "user", "content": "my passphrase"}]},
            "secrets",
        ),
        (
            "/v1/messages",
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Globex?"}]}],
            },
            "rivals",
        ),
    ],
)
def test_a_prompt_matching_a_deny_rule_is_refused_naming_the_rule(
    path: str, body: dict[str, Any], rule: str
) -> None:
    with guarded({"ai-prompt-guard": GUARD}) as (node, client):
        response = post(client, path, body)
        problem = assert_problem(response, 400)
        assert problem["type"] == "urn:quiver:problem:prompt-refused"
        assert problem["rule"] == rule
        assert "globex" not in response.body.decode().lower()  # the text is not repeated
        assert "password" not in response.body.decode().lower()
        assert node.requests == []
        # the connection carries the next request
        assert post(client, path, chat(("user", "hello"))).status == 200


def test_a_clean_prompt_goes_through_unchanged() -> None:
    with guarded({"ai-prompt-guard": GUARD}) as (node, client):
        raw = b'{"model": "m",\n "messages": [{"role": "user", "content": "hello"}]}'
        response = client.request(
            "POST", "/v1/chat/completions", {"Content-Type": "application/json"}, raw
        )
        assert response.status == 200
        assert node.requests[-1].body == raw  # the very bytes


def test_keywords_are_whole_words() -> None:
    with guarded({"ai-prompt-guard": GUARD}) as (_, client):
        assert post(client, "/v1/chat/completions", chat(("user", "globexes"))).status == 200
        assert post(client, "/v1/chat/completions", chat(("user", "(globex)"))).status == 400


def test_only_the_configured_roles_are_checked() -> None:
    body = chat(("system", "never reveal the password"), ("user", "hi"))
    with guarded({"ai-prompt-guard": GUARD}) as (_, client):
        assert post(client, "/v1/chat/completions", body).status == 200
    with guarded({"ai-prompt-guard": {**GUARD, "roles": ["system", "user"]}}) as (_, client):
        assert post(client, "/v1/chat/completions", body).status == 400
    anthropic = {"system": "the password is x", "messages": [{"role": "user", "content": "hi"}]}
    with guarded({"ai-prompt-guard": {**GUARD, "roles": ["system"]}}) as (_, client):
        assert post(client, "/v1/messages", anthropic).status == 400


def test_last_message_only() -> None:
    body = chat(("user", "my password"), ("assistant", "no"), ("user", "ok, bye"))
    with guarded({"ai-prompt-guard": GUARD}) as (_, client):
        assert post(client, "/v1/chat/completions", body).status == 400
    with guarded({"ai-prompt-guard": {**GUARD, "whole_conversation": False}}) as (_, client):
        assert post(client, "/v1/chat/completions", body).status == 200
        # every part of the last message is checked, not only its last part
        parts = [{"type": "text", "text": "my password"}, {"type": "text", "text": "bye"}]
        last = chat(("user", "hi"), ("user", parts))
        assert post(client, "/v1/chat/completions", last).status == 400


def test_an_allow_list_refuses_prompts_it_does_not_match() -> None:
    settings = {"allow": [{"name": "weather", "keywords": ["weather", "forecast"]}]}
    with guarded({"ai-prompt-guard": settings}) as (_, client):
        assert (
            post(client, "/v1/chat/completions", chat(("user", "weather in Paris"))).status == 200
        )
        response = post(client, "/v1/chat/completions", chat(("user", "write a poem")))
        problem = assert_problem(response, 400)
        assert problem["rule"] is None
        assert problem["detail"] == "the prompt matches no allow rule"


def test_an_unreadable_json_body_is_refused_and_other_bodies_pass() -> None:
    with guarded({"ai-prompt-guard": GUARD}) as (_, client):
        response = client.request(
            "POST", "/v1/chat/completions", {"Content-Type": "application/json"}, b"{oops"
        )
        assert assert_problem(response, 400)["type"] == "urn:quiver:problem:unreadable-prompt"
    with guarded({"ai-prompt-guard": GUARD}) as (_, client):
        gzipped = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        response = client.request("POST", "/v1/chat/completions", gzipped, b"\x1f\x8b...")
        assert_problem(response, 400)
        upload = {"Content-Type": "audio/wav"}
        assert client.request("POST", "/v1/audio", upload, b"RIFF....").status == 200
        assert client.request("GET", "/v1/models").status == 200


# -- answers ---------------------------------------------------------------------------

ANSWERS = {"completion_deny": [{"name": "internal", "keywords": ["project falcon"]}]}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_a_denied_answer_is_withheld_in_its_own_format(path: str) -> None:
    with guarded({"ai-prompt-guard": ANSWERS}) as (_, client):
        body = chat(("user", "status?"))
        response = post(client, path, body, **{"X-Answer": "Project Falcon ships in May"})
        assert response.status == 200
        answer = response.json()
        assert "falcon" not in response.body.decode().lower()
        assert "'internal'" in json.dumps(answer)
        if path.endswith("/chat/completions"):
            assert answer["choices"][0]["finish_reason"] == "content_filter"
        elif path.endswith("/messages"):
            assert answer["stop_reason"] == "refusal"
        else:
            assert answer["incomplete_details"] == {"reason": "content_filter"}
        clean = post(client, path, body, **{"X-Answer": "all good"})
        assert "all good" in clean.body.decode()


def test_an_answer_larger_than_the_buffer_limit_passes_unchecked() -> None:
    big = "project falcon " + "x" * 3000
    with guarded({"ai-prompt-guard": ANSWERS}, limits={"max_buffered_body": 2048}) as (_, c):
        response = post(c, "/v1/chat/completions", chat(("user", "?")), **{"X-Answer": big})
        assert response.status == 200
        assert response.json()["choices"][0]["message"]["content"] == big
