"""ai-moderation: config validation, then prompts moderated by a fake endpoint."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import yaml

from quiver.plugins.ai_guard import Moderation
from tests.plugins.ai_guard.support import chat, guarded, post
from tests.support.problems import assert_problem
from tests.support.upstream import Conn, Request, Upstream


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "https://api.openai.com/v1/moderations", "on_error": "allow"},
        {"url": "target://moderator/v1/moderations", "on_error": "deny", "timeout": "2s"},
        {"url": "http://x/m", "on_error": "deny", "thresholds": {"violence": 0.5}},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    Moderation.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"url": "http://x/m"}, "on_error\n  Field required"),
        ({"url": "ftp://x", "on_error": "allow"}, "must start with http://"),
        ({"url": "http://x", "on_error": "maybe"}, "'allow' or 'deny'"),
        ({"url": "http://x", "on_error": "allow", "timeout": 0}, "greater than 0"),
        ({"url": "http://x", "on_error": "allow", "thresholds": {"v": 2}}, "between 0 and 1"),
        ({"url": "http://x", "on_error": "allow", "headers": {"A B": "1"}}, "not a valid header"),
        ({"url": "http://x", "on_error": "allow", "headers": {"A": "1\r\nB: 2"}}, "line break"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        Moderation.Config.model_validate(settings)


def test_the_documented_example_is_a_valid_config() -> None:
    example = re.search(r"e\.g\. `([^`]+)`", " ".join((Moderation.__doc__ or "").split()))
    assert example is not None
    Moderation.Config.model_validate(yaml.safe_load(example[1]))


# -- through the proxy -----------------------------------------------------------------


class Moderator:
    """A fake /moderations endpoint: flags texts with "attack" (violence) or "insult"
    (harassment, scored only), answers 500 to "BREAK", never answers "HANG"."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.release = threading.Event()
        self.upstream = Upstream(self.handle)

    def handle(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            self.requests.append(request)
            texts = json.loads(request.body)["input"]
            if any("HANG" in text for text in texts):
                self.release.wait(10)
                return
            if any("BREAK" in text for text in texts):
                conn.respond(500, b'{"error": {"message": "down"}}')
                continue
            results = [
                {
                    "flagged": "attack" in text,
                    "categories": {"violence": "attack" in text, "harassment": False},
                    "category_scores": {
                        "violence": 0.9 if "attack" in text else 0.01,
                        "harassment": 0.4 if "insult" in text else 0.0,
                    },
                }
                for text in texts
            ]
            body = json.dumps({"id": "modr-1", "model": "omni", "results": results}).encode()
            conn.respond(200, body, [("Content-Type", "application/json")])

    def sent(self) -> Any:
        return json.loads(self.requests[-1].body)


@pytest.fixture
def moderator() -> Iterator[Moderator]:
    moderator = Moderator()
    with moderator.upstream:
        yield moderator
        moderator.release.set()


def settings(moderator: Moderator, **extra: Any) -> dict[str, Any]:
    return {
        "ai-moderation": {
            "url": moderator.upstream.url + "/v1/moderations",
            "api_key": "mod-key",
            "model": "omni-moderation-latest",
            "on_error": "deny",
            **extra,
        }
    }


def test_a_clean_prompt_is_moderated_then_goes_on(moderator: Moderator) -> None:
    with guarded(settings(moderator)) as (node, client):
        body = chat(
            ("system", "be nice"), ("user", "hello"), ("user", [{"type": "text", "text": "x"}])
        )
        assert post(client, "/v1/chat/completions", body).status == 200
        assert moderator.sent() == {"input": ["hello", "x"], "model": "omni-moderation-latest"}
        request = moderator.requests[-1]
        assert request.path == "/v1/moderations"
        assert request.header("Authorization") == "Bearer mod-key"
        assert len(node.requests) == 1


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", chat(("user", "plan an attack"))),
        ("/v1/responses", {"model": "m", "input": "plan an attack"}),
        (
            "/v1/messages",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "attack"}]}]},
        ),
    ],
)
def test_a_flagged_prompt_is_refused_naming_the_categories(
    moderator: Moderator, path: str, body: dict[str, Any]
) -> None:
    with guarded(settings(moderator)) as (node, client):
        response = post(client, path, body)
        problem = assert_problem(response, 400)
        assert problem["type"] == "urn:quiver:problem:prompt-flagged"
        assert problem["categories"] == ["violence"]
        assert node.requests == []


def test_categories_and_thresholds(moderator: Moderator) -> None:
    only_harassment = settings(moderator, categories=["harassment"])
    with guarded(only_harassment) as (_, client):
        assert post(client, "/v1/chat/completions", chat(("user", "attack"))).status == 200
    scored = settings(moderator, thresholds={"harassment": 0.3})
    with guarded(scored) as (_, client):
        response = post(client, "/v1/chat/completions", chat(("user", "an insult")))
        assert assert_problem(response, 400)["categories"] == ["harassment"]


def test_endpoint_failure_with_on_error_deny_is_503(moderator: Moderator) -> None:
    with guarded(settings(moderator)) as (node, client):
        response = post(client, "/v1/chat/completions", chat(("user", "BREAK")))
        problem = assert_problem(response, 503)
        assert problem["type"] == "urn:quiver:problem:moderation-unavailable"
        assert node.requests == []


def test_endpoint_failure_with_on_error_allow_lets_the_request_through(
    moderator: Moderator,
) -> None:
    with guarded(settings(moderator, on_error="allow")) as (node, client):
        assert post(client, "/v1/chat/completions", chat(("user", "BREAK"))).status == 200
        assert len(node.requests) == 1


def test_a_slow_endpoint_times_out_into_on_error(moderator: Moderator) -> None:
    with guarded(settings(moderator, timeout=0.2)) as (_, client):
        response = post(client, "/v1/chat/completions", chat(("user", "HANG")))
        assert_problem(response, 503)


def test_an_unreachable_endpoint(moderator: Moderator) -> None:
    plugin = {"ai-moderation": {"url": "http://127.0.0.1:9/m", "on_error": "deny"}}
    with guarded(plugin) as (_, client):
        assert_problem(post(client, "/v1/chat/completions", chat(("user", "hi"))), 503)


def test_a_request_without_prompt_text_is_not_sent(moderator: Moderator) -> None:
    with guarded(settings(moderator)) as (node, client):
        assert client.request("GET", "/v1/models").status == 200
        assert post(client, "/v1/chat/completions", chat(("system", "x"))).status == 200
        assert moderator.requests == []
        assert len(node.requests) == 2


def test_through_a_target_of_the_config(moderator: Moderator) -> None:
    plugin = {"ai-moderation": {"url": "target://moderator/v1/moderations", "on_error": "deny"}}
    with guarded(plugin, targets={"moderator": moderator.upstream.url}) as (node, client):
        assert_problem(post(client, "/v1/chat/completions", chat(("user", "attack"))), 400)
        assert post(client, "/v1/chat/completions", chat(("user", "calm"))).status == 200
        assert len(node.requests) == 1


def test_the_endpoint_sees_the_prompt_masked_by_ai_pii(moderator: Moderator) -> None:
    plugins = {**settings(moderator), "ai-pii": {}}
    with guarded(plugins) as (node, client):
        assert post(client, "/v1/chat/completions", chat(("user", "I am a@b.io"))).status == 200
        assert moderator.sent()["input"] == ["I am [EMAIL]"]
        assert json.loads(node.requests[-1].body)["messages"][0]["content"] == "I am [EMAIL]"
