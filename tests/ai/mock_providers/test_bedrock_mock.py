"""The Bedrock mock: SigV4 against AWS's published vector, Converse, event-stream frames
and Titan embeddings."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import httpx

from tests.ai.mock_providers import (
    AWS_TEMPORARY,
    EMBEDDING_MODELS,
    MODELS,
    MockProviders,
    eventstream,
    sigv4,
)
from tests.ai.mock_providers.calls import (
    bedrock_post,
)


def test_sigv4_matches_the_aws_test_suite() -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    args = ("GET", "/", headers, ["host", "x-amz-date"], hashlib.sha256(b"").hexdigest())
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert sigv4.signature(secret, *args, "20150830T123600Z", "us-east-1", "service") == (
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    query = ("GET", "/?Param2=value2&Param1=value1", *args[2:])
    assert sigv4.signature(secret, *query, "20150830T123600Z", "us-east-1", "service") == (
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )


def test_bedrock_converse_and_signature_checks(mock_providers: MockProviders) -> None:
    body = {
        "system": [{"text": "Be brief"}],
        "messages": [{"role": "user", "content": [{"text": "hello bedrock"}]}],
        "inferenceConfig": {"maxTokens": 100},
    }
    answer = bedrock_post(mock_providers, MODELS["bedrock"], "converse", body)
    assert answer.status_code == 200, answer.text
    text = f"Hello from bedrock {MODELS['bedrock']}: hello bedrock"
    assert answer.json()["output"]["message"]["content"] == [{"text": text}]
    assert answer.json()["usage"] == {"inputTokens": 4, "outputTokens": 6, "totalTokens": 10}
    assert mock_providers.last("bedrock").full_path.endswith("v1%3A0/converse")
    forged = bedrock_post(mock_providers, MODELS["bedrock"], "converse", body, secret="wrong")
    assert forged.status_code == 403
    assert forged.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
    unsigned = httpx.post(mock_providers.base_url("bedrock") + "/model/m/converse", json=body)
    assert unsigned.status_code == 403 and unsigned.json() == {
        "message": "Missing Authentication Token"
    }
    blank = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse",
        {"messages": [{"role": "user", "content": [{"text": " "}]}]},
    )
    assert blank.status_code == 400 and "is blank" in blank.json()["message"]
    limited = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse",
        {"messages": [{"role": "user", "content": [{"text": "FAIL_429"}]}]},
    )
    assert limited.status_code == 429 and limited.headers["x-amzn-ErrorType"].startswith(
        "ThrottlingException"
    )


def test_bedrock_converse_stream_frames(mock_providers: MockProviders) -> None:
    tool = {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}
    body = {
        "messages": [{"role": "user", "content": [{"text": "CALL_TOOL"}]}],
        "toolConfig": {"tools": [tool]},
    }
    reply = bedrock_post(mock_providers, MODELS["bedrock"], "converse-stream", body)
    assert reply.headers["content-type"] == "application/vnd.amazon.eventstream"
    messages = eventstream.decode(reply.content)
    assert all(
        m.headers[":message-type"] == "event" and m.headers[":content-type"] == "application/json"
        for m in messages
    )
    kinds = [m.headers[":event-type"] for m in messages]
    assert kinds == [
        "messageStart",
        "contentBlockStart",
        *["contentBlockDelta"] * 3,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    payloads = [json.loads(m.payload) for m in messages]
    assert all("p" in p for p in payloads)
    assert "".join(p["delta"]["toolUse"]["input"] for p in payloads[2:5]) == '{"location": "Paris"}'
    assert payloads[6]["stopReason"] == "tool_use"
    text = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse-stream",
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    )
    text_kinds = [m.headers[":event-type"] for m in eventstream.decode(text.content)]
    assert text_kinds[:2] == ["messageStart", "contentBlockDelta"]  # no start for text


def test_bedrock_titan_embeddings(mock_providers: MockProviders) -> None:
    reply = bedrock_post(
        mock_providers,
        EMBEDDING_MODELS["bedrock"],
        "invoke",
        {"inputText": "one two", "dimensions": 256},
    )
    data = reply.json()
    assert len(data["embedding"]) == 256 and data["inputTextTokenCount"] == 2
    assert abs(sum(v * v for v in data["embedding"]) - 1) < 1e-9
    refused = bedrock_post(
        mock_providers, EMBEDDING_MODELS["bedrock"], "invoke", {"inputText": "x", "dimensions": 8}
    )
    assert refused.status_code == 400


def test_temporary_credentials_need_their_session_token_signed(
    mock_providers: MockProviders,
) -> None:
    url = mock_providers.base_url("bedrock") + "/model/m/converse"
    payload = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()

    def post(token: str | None) -> httpx.Response:
        headers = sigv4.sign(
            "POST",
            url,
            {},
            payload,
            access_key=AWS_TEMPORARY["aws_access_key_id"],
            secret_key=AWS_TEMPORARY["aws_secret_access_key"],
            region="us-east-1",
            service="bedrock",
            now=datetime.now(UTC),
            session_token=token,
        )
        return httpx.post(url, content=payload, headers=headers)

    assert post(AWS_TEMPORARY["aws_session_token"]).status_code == 200
    refused = post(None)
    assert refused.status_code == 403
    assert refused.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


def test_a_conversation_starts_with_user_and_alternates(mock_providers: MockProviders) -> None:
    hi = {"role": "user", "content": [{"text": "hi"}]}
    again = bedrock_post(mock_providers, MODELS["bedrock"], "converse", {"messages": [hi, hi]})
    assert again.status_code == 400 and "alternate" in again.json()["message"]
    answer = {"role": "assistant", "content": [{"text": "yes"}]}
    first = bedrock_post(mock_providers, MODELS["bedrock"], "converse", {"messages": [answer, hi]})
    assert first.status_code == 400 and "start with a user message" in first.json()["message"]
