"""Finding the texts of prompts and answers in the three wire formats, and
withholding an answer in its own format."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.plugins.ai_guard.texts import completion_texts, last_turn, prompt_texts, withhold
from tests.plugins.ai_guard.support import answer_for


def roles_and_values(body: Any) -> list[tuple[str, str]]:
    return [(text.role, text.value) for text in prompt_texts(body)]


def test_openai_chat_messages_with_string_and_parts_content() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]},
            {"role": "assistant", "content": "hello", "tool_calls": []},
            {"role": "tool", "tool_call_id": "c", "content": "22 degrees"},
            {"role": "user", "content": "and tomorrow?"},
        ]
    }
    assert roles_and_values(body) == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("tool", "22 degrees"),
        ("user", "and tomorrow?"),
    ]


def test_anthropic_system_and_content_blocks_with_tool_results() -> None:
    body = {
        "system": [{"type": "text", "text": "be kind"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "input": {"city": "x"}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "content": "sunny"},
                    {"type": "tool_result", "content": [{"type": "text", "text": "warm"}]},
                ],
            },
        ],
    }
    assert roles_and_values(body) == [
        ("system", "be kind"),
        ("user", "weather?"),
        ("tool", "sunny"),
        ("tool", "warm"),
    ]
    assert roles_and_values({"system": "plain", "messages": []}) == [("system", "plain")]


def test_openai_responses_input_and_instructions() -> None:
    assert roles_and_values({"input": "one line", "instructions": "rules"}) == [
        ("system", "rules"),
        ("user", "one line"),
    ]
    body = {
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a"}],
            },
            {"type": "function_call", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "42"},
            {"role": "user", "content": "next"},
        ]
    }
    assert roles_and_values(body) == [
        ("user", "q"),
        ("assistant", "a"),
        ("tool", "42"),
        ("user", "next"),
    ]


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"input": ["a", "b"]}, [("user", "a"), ("user", "b")]),  # embeddings
        ({"prompt": "legacy"}, [("user", "legacy")]),
        ({"input": [1, 2, 3]}, []),  # token ids
        ([1, 2], []),
        ({"messages": "not a list"}, []),
        # a prompt API's variables: every string, in document order
        ({"a": "x", "b": {"c": ["y", 1, {"d": "z"}]}, "e": "w"}, [("user", s) for s in "xyzw"]),
        ({"n": 1, "b": True}, []),
        ({"messages": [None, {"role": "user", "content": None}]}, []),
    ],
)
def test_other_shapes(body: Any, expected: list[tuple[str, str]]) -> None:
    assert roles_and_values(body) == expected


def test_a_text_is_replaced_in_place() -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    }
    (text,) = prompt_texts(body)
    text.replace("y")
    assert body["messages"][0]["content"][0]["text"] == "y"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_the_completion_text_of_each_answer_format(path: str) -> None:
    answer = answer_for(path, "the answer")
    assert [text.value for text in completion_texts(answer)] == ["the answer"]
    assert completion_texts({"choices": [{"text": "legacy"}]})[0].value == "legacy"


def test_withheld_answers_say_so_in_their_own_format() -> None:
    chat = answer_for("/v1/chat/completions", "secret")
    withhold(chat, "no")
    assert chat["choices"][0]["finish_reason"] == "content_filter"
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": "no"}
    message = answer_for("/v1/messages", "secret")
    withhold(message, "no")
    assert message["stop_reason"] == "refusal"
    assert message["content"] == [{"type": "text", "text": "no"}]
    response = answer_for("/v1/responses", "secret")
    withhold(response, "no")
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "content_filter"}
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]
    for answer in (chat, message, response):
        assert "secret" not in str(answer)


def test_each_text_knows_its_message() -> None:
    body = {
        "system": "s",
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}],
            },
        ],
    }
    texts = prompt_texts(body)
    assert [(text.value, text.turn) for text in texts] == [("s", -1), ("a", 0), ("b", 1), ("c", 1)]
    assert [text.value for text in last_turn(texts)] == ["b", "c"]
    assert last_turn([]) == []
