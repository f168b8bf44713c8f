"""A "Try it" answer as the page shows it: JSON indented, long bodies cut, bodies
that are not text left out, and the key masked wherever the answer repeats it; and
nothing but a path of the gateway is ever sent."""

from __future__ import annotations

import asyncio
import json

import pytest

from quiver.admin.gateway import Gateway
from quiver.web.tryit import MASK, MAX_BODY, TryFailed, answer_of, send

KEY = "qk_" + "s" * 43
JSON = [("Content-Type", "application/json")]


def test_json_is_indented() -> None:
    answer = answer_of(200, JSON, b'{"id":7,"items":[1,2]}', 12.34, "")
    assert answer.kind == "json" and answer.ok
    assert answer.body == json.dumps({"id": 7, "items": [1, 2]}, indent=2)
    assert (answer.status, answer.reason, answer.elapsed_ms) == (200, "OK", 12.3)


def test_the_key_is_masked_in_the_body_and_the_headers() -> None:
    headers = [*JSON, ("X-Echo", f"apikey={KEY}")]
    body = json.dumps({"headers": [["apikey", KEY]]}).encode()
    answer = answer_of(200, headers, body, 1.0, KEY)
    assert KEY not in answer.body and KEY not in repr(answer.headers)
    assert MASK in answer.body and ("X-Echo", f"apikey={MASK}") in answer.headers


def test_a_long_body_is_cut_and_shown_as_text() -> None:
    data = json.dumps(["x" * 100] * 2000).encode()  # (over 64 KiB)
    answer = answer_of(200, JSON, data[: MAX_BODY + 1], 1.0, "")
    assert answer.truncated and answer.kind == "text"
    assert len(answer.body) == MAX_BODY


def test_a_body_that_is_not_text_is_not_shown() -> None:
    answer = answer_of(200, [("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n\xff\xfe", 1.0, "")
    assert (answer.kind, answer.body, answer.media) == ("binary", "", "image/png")


def test_text_in_its_charset_and_no_body() -> None:
    latin = answer_of(
        404, [("Content-Type", "text/plain; charset=latin-1")], "né".encode("latin-1"), 1, ""
    )
    assert (latin.kind, latin.body, latin.ok, latin.reason) == ("text", "né", False, "Not Found")
    empty = answer_of(204, [], b"", 1.0, "")
    assert (empty.kind, empty.body) == ("empty", "")


def test_json_that_is_not_json_stays_as_sent() -> None:
    answer = answer_of(500, JSON, b"upstream failed", 1.0, "")
    assert (answer.kind, answer.body) == ("text", "upstream failed")


def test_only_a_path_of_the_gateway_is_ever_sent() -> None:
    gateway = Gateway("http://127.0.0.1:9")
    for target in ("@example.com/steal", "example.com/x", ""):
        with pytest.raises(TryFailed, match="only a path"):
            asyncio.run(send(gateway, "GET", target, [], None, secret="qk_secret"))
