"""The event-stream splitter response_body phases use (quiver.plugins.sse)."""

from __future__ import annotations

import pytest

from quiver.plugins.sse import EventSplitter, EventTooLarge, SSEEvent, render_event

STREAM = (
    b": welcome\n"
    b"retry: 3000\n"
    b"\n"
    b"id: 1\n"
    b"event: update\n"
    b"data: first line\n"
    b"data:second line\n"
    b"data\n"
    b"\n"
    b"data: caf\xc3\xa9 \xe2\x82\xac\n"
    b"ignored: field\n"
    b"id\n"
    b"\n"
    b"id: 7\x00x\n"
    b'data: {"a": 1}\n'
    b"\n"
)

EXPECTED = [
    (None, None, None, 3000, ("welcome",)),
    ("first line\nsecond line\n", "update", "1", None, ()),
    ("caf\u00e9 \u20ac", None, "", None, ()),
    ('{"a": 1}', None, None, None, ()),
]


def fields(events: list[SSEEvent]) -> list[tuple[object, ...]]:
    return [(e.data, e.event, e.id, e.retry, e.comments) for e in events]


def with_line_ends(stream: bytes, end: bytes) -> bytes:
    return stream.replace(b"\n", end)


def split_everywhere(stream: bytes) -> list[list[bytes]]:
    """The stream cut in two at every byte, and cut into single bytes."""
    cuts = [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    return [*cuts, [stream[i : i + 1] for i in range(len(stream))]]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_events_cut_at_every_byte_come_out_whole(end: bytes) -> None:
    stream = with_line_ends(STREAM, end)
    for pieces in split_everywhere(stream):
        splitter = EventSplitter()
        events = [event for piece in pieces for event in splitter.feed(piece)]
        assert fields(events) == EXPECTED, pieces
        # what is passed on is the stream, byte for byte
        assert b"".join(e.raw for e in events) + splitter.rest() == stream
        assert splitter.last_event_id == ""


def test_mixed_line_ends_in_one_stream() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\nid: 9\r\rdata: d\n\n"
    for pieces in split_everywhere(stream):
        splitter = EventSplitter()
        events = [event for piece in pieces for event in splitter.feed(piece)]
        assert [(e.data, e.id) for e in events] == [("a\nb\nc", None), (None, "9"), ("d", None)]
        assert b"".join(e.raw for e in events) + splitter.rest() == stream
        assert splitter.last_event_id == "9"


def test_a_cr_then_an_lf_in_the_next_chunk_is_one_line_end() -> None:
    splitter = EventSplitter()
    first = splitter.feed(b"data: x\r\r")
    assert [e.data for e in first] == ["x"]
    # the LF pairs with the CR before it: no empty block of its own
    assert splitter.feed(b"\ndata: y\r\n\r\n") == [
        SSEEvent(b"\ndata: y\r\n\r\n", "y", None, None, None, ())
    ]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_bom_opening_the_stream_is_skipped_but_passed_on(cut: int) -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    splitter = EventSplitter()
    events = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:])
    assert [(e.data, e.raw) for e in events] == [("x", stream)]


def test_a_bom_later_in_the_stream_is_data() -> None:
    splitter = EventSplitter()
    events = splitter.feed(b"data: a\n\n\xef\xbb\xbfdata: b\n\n")
    assert [e.data for e in events] == ["a", None]  # "\ufeffdata" is an unknown field


def test_a_comment_alone_is_handed_out_without_data() -> None:
    (event,) = EventSplitter().feed(b": keep-alive\n\n")
    assert event == SSEEvent(b": keep-alive\n\n", None, None, None, None, ("keep-alive",))


def test_an_unfinished_event_stays_until_its_blank_line() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: half") == []
    assert splitter.feed(b" and more\n") == []
    assert [e.data for e in splitter.feed(b"\n")] == ["half and more"]
    assert splitter.feed(b"data: cut off") == []
    assert splitter.rest() == b"data: cut off"
    assert [e.data for e in splitter.feed(b"data: again\n\n")] == ["again"]


def test_retry_must_be_digits() -> None:
    events = EventSplitter().feed(b"retry: 10s\ndata: x\n\nretry: 25\n\n")
    assert [e.retry for e in events] == [None, 25]


def test_an_event_larger_than_the_limit_is_refused() -> None:
    splitter = EventSplitter(max_event=64)
    events = splitter.feed(b"data: " + b"x" * 50 + b"\n\n")  # whole events may come in a piece
    assert len(events) == 1
    splitter.feed(b"data: " + b"y" * 50)
    with pytest.raises(EventTooLarge):
        splitter.feed(b"y" * 20)
    with pytest.raises(EventTooLarge):  # one that came whole, in one piece, too
        EventSplitter(max_event=10).feed(b"data: 0123456789abc\n\n")


def test_many_events_in_one_chunk() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(2000))
    events = EventSplitter().feed(stream)
    assert [e.data for e in events] == [str(i) for i in range(2000)]


def test_render_event_round_trips() -> None:
    wire = render_event("a\nb", event="update", id="3", retry=100, comments=("hi",))
    (event,) = EventSplitter().feed(wire)
    assert (event.data, event.event, event.id, event.retry, event.comments) == (
        "a\nb",
        "update",
        "3",
        100,
        ("hi",),
    )
    assert event.raw == wire
