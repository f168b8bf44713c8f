"""The incremental SSE parser and writer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from quiver.ai.transports.sse import Event, SSEParser, event

STREAM = (
    b"\xef\xbb\xbf: a comment\r\n"
    b"event: message_start\r\n"
    b'data: {"type":"message_start"}\r\n'
    b"\r\n"
    b"id: 7\n"
    b"data: first line\n"
    b"data:second line\n"
    b"retry: 100\n"
    b"unknown: field\n"
    b"\n"
    b"event: ping\r"
    b"data: caf\xc3\xa9\r"
    b"\r"
    b"event: lonely\n"
    b"\n"
    b"data\n"
    b"\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event("message_start", '{"type":"message_start"}', None),
    Event(None, "first line\nsecond line", "7"),
    Event("ping", "caf\u00e9", "7"),
    Event(None, "", "7"),
    Event(None, "[DONE]", "7"),
]


def _parse(pieces: list[bytes]) -> list[Event]:
    parser = SSEParser()
    out: list[Event] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    return out


def test_whole_stream_gives_every_event_with_its_fields() -> None:
    assert _parse([STREAM]) == EXPECTED


def test_every_single_split_point_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert _parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_byte_by_byte_gives_the_same_events() -> None:
    assert _parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert _parse(pieces) == EXPECTED


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"data: b") == []
    assert parser.feed(b"\n\n") == [Event(None, "a\nb", None)]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    # the LF completes the CRLF: no empty line, so no event yet
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [Event(None, "x", None)]


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text("abcdefghij_.", min_size=1, max_size=8)),
            st.text(st.characters(blacklist_categories=["Cs"]), max_size=30),
        ),
        max_size=6,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_writer_output_parses_back(events: list[tuple[str | None, str]], step: int) -> None:
    wire = b"".join(event(data.encode(), name.encode() if name else None) for name, data in events)
    pieces = [wire[i : i + step] for i in range(0, len(wire), step)]
    expected = [
        Event(name, data.replace("\r\n", "\n").replace("\r", "\n"), None) for name, data in events
    ]
    assert _parse(pieces) == expected


def test_writer_frames_named_and_multiline_events() -> None:
    assert event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert event(b"x", b"ping") == b"event: ping\ndata: x\n\n"
    assert event(b"a\nb") == b"data: a\ndata: b\n\n"
