"""Token counting without a tokenizer, and prices."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.ai.accounting.prices import Price, Prices, canonical, lookup, shipped, tokens_of
from quiver.ai.accounting.tokens import (
    PER_IMAGE,
    PER_MESSAGE,
    PER_REQUEST,
    WITH_TOOLS,
    completion_estimate,
    estimate,
    output_cap,
    prompt_estimate,
    prompt_upper_bound,
)


def chat(*texts: str, **more: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text} for text in texts], **more}


def test_the_upper_bound_counts_every_byte_and_the_wrapping() -> None:
    text = "héllo wörld"  # 13 bytes in UTF-8
    bound = prompt_upper_bound(chat(text))
    assert bound == PER_REQUEST + PER_MESSAGE + (len("user") + 1) + (13 + 1)


@pytest.mark.parametrize(
    "text",
    ["a b c d e", "日本語のテキスト", "x" * 500, "🙂🙂🙂", " ".join(str(n) for n in range(300))],
)
def test_the_upper_bound_is_never_below_a_token_per_byte_count(text: str) -> None:
    # a byte-level tokenizer makes at most one token per byte: the worst case
    assert prompt_upper_bound(chat(text)) >= len(text.encode())


def test_tools_images_and_schemas_are_in_the_bound() -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    message = {"role": "user", "content": [{"type": "text", "text": "hi"}, image]}
    bound = prompt_upper_bound({"messages": [message], "tools": tools})
    plain = prompt_upper_bound(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    )
    assert bound - plain >= PER_IMAGE + WITH_TOOLS
    assert bound < 10_000  # an image's bytes are not counted as tokens


def test_estimates_from_bytes_and_words() -> None:
    assert estimate("") == 0
    assert estimate("hello") == 2
    assert estimate("one two three four five six") == 8  # 4 tokens per 3 words
    assert estimate("日本語") == 3  # a token per character beyond ASCII
    assert prompt_estimate(chat("hello world")) == 3 + 4 + estimate("user") + estimate(
        "hello world"
    )
    completion = {"choices": [{"message": {"role": "assistant", "content": "one two three"}}]}
    assert completion_estimate(completion) == estimate("assistant") + estimate("one two three")


def test_the_output_cap_is_the_clients_times_its_choices() -> None:
    assert output_cap({}) is None
    assert output_cap({"max_tokens": 100}) == 100
    assert output_cap({"max_tokens": 100, "max_completion_tokens": 50}) == 50
    assert output_cap({"max_completion_tokens": 50, "n": 3}) == 150
    assert output_cap({"max_tokens": True}) is None


def test_the_shipped_table_prices_common_models() -> None:
    table = shipped()
    for model in ("gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "mistral-small"):
        assert model in table
    assert all(price.input >= 0 and price.output >= 0 for price in table.values())


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-mini", "gpt-4.1-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("models/gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("mistral-large-latest", "mistral-large"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ],
)
def test_versioned_and_prefixed_names_find_their_entry(model: str, entry: str) -> None:
    table = shipped()
    assert lookup(table, model) == table[entry]


def test_unknown_models_and_lookalikes_have_no_price() -> None:
    table = shipped()
    assert lookup(table, "my-own-model") is None
    assert lookup(table, "gpt-4oz") is None  # not a suffix of gpt-4o
    assert canonical("EU.Anthropic.Claude-3-Haiku") == "claude-3-haiku"


def test_a_configured_price_overrides_the_table() -> None:
    prices = Prices({"cheap": Price(1.0, 2.0)})
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 500_000}
    assert prices.cost("cheap", usage, "gpt-4o") == pytest.approx(2.0)
    assert prices.cost("other", usage, "gpt-4o") == pytest.approx(2.5 + 5.0)
    assert prices.cost("gpt-4o-mini", {"input_tokens": 10, "output_tokens": 10}) == pytest.approx(
        (10 * 0.15 + 10 * 0.6) / 1e6
    )
    assert prices.cost("nobody-knows", usage) is None
    assert tokens_of({"prompt_tokens": -1, "completion_tokens": "3"}) == (0, 0)


def test_an_anthropic_messages_request_is_bounded_too() -> None:
    image = {"type": "image", "source": {"type": "base64", "data": "A" * 50_000}}
    body = {
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}],
        "max_tokens": 100,
    }
    bare = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    bound = prompt_upper_bound(body)
    assert bound - prompt_upper_bound(bare) == PER_MESSAGE + len("You are terse.") + 1 + PER_IMAGE
    assert output_cap(body) == 100


def test_an_answer_without_usage_is_counted_by_estimate() -> None:
    from quiver.ai.accounting.tokens import usage_or_estimate

    request = chat("hello there")
    answer = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    reported = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert usage_or_estimate(request, answer, reported) == {
        "prompt_tokens": 7,
        "completion_tokens": 2,
    }
    assert usage_or_estimate(request, answer, None) == {
        "prompt_tokens": prompt_estimate(request),
        "completion_tokens": completion_estimate(answer),
    }
