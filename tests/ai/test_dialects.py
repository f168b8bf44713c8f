"""Mistral's dialect of OpenAI's chat request (quiver.ai.dialects)."""

from __future__ import annotations

import re
from typing import Any

from quiver.ai.dialects import mistral, mistral_call_id


def test_fields_mistral_names_otherwise_are_renamed_and_unknown_ones_left_out() -> None:
    body = mistral(
        {
            "model": "mistral-small",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 30,
            "seed": 7,
            "user": "alice",
            "store": True,
            "temperature": 0.2,
        }
    )
    assert body == {
        "model": "mistral-small",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 30,
        "random_seed": 7,
        "temperature": 0.2,
    }


def test_an_explicit_max_tokens_wins_over_max_completion_tokens() -> None:
    body = mistral({"model": "m", "messages": [], "max_tokens": 5, "max_completion_tokens": 9})
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body


CALL = {"name": "f", "arguments": "{}"}


def test_tool_call_ids_become_nine_letters_and_digits_and_still_pair_up() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_0001", "type": "function", "function": CALL},
                {"id": "abcDEF123", "type": "function", "function": CALL},
            ],
        },
        {"role": "tool", "tool_call_id": "call_0001", "content": "mild"},
        {"role": "tool", "tool_call_id": "abcDEF123", "content": "cold"},
    ]
    body = mistral({"model": "m", "messages": messages})
    first, second = body["messages"][1]["tool_calls"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", first["id"])
    assert second["id"] == "abcDEF123"  # (Mistral's own ids go back as they came)
    assert body["messages"][2]["tool_call_id"] == first["id"]
    assert body["messages"][3]["tool_call_id"] == "abcDEF123"
    assert messages[1]["tool_calls"][0]["id"] == "call_0001"  # the client's body is untouched


def test_distinct_ids_map_to_distinct_ids() -> None:
    ids = {mistral_call_id(f"call_{n}") for n in range(2000)}
    assert len(ids) == 2000
