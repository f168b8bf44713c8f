"""The frame header reader of the WebSocket relay, fed as TCP might cut the bytes."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quiver.proxy.websocket import (
    MESSAGE_TOO_BIG,
    NO_STATUS,
    POLICY_VIOLATION,
    PROTOCOL_ERROR,
    FrameReader,
    close_frame,
)
from tests.support.websocket import frame

STREAM = (
    frame(0x1, b"hello")
    + frame(0x2, os.urandom(200), fin=False)  # a fragmented message, 16-bit length
    + frame(0x9, b"ping")  # control frames between fragments
    + frame(0xA, b"")
    + frame(0x0, os.urandom(70_000))  # a 64-bit length
    + frame(0x2, b"", fin=True)
    + frame(0x8, struct.pack(">H", 4000) + b"bye")
)


def feed_in_pieces(reader: FrameReader, data: bytes, cuts: list[int]) -> int:
    start = 0
    for cut in sorted({*cuts, len(data)}):
        code = reader.feed(data[start:cut])
        if code:
            return code
        start = cut
    return 0


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_cutting_of_the_stream_reads_the_same_frames(cuts: list[int]) -> None:
    reader = FrameReader(masked=True, max_size=80_000)
    assert feed_in_pieces(reader, STREAM, cuts) == 0
    assert reader.messages == 3
    assert reader.close_code == 4000
    assert (reader.remaining, reader.partial, reader.in_message) == (0, b"", False)


def test_byte_by_byte_too() -> None:
    reader = FrameReader(masked=True, max_size=80_000)
    assert feed_in_pieces(reader, STREAM, list(range(len(STREAM)))) == 0
    assert (reader.messages, reader.close_code) == (3, 4000)


def test_a_message_is_too_big_by_all_its_fragments() -> None:
    reader = FrameReader(masked=True, max_size=100)
    assert reader.feed(frame(0x1, b"a" * 100)) == 0  # at the limit: fine
    assert reader.feed(frame(0x2, b"a" * 60, fin=False)) == 0
    data = frame(0x9, b"ping") + frame(0x0, b"b" * 41)
    assert reader.feed(data) == MESSAGE_TOO_BIG
    assert reader.cut == len(frame(0x9, b"ping"))  # what comes before it may go on


def test_the_node_side_refuses_masked_frames_and_reads_unmasked_ones() -> None:
    reader = FrameReader(masked=False)
    assert reader.feed(frame(0x1, b"hi", mask=False)) == 0
    assert reader.feed(frame(0x1, b"hi")) == PROTOCOL_ERROR


def test_a_burst_passes_then_the_rate_holds() -> None:
    reader = FrameReader(masked=True, rate=1.0, burst=3)
    for _ in range(3):
        assert reader.feed(frame(0x1, b"m")) == 0
    assert reader.feed(frame(0x9, b"pings are not messages")) == 0
    assert reader.feed(frame(0x1, b"m")) == POLICY_VIOLATION


@pytest.mark.parametrize("masked", [True, False])
def test_close_frames_read_back_their_code(masked: bool) -> None:
    reader = FrameReader(masked=masked)
    assert reader.feed(close_frame(1009, "message too big", masked=masked)) == 0
    assert reader.close_code == 1009
    empty = FrameReader(masked=True)
    assert empty.feed(frame(0x8, b"")) == 0
    assert empty.close_code == NO_STATUS
