"""The AWS event-stream codec."""

from __future__ import annotations

import datetime
import struct
import uuid
from binascii import crc32

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quiver.ai.transports.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    HeaderValue,
    Message,
    encode,
)

HEADERS: dict[str, HeaderValue] = {
    ":event-type": "contentBlockDelta",
    ":content-type": "application/json",
    ":message-type": "event",
    "flag": True,
    "off": False,
    "small": -5,
    "big": 2**40,
    "raw": b"\x00\x01",
    "when": datetime.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=datetime.UTC),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}
PAYLOAD = b'{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcd"}'


def test_round_trip_keeps_every_header_type_and_payload() -> None:
    wire = encode(HEADERS, PAYLOAD)
    assert EventStreamDecoder().feed(wire) == [Message(HEADERS, PAYLOAD)]


def test_known_encoding_of_a_message_without_headers() -> None:
    # total 16 + 2, headers 0: prelude, payload, crc, all big-endian
    wire = encode({}, b"{}")
    assert wire[:8] == struct.pack(">II", 18, 0)
    assert wire[8:12] == struct.pack(">I", crc32(wire[:8]))
    assert wire[12:14] == b"{}"
    assert wire[14:] == struct.pack(">I", crc32(wire[:14]))


def test_messages_split_at_every_boundary_decode_the_same() -> None:
    stop = encode({":event-type": "messageStop"}, b'{"stopReason":"end_turn"}')
    wire = encode(HEADERS, PAYLOAD) + stop
    for cut in range(len(wire) + 1):
        decoder = EventStreamDecoder()
        messages = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:])
        assert [m.headers[":event-type"] for m in messages] == ["contentBlockDelta", "messageStop"]
        assert decoder.pending == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=5), st.integers(1, 9))
def test_any_payloads_in_any_chunks_round_trip(payloads: list[bytes], step: int) -> None:
    wire = b"".join(encode({":event-type": f"e{i}"}, p) for i, p in enumerate(payloads))
    decoder = EventStreamDecoder()
    out: list[Message] = []
    for i in range(0, len(wire), step):
        out.extend(decoder.feed(wire[i : i + step]))
    assert [m.payload for m in out] == payloads


@pytest.mark.parametrize("position", [0, 5, 9, 14, 30, -6, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    wire = bytearray(encode(HEADERS, PAYLOAD))
    wire[position] ^= 0x40
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(wire))


def test_impossible_length_with_a_valid_prelude_checksum_is_refused() -> None:
    prelude = struct.pack(">II", 8, 0)
    with pytest.raises(EventStreamError, match="length"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", crc32(prelude)))


def test_error_is_a_value_error() -> None:
    assert issubclass(EventStreamError, ValueError)
