"""The fake OpenAI backend of ``bench/ai.sh``: nginx returning a fixed
``chat.completion`` (with usage) at ``/v1/chat/completions`` and a fixed stream of
20 ``chat.completion.chunk`` events, the usage chunk and ``data: [DONE]`` at
``/stream/v1/chat/completions``, both only for the provider's key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rig

CONTENT_PIECES = [
    "Hello",
    ",",
    " benchmark",
    "!",
    " This",
    " fixed",
    " answer",
    " comes",
    " from",
    " a",
    " fake",
    " OpenAI",
    " backend",
    " in",
    " eighteen",
    " small",
    " pieces",
    ".",
]
CONTENT = "".join(CONTENT_PIECES)
USAGE = {"prompt_tokens": 24, "completion_tokens": 18, "total_tokens": 42}
STREAM_CHUNKS = 20  # chunks with a choice: the role, 18 content pieces, the finish reason
CREATED = 1765000000


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


COMPLETION = _dumps(
    {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-bench",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
)


def _chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench0002",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "gpt-bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def _stream() -> str:
    chunks = [_chunk({"role": "assistant", "content": ""}, None)]
    chunks += [_chunk({"content": piece}, None) for piece in CONTENT_PIECES]
    chunks.append(_chunk({}, "stop"))
    assert len(chunks) == STREAM_CHUNKS
    usage = _chunk({}, None) | {"choices": [], "usage": USAGE}
    return "".join(f"data: {_dumps(c)}\n\n" for c in [*chunks, usage]) + "data: [DONE]\n\n"


STREAM = _stream()


def _nginx_string(text: str) -> str:
    """``text`` as a single-quoted nginx string (no variables, newlines as \\n)."""
    if any(c in text for c in "'$\\\r"):
        raise ValueError("the fixed answers must not hold ' $ \\ or CR")
    return "'" + text.replace("\n", "\\n") + "'"


def _nginx_text(name: str, text: str) -> tuple[str, str]:
    """``set`` directives and the ``return`` argument for ``text``, in pieces: nginx
    takes at most 4 KB per configuration token."""
    pieces: list[str] = []
    sets: list[str] = []
    for i in range(0, len(text), 1500):
        pieces.append(f"${name}{len(pieces)}")
        sets.append(f"set {pieces[-1]} {_nginx_string(text[i : i + 1500])};")
    return "\n            ".join(sets), "'" + "".join(pieces) + "'"


def backend_conf(work: Path, port: int, upstream_key: str) -> Path:
    """The fake OpenAI backend: both answers, only for the provider's key."""
    refusal = _nginx_string(
        _dumps({"error": {"message": "bad key", "type": "invalid_request_error", "code": None}})
    )
    guard = f"""if ($http_authorization != "Bearer {upstream_key}") {{
                return 401 {refusal};
            }}"""
    stream_sets, stream_value = _nginx_text("stream", STREAM)
    return rig.nginx_main_conf(
        work,
        "backend",
        f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location = /v1/chat/completions {{
            {guard}
            return 200 {_nginx_string(COMPLETION)};
        }}
        location = /stream/v1/chat/completions {{
            default_type text/event-stream;
            {guard}
            {stream_sets}
            return 200 {stream_value};
        }}
    }}""",
    )
