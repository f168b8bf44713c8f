"""ai-prompt-guard on streamed answers: the official SDKs read streams of the three
APIs through the proxy, checked against ``completion_deny`` as they go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from quiver.plugins.ai_guard.rules import Rules
from quiver.plugins.ai_guard.streams import CONTEXT, MIN_LOOKBACK
from tests.plugins.ai_guard.streams import Script, streaming
from tests.plugins.ai_guard.support import chat, post
from tests.support.proxy import Client, RunningProxy

GUARD = {"completion_deny": [{"name": "internal", "keywords": ["project falcon"]}]}
PREFACE = ["All is well. "] * 8  # (104 characters: the first pieces go out before the rest)
DENIED = [*PREFACE, "Project Fal", "con ships in May.", " Thanks."]
FRONTS = ["/v1/chat/completions", "/v1/messages", "/v1/responses"]


def _openai(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)


def _anthropic(proxy: RunningProxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)


def _pieces(proxy: RunningProxy, path: str) -> Iterator[tuple[str, Any]]:
    """("text", piece) for each piece of text an SDK reads, then ("usage", usage);
    ("event", event) for the other events of a Responses stream."""
    question: Any = [{"role": "user", "content": "status?"}]
    if path.endswith("/chat/completions"):
        with _openai(proxy) as sdk:
            stream = sdk.chat.completions.create(
                model="m",
                messages=question,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield "text", chunk.choices[0].delta.content
                if chunk.usage is not None:
                    yield "usage", chunk.usage.total_tokens
    elif path.endswith("/messages"):
        with _anthropic(proxy) as client:
            events = client.messages.create(
                model="m", max_tokens=100, messages=question, stream=True
            )
            for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield "text", event.delta.text
                elif event.type == "message_delta":
                    yield "usage", event.usage.output_tokens
    else:
        with _openai(proxy) as sdk:
            for item in sdk.responses.create(model="m", input="status?", stream=True):
                if item.type == "response.output_text.delta":
                    yield "text", item.delta
                elif item.type == "response.completed":
                    assert item.response.usage is not None
                    yield "usage", item.response.usage.total_tokens
                else:
                    yield "event", item


def _read(proxy: RunningProxy, path: str) -> tuple[str, list[Any]]:
    text, other = "", []
    for kind, value in _pieces(proxy, path):
        if kind == "text":
            text += value
        else:
            other.append(value if kind == "usage" else value.type)
    return text, other


def _collect(proxy: RunningProxy, path: str, got: list[str], others: list[Any]) -> None:
    """Append what the SDK reads as it reads it (text to ``got``), until it raises."""
    for kind, value in _pieces(proxy, path):
        (got if kind == "text" else others).append(value)


def _raw(proxy: RunningProxy, path: str) -> bytes:
    with Client(proxy.port) as client:
        response = post(client, path, chat(("user", "status?"), stream=True, max_tokens=10))
        assert response.status == 200
        return response.body


# -- what passes -----------------------------------------------------------------------


@pytest.mark.parametrize("path", FRONTS)
def test_a_clean_stream_passes_unchanged(path: str) -> None:
    script = Script(["The weather ", "is fine ", "today, ", "and tomorrow too."] * 20)
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        text, other = _read(proxy, path)
        assert text == "".join(script.deltas)
        assert (7 if path.endswith("/messages") else 10) in other  # the usage is kept
        assert _raw(proxy, path) == b"".join(script.sent)  # the very bytes


def test_comments_unknown_events_and_tool_calls_pass_in_order() -> None:
    def extra(events: list[bytes]) -> list[bytes]:
        tool = {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": '{"q": "project falcon"}'}}
                        ]
                    },
                }
            ]
        }
        return [
            events[0],
            b": keep-alive\n\n",
            b"event: custom\ndata: not json\n\n",
            events[1],
            b"data: " + json.dumps(tool).encode() + b"\n\n",
            b": keep-alive\n\n",
            *events[2:],
        ]

    script = Script(["Hello", " there"], extra=extra)
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        assert _raw(proxy, "/v1/chat/completions") == b"".join(script.sent)


def test_a_keyword_that_goes_on_into_a_longer_word_is_no_match() -> None:
    script = Script(["Project Falc", "ons fly south."])
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        assert _read(proxy, "/v1/chat/completions")[0] == "Project Falcons fly south."


# -- what is cut -----------------------------------------------------------------------


@pytest.mark.parametrize("path", FRONTS)
def test_a_denied_word_split_across_deltas_never_reaches_the_client(path: str) -> None:
    script = Script(DENIED)
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        got: list[str] = []
        others: list[Any] = []
        if path.endswith("/chat/completions"):
            with pytest.raises(openai.APIError) as raised:
                _collect(proxy, path, got, others)
            assert raised.value.body == {
                "message": "The answer was withheld by the gateway (rule 'internal').",
                "type": "invalid_request_error",
                "param": None,
                "code": "completion_refused",
                "rule": "internal",
            }
        elif path.endswith("/messages"):
            with pytest.raises(anthropic.APIStatusError) as failed:
                _collect(proxy, path, got, others)
            assert failed.value.body == {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "The answer was withheld by the gateway (rule 'internal').",
                    "rule": "internal",
                },
            }
        else:
            _collect(proxy, path, got, others)
            error = others[-1]
            assert error.type == "error"
            assert error.code == "completion_refused"
            assert "'internal'" in error.message
            assert all(getattr(e, "type", "") != "response.completed" for e in others)
        # what went out is the start of the clean text, and some of it went out
        assert 0 < len(got) < len(PREFACE)
        assert "".join(got) == "".join(PREFACE[: len(got)])
        raw = _raw(proxy, path)
        assert b"Fal" not in raw and b"(rule 'internal')" in raw
        assert b"[DONE]" not in raw and b"message_stop" not in raw


def test_a_denied_word_at_the_very_end_is_caught_when_the_text_ends() -> None:
    script = Script(["It is project falc", "on"])
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        raw = _raw(proxy, "/v1/chat/completions")
        assert b"falc" not in raw and b'"code":"completion_refused"' in raw


def test_regex_rules_and_a_stream_that_ends_without_its_last_events() -> None:
    guard = {"completion_deny": [{"name": "digits", "regex": r"\d{4}-\d{4}"}]}
    script = Script(["call 1234", "-5678 now"], extra=lambda events: events[:3])
    with streaming(script, {"ai-prompt-guard": guard}) as proxy:
        raw = _raw(proxy, "/v1/chat/completions")
        assert b"1234" not in raw and b"'digits'" in raw


# -- what is held, and for how long ---------------------------------------------------


def _first_piece_arrives_at_once(settings: dict[str, Any], comments: int = 0, **extra: Any) -> None:
    """The provider sends the first text piece (and ``comments`` comment events after
    it), then waits for the client to have read it before it sends more."""

    def commented(events: list[bytes]) -> list[bytes]:
        return [*events[:2], *[b": " + b"x" * 60 + b"\n\n"] * comments, *events[2:]]

    script = Script(["Hello", " world", " and more"], extra=commented, gate_at=2 + comments)
    with streaming(script, {"ai-prompt-guard": settings}, **extra) as proxy:
        text = ""
        for kind, value in _pieces(proxy, "/v1/chat/completions"):
            if kind == "text":
                text += value
                script.gate.set()
        assert text == "Hello world and more"
        assert script.gate_opened == [True]


def test_a_window_of_0_sends_every_event_at_once() -> None:
    _first_piece_arrives_at_once({**GUARD, "stream_window": 0})


def test_a_window_of_0_still_cuts_the_stream_at_the_match() -> None:
    script = Script(DENIED)
    with streaming(script, {"ai-prompt-guard": {**GUARD, "stream_window": 0}}) as proxy:
        raw = _raw(proxy, "/v1/chat/completions")
        assert b"Project Fal" in raw  # (sent before the match was complete)
        assert b"con ships" not in raw and b"completion_refused" in raw


def test_without_completion_deny_rules_streams_are_not_held() -> None:
    _first_piece_arrives_at_once({"deny": [{"keywords": ["project falcon"]}]})


def test_what_is_held_never_grows_past_the_buffer_limit() -> None:
    # (text that stalls while 100 comments come: past 2 KiB held, the oldest go out)
    _first_piece_arrives_at_once(GUARD, comments=100, limits={"max_buffered_body": 2048})


@pytest.mark.parametrize("path", FRONTS)
def test_a_long_stream_is_searched_in_linear_time(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched = [0, 0]  # searches, characters searched
    search = Rules.first_match_from

    def counted(self: Rules, text: str, start: int, final: bool) -> str | None:
        searched[0] += 1
        searched[1] += len(text) - start
        return search(self, text, start, final)

    monkeypatch.setattr(Rules, "first_match_from", counted)
    piece = "word "
    script = Script([piece] * 5000)
    with streaming(script, {"ai-prompt-guard": GUARD}) as proxy:
        assert _read(proxy, path)[0] == piece * 5000
    assert searched[0] <= 5000 + 2  # once per piece, once more when the text ends
    assert searched[1] <= 5000 * (MIN_LOOKBACK + len(piece)) + 2 * (MIN_LOOKBACK + CONTEXT)
